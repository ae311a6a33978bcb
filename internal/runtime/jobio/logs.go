package jobio

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

var (
	// ErrTimedOut is returned when a job ran past its timeout or its context's deadline;
	// the runtime killed it.
	ErrTimedOut = errors.New("timed out")
	// ErrExitStatus is wrapped by *ExitError.
	ErrExitStatus = errors.New("non-zero exit status")
)

// ExitError reports a job that exited with a non-zero code or was killed by a signal,
// with the end of its logs. Its message leaves the job id to the runtime's wrapping.
type ExitError struct {
	JobID   string
	Code    int    // -1 when killed by a signal
	Signal  string // the signal, when killed by one
	Reason  string // what the runtime knows of why, if anything
	LogTail string
}

func (e *ExitError) Error() string {
	how := fmt.Sprintf("exited with code %d", e.Code)
	if e.Signal != "" {
		how = "killed by signal " + e.Signal
	}
	if e.Reason != "" {
		how += " (" + e.Reason + ")"
	}
	return fmt.Sprintf("%s; log tail:\n%s", how, e.LogTail)
}

// Unwrap makes errors.Is(err, ErrExitStatus) hold.
func (e *ExitError) Unwrap() error { return ErrExitStatus }

// TailBytes is how much of the end of a job's logs errors and results carry.
const TailBytes = 4 << 10

// LogSink receives a job's stdout and stderr: it forwards up to a limit to the job's
// writer, then one truncation notice, and always keeps the last TailBytes for errors. A
// writer that fails is dropped, never allowed to stall the job. Safe for concurrent use.
type LogSink struct {
	mu        sync.Mutex
	w         io.Writer
	limit     int64
	written   int64
	truncated bool
	last      []byte
}

// NewLogSink forwards at most limit bytes to w, which may be nil.
func NewLogSink(w io.Writer, limit int64) *LogSink {
	return &LogSink{w: w, limit: limit}
}

// Write never fails, so that a job's output is always drained.
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = append(s.last, p...)
	if len(s.last) > TailBytes {
		s.last = append(s.last[:0], s.last[len(s.last)-TailBytes:]...)
	}
	if s.w == nil {
		return len(p), nil
	}
	room := s.limit - s.written
	chunk := p[:min(int64(len(p)), max(room, 0))]
	if len(chunk) > 0 {
		if _, err := s.w.Write(chunk); err != nil {
			s.w = nil
			return len(p), nil
		}
		s.written += int64(len(chunk))
	}
	if len(chunk) < len(p) && !s.truncated {
		s.truncated = true
		_, _ = fmt.Fprintf(s.w, "\n[omnisync: log truncated at %d bytes]\n", s.limit)
	}
	return len(p), nil
}

// Tail returns a copy of the last TailBytes written.
func (s *LogSink) Tail() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.last...)
}
