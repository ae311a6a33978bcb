package router

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/omnisync/omnisync/api"
)

// The job record's events and most of its fields are encoded here by hand, byte for byte
// as encoding/json encodes them (TestRecordEncodersMatchEncodingJSON, FuzzEventJSON): a
// record is encoded at every save, and json.Marshal's reflection over them was most of
// what that cost (in a loaded devnet's profile, 0.83 s of encodeLocked's 0.96 s). The
// spec is encoded once a job and a challenge rarely: both are left to encoding/json.

// appendRecordFields appends rec's fields but for its spec and events, as json.Marshal
// encodes them, as the body of an object: no braces, a comma before each field but the
// first. Only an out-of-range time fails (Time.MarshalJSON refuses it too).
func appendRecordFields(b []byte, rec *jobRecord) ([]byte, error) {
	var err error
	b = appendJSONString(append(b, `"id":`...), rec.ID)
	if rec.Owner != "" {
		b = appendJSONString(append(b, `,"owner":`...), string(rec.Owner))
	}
	b = appendJSONString(append(b, `,"consumer":`...), string(rec.Consumer))
	if b, err = appendJSONTime(append(b, `,"started":`...), rec.Started); err != nil {
		return nil, err
	}
	b = strconv.AppendBool(append(b, `,"escrowed":`...), rec.Escrowed)
	if rec.Answered {
		b = append(b, `,"answered":true`...)
	}
	b = append(b, `,"stored":`...)
	if rec.Stored == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, ok := range rec.Stored {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendBool(b, ok)
		}
		b = append(b, ']')
	}
	if len(rec.Tried) > 0 {
		b = append(b, `,"tried":[`...)
		for i, node := range rec.Tried {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, node)
		}
		b = append(b, ']')
	}
	if rec.Node != "" {
		b = appendJSONString(append(b, `,"node":`...), rec.Node)
	}
	if rec.Scores != nil {
		b = appendScores(b, rec.Scores)
	}
	if len(rec.Txs) > 0 {
		b = appendTxs(b, rec.Txs)
	}
	if rec.Attempts != 0 {
		b = strconv.AppendInt(append(b, `,"attempts":`...), int64(rec.Attempts), 10)
	}
	if rec.Verdict != "" {
		b = appendJSONString(append(b, `,"verdict":`...), rec.Verdict)
	}
	if rec.Error != "" {
		b = appendJSONString(append(b, `,"error":`...), rec.Error)
	}
	if !rec.Finished.IsZero() {
		if b, err = appendJSONTime(append(b, `,"finished":`...), rec.Finished); err != nil {
			return nil, err
		}
	}
	if rec.Challenge != nil { // a challenge job's, one in many: not worth its own encoder
		c, err := json.Marshal(rec.Challenge)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"challenge":`...), c...)
	}
	return b, nil
}

// appendScores appends s as the field "scores" of an object, as json.Marshal encodes it.
func appendScores(b []byte, s *api.Scores) []byte {
	b = strconv.AppendUint(append(b, `,"scores":{"compute":`...), uint64(s.Compute), 10)
	b = strconv.AppendUint(append(b, `,"latency":`...), uint64(s.Latency), 10)
	b = strconv.AppendUint(append(b, `,"reliability":`...), uint64(s.Reliability), 10)
	b = strconv.AppendUint(append(b, `,"price":`...), uint64(s.Price), 10)
	return append(strconv.AppendUint(append(b, `,"total":`...), uint64(s.Total), 10), '}')
}

// appendTxs appends txs, tx hashes by stage, as the field "txs" of an object, as
// json.Marshal encodes the map: its keys sorted.
func appendTxs(b []byte, txs map[string]string) []byte {
	var buf [8]string
	keys := buf[:0]
	for k := range txs {
		keys = append(keys, k)
	}
	slices.Sort(keys) // as encoding/json orders a map's keys
	b = append(b, `,"txs":{`...)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(append(appendJSONString(b, k), ':'), txs[k])
	}
	return append(b, '}')
}

// appendEvent appends e as json.Marshal encodes it.
func appendEvent(b []byte, e api.Event) ([]byte, error) {
	b, err := appendJSONTime(append(b, `{"time":`...), e.Time)
	if err != nil {
		return nil, err
	}
	b = appendJSONString(append(b, `,"stage":`...), e.Stage)
	b = appendJSONString(append(b, `,"message":`...), e.Message)
	return append(b, '}'), nil
}

// appendJSONTime appends t as Time.MarshalJSON encodes it: RFC 3339 with nanoseconds,
// quoted, and an error for a time RFC 3339 cannot hold.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b, err := t.AppendText(append(b, '"'))
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// appendJSONString appends s quoted as encoding/json quotes a string: with HTML's <, >
// and & escaped, invalid UTF-8 replaced by U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}
