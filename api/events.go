package api

import (
	"bufio"
	"io"
	"strings"
)

// Server-sent event names on GET /v1/jobs/{id}/events. Each "job" event carries the whole Job
// as JSON and is sent whenever it changes; the stream ends after a final status. An "error"
// event carries an Error and also ends the stream.
const (
	EventJob   = "job"
	EventError = "error"
)

// maxEventBytes bounds one event's data; a Job with a long event history stays far below it.
const maxEventBytes = 8 << 20

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Name string
	Data string
}

// sseReader reads server-sent events (the subset the API sends: event, data and comments).
type sseReader struct {
	sc *bufio.Scanner
}

// sseFirstBuffer is an event stream's first line buffer: a job's event is a few KiB, and
// the buffer grows up to maxEventBytes for a longer one. (64 KiB a stream was a sixteenth
// of all a devnet load allocated, its consumers following thousands of jobs.)
const sseFirstBuffer = 4 << 10

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, sseFirstBuffer), maxEventBytes)
	return &sseReader{sc: sc}
}

// Next returns the next event, or io.EOF (or the read error) when the stream ends.
func (r *sseReader) Next() (sseEvent, error) {
	var ev sseEvent
	var data []string
	for r.sc.Scan() {
		line := r.sc.Text()
		if line == "" {
			if data == nil {
				continue // a blank line with nothing pending, e.g. after a comment
			}
			ev.Data = strings.Join(data, "\n")
			if ev.Name == "" {
				ev.Name = "message"
			}
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue // comment, used as a keep-alive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
