package router

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// plainRecord is the record encodeLocked writes, encoded by encoding/json in the same
// order: the fields, then the spec and the events.
func plainRecord(t testing.TB, j *job) []byte {
	t.Helper()
	rec := j.recordLocked()
	rec.Events = nil
	rest, err := json.Marshal(struct {
		jobRecord
		Spec struct{} `json:"spec,omitzero"` // hides jobRecord.Spec
	}{jobRecord: rec})
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(j.spec)
	b := append(append(rest[:len(rest)-1:len(rest)-1], `,"spec":`...), spec...)
	if len(j.events) > 0 {
		events, _ := json.Marshal(j.events)
		b = append(append(b, `,"events":`...), events...)
	}
	return append(b, '}')
}

// randomText is a string of what JSON escapes or passes: quotes, backslashes, control
// characters, HTML's <>&, multi-byte runes, U+2028 and U+2029, and invalid UTF-8.
func randomText(rng *rand.Rand) string {
	pieces := []string{"a", "Z", " ", "0", "~", "\x7f", `"`, `\`, "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f",
		"\x00", "\x01", "\x1f", "ü", "€", "😀", "\u2028", "\u2029", "\xff", "\xc3", "\xe2\x80", "\ufffd", "node-1", "68.31%"}
	var s strings.Builder
	for range rng.IntN(12) {
		s.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return s.String()
}

// randomTime is the zero time, now (with its monotonic reading), or a time in the years
// RFC 3339 holds, with or without nanoseconds, in UTC or a zone of whole minutes.
func randomTime(rng *rand.Rand) time.Time {
	switch rng.IntN(6) {
	case 0:
		return time.Time{}
	case 1:
		return time.Now()
	}
	lo, hi := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	t := time.Unix(lo+rng.Int64N(hi-lo), 0)
	switch rng.IntN(3) {
	case 0:
		t = t.Add(time.Duration(rng.IntN(1e9)))
	case 1:
		t = t.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
	}
	if rng.IntN(2) == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", (rng.IntN(47)-23)*3600+rng.IntN(4)*15*60))
}

// The record a save writes is byte for byte what encoding/json makes of it, for records
// of every shape: fields left out or not, empty or not, with text that JSON escapes.
func TestRecordEncodersMatchEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	text := func() string { return randomText(rng) }
	for i := range 2000 {
		j := newJob(text(), keys.Address(text()), api.JobSpec{}, randomTime(rng))
		if i%2 == 0 {
			j.owner = keys.Address(text())
		}
		j.escrowed, j.answered = rng.IntN(2) == 0, rng.IntN(2) == 0
		switch rng.IntN(3) {
		case 0:
			j.stored = nil
		case 1:
			for range rng.IntN(4) {
				j.stored = append(j.stored, rng.IntN(2) == 0)
			}
		}
		for range rng.IntN(3) {
			j.tried = append(j.tried, text())
		}
		j.node, j.verdict, j.errMsg = text(), text(), text()
		if rng.IntN(2) == 0 {
			j.scores = &api.Scores{Compute: rng.Uint32(), Latency: rng.Uint32(), Reliability: uint32(rng.IntN(10_001)), Price: 0, Total: rng.Uint32()}
		}
		for range rng.IntN(12) { // more keys than appendRecordFields has room for on its stack
			j.txs[text()] = text()
		}
		j.attempts = rng.IntN(5) - 1
		j.finished = randomTime(rng)
		if i%7 == 0 {
			j.challenge = &challengeState{Input: api.Input{Name: text(), Digest: text(), Size: rng.Int64()}, Rows: rng.IntN(64), Salt: text(), Hidden: text(), Expected: text()}
		}
		for range 3 {
			for range rng.IntN(4) {
				j.events = append(j.events, api.Event{Time: randomTime(rng), Stage: text(), Message: text()})
			}
			got, want := j.encodeLocked(), plainRecord(t, j)
			if !bytes.Equal(got, want) {
				t.Fatalf("record %d encodes as\n%s\nwant (encoding/json)\n%s", i, got, want)
			}
		}
		for _, e := range j.events {
			got, err := appendEvent(nil, e)
			want, _ := json.Marshal(e)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("event %+v encodes as %s (%v), want %s", e, got, err, want)
			}
		}
	}
}

// A time RFC 3339 cannot hold fails to encode, as it does with encoding/json, rather
// than write a record no router could read.
func TestRecordTimesOutOfRangeFail(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		e := api.Event{Time: tm, Stage: "s", Message: "m"}
		if _, err := json.Marshal(e); err == nil {
			t.Fatalf("encoding/json encodes %v", tm)
		}
		if b, err := appendEvent(nil, e); err == nil {
			t.Fatalf("%v encodes as %s", tm, b)
		}
		if b, err := appendRecordFields(nil, &jobRecord{Started: tm}); err == nil {
			t.Fatalf("a record started at %v encodes as %s", tm, b)
		}
	}
}

// FuzzEventJSON checks appendEvent against encoding/json: the same bytes, or both fail.
func FuzzEventJSON(f *testing.F) {
	f.Add(int64(1764590400), int64(123456789), 0, "placed", "node 1 scored 68.31% <\"quoted\" & ünïcode>\n")
	f.Add(int64(0), int64(0), -330, "", "\u2028\xff\x00")
	f.Add(int64(-62135596800), int64(0), 0, "zero", "the zero time")
	f.Fuzz(func(t *testing.T, sec, nsec int64, offsetMinutes int, stage, message string) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("", offsetMinutes%(48*60)*60))
		if sec == -62135596800 && nsec == 0 {
			tm = time.Time{}
		}
		e := api.Event{Time: tm, Stage: stage, Message: message}
		got, err := appendEvent([]byte("prefix"), e)
		want, wantErr := json.Marshal(e)
		switch {
		case (err != nil) != (wantErr != nil):
			t.Fatalf("%+v: error %v, encoding/json's %v", e, err, wantErr)
		case err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)):
			t.Fatalf("%+v encodes as\n%s\nwant\n%s", e, got, want)
		}
	})
}

// The hand-written encoders know every field of what they encode: a field added to
// jobRecord, api.Event or api.Scores must be added to them (and here), or records would
// silently drop it. The random records above fill only the fields they know of.
func TestRecordEncodersKnowEveryField(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[jobRecord](), []string{"ID", "Owner", "Consumer", "Spec", "Started", "Escrowed", "Answered", "Stored",
			"Tried", "Node", "Scores", "Txs", "Events", "Attempts", "Verdict", "Error", "Finished", "Challenge"}},
		{reflect.TypeFor[api.Event](), []string{"Time", "Stage", "Message"}},
		{reflect.TypeFor[api.Scores](), []string{"Compute", "Latency", "Reliability", "Price", "Total"}},
	} {
		if got := fieldNames(c.typ); !slices.Equal(got, c.want) {
			t.Errorf("%s has fields %v; the record encoders (recordjson.go) write %v", c.typ, got, c.want)
		}
	}
}

// fieldNames is a struct type's field names, in order: what a hand-written encoder of it
// must know.
func fieldNames(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		names = append(names, f.Name)
	}
	return names
}
