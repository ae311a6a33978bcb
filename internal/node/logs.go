package node

import (
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/protocol"
)

// logFlush is how long a job's log output waits before it is sent on, unless a whole
// chunk is ready sooner: a few messages a second, not one per line.
const logFlush = 250 * time.Millisecond

// logStream forwards a container job's stdout and stderr to the router as it comes, in
// chunks of at most protocol.MaxLogChunk bytes, each at its offset in the job's log, and
// marks the end when closed. The runtime caps what it writes (its LogBytes limit). Logs
// are a convenience for the consumer: a chunk the connection drops is not sent again.
type logStream struct {
	publish func(protocol.LogChunk)
	job, id string

	mu     sync.Mutex
	buf    []byte
	off    int64 // offset of buf[0] in the job's log
	timer  *time.Timer
	closed bool
}

func (d *Daemon) newLogStream(jobID string) *logStream {
	return &logStream{job: jobID, id: d.id, publish: func(c protocol.LogChunk) {
		if err := d.conn.Publish(protocol.LogSubject(d.id), protocol.Encode(c)); err != nil {
			d.log.Debug("send job logs", "job", jobID, "err", err)
		}
	}}
}

// Write never fails: a job's output is always drained.
func (l *logStream) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for len(l.buf) >= protocol.MaxLogChunk {
		l.sendLocked(protocol.MaxLogChunk, false)
	}
	if len(l.buf) > 0 && l.timer == nil {
		l.timer = time.AfterFunc(logFlush, l.flush)
	}
	return len(p), nil
}

func (l *logStream) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if !l.closed && len(l.buf) > 0 {
		l.sendLocked(len(l.buf), false)
	}
}

// Close sends what is left and the end of the log.
func (l *logStream) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.sendLocked(len(l.buf), true)
	l.closed = true
}

func (l *logStream) sendLocked(n int, eof bool) {
	data := append([]byte(nil), l.buf[:n]...)
	l.publish(protocol.LogChunk{JobID: l.job, NodeID: l.id, Offset: l.off, Data: data, EOF: eof})
	l.off += int64(n)
	l.buf = l.buf[n:]
}
