package api

import (
	"bufio"
	"bytes"
	"io"
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
	Data []byte // the reader's, valid until its next event
}

// sseReader reads server-sent events (the subset the API sends: event, data and comments).
type sseReader struct {
	sc   *bufio.Scanner
	data []byte // the current event's data, reused from one event to the next
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

// Next returns the next event, or io.EOF (or the read error) when the stream ends. The
// event's Data is the reader's, and is overwritten by the next call: each event's data is
// copied once, from the line it came in, and no more.
func (r *sseReader) Next() (sseEvent, error) {
	var ev sseEvent
	r.data = r.data[:0]
	pending := false // a data line was read
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if !pending {
				continue // a blank line with nothing pending, e.g. after a comment
			}
			ev.Data = r.data
			if ev.Name == "" {
				ev.Name = "message"
			}
			return ev, nil
		}
		if line[0] == ':' {
			continue // comment, used as a keep-alive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
		case "data":
			if pending {
				r.data = append(r.data, '\n')
			}
			r.data, pending = append(r.data, value...), true
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
