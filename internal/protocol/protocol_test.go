package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, in := range []string{``, `{`, `{"job_id":"j"} x`, `{"job_id":"j","bogus":1}`, `{"node_id":"n"}`, `[]`} {
		if _, err := Decode[Result]([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%q) = %v, want ErrMalformed", in, err)
		}
	}
	r, err := Decode[Result](Encode(Result{JobID: "j", NodeID: "n", GPUMillis: 3}))
	if err != nil || r.GPUMillis != 3 {
		t.Fatalf("round trip: %+v %v", r, err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Dispatch{JobID: "job-1", Router: "r"}))
	f.Add(Encode(Heartbeat{ID: "n", Role: RoleNode}))
	f.Add([]byte(`{"job_id":"x","spec":{"inputs":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode[Heartbeat](data)
		_, _ = Decode[Dispatch](data)
		_, _ = Decode[Result](data)
		_, _ = Decode[LogChunk](data)
		_, _ = Decode[VerifyRequest](data)
		_, _ = Decode[Verdict](data)
		_, _ = Decode[Ack](data)
		_, _ = Decode[Pace](data)
	})
}

// FuzzDecodeCapacity: the capacity messages' decoders never panic, and what they accept
// is within bounds and encodes back to something they accept again.
func FuzzDecodeCapacity(f *testing.F) {
	seed := strings.Repeat("ab", 32)
	f.Add(Encode(CapacityRequest{Node: "n", Seed: seed, N: 64, Links: 4, DeadlineMillis: 2000}))
	f.Add(Encode(CapacityAnswer{Seed: seed, Digests: []string{"sha256:00"}}))
	f.Add(Encode(SpotRequest{Seed: seed, Link: 2}))
	f.Add(Encode(SpotAnswer{Prev: []byte("OMT1"), Cur: []byte("OMT1")}))
	f.Add([]byte(`{"seed":"` + seed + `","link":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := Decode[CapacityRequest](data); err == nil {
			if r.N < 1 || r.N > MaxCapacityN || r.Links < 1 || r.Links > MaxCapacityLinks {
				t.Fatalf("accepted %+v", r)
			}
			if _, err := Decode[CapacityRequest](Encode(r)); err != nil {
				t.Fatal(err)
			}
		}
		if a, err := Decode[CapacityAnswer](data); err == nil {
			if len(a.Digests) > MaxCapacityLinks {
				t.Fatalf("accepted %d digests", len(a.Digests))
			}
			if _, err := Decode[CapacityAnswer](Encode(a)); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := Decode[SpotRequest](data); err == nil && (r.Link < 1 || r.Link > MaxCapacityLinks) {
			t.Fatalf("accepted link %d", r.Link)
		}
		if a, err := Decode[SpotAnswer](data); err == nil && (len(a.Prev) > MaxCapacityProduct || len(a.Cur) > MaxCapacityProduct) {
			t.Fatalf("accepted %d and %d bytes", len(a.Prev), len(a.Cur))
		}
	})
}

func TestCapacityMessages(t *testing.T) {
	seed := strings.Repeat("0f", 32)
	if got := CapacitySubject("node1", "val1"); got != "omni.node.node1.capacity.val1" {
		t.Fatalf("subject %q", got)
	}
	if s, ok := SenderOf(CapacitySubject("node1", "val1")); !ok || s != "node1" {
		t.Fatalf("the subject is the node's namespace: %q", s)
	}
	for name, bad := range map[string]any{
		"request without a seed":   CapacityRequest{Node: "n", N: 8, Links: 1, DeadlineMillis: 1},
		"request with n too big":   CapacityRequest{Node: "n", Seed: seed, N: MaxCapacityN + 1, Links: 1, DeadlineMillis: 1},
		"request without deadline": CapacityRequest{Node: "n", Seed: seed, N: 8, Links: 1},
		"upper-case seed":          CapacityRequest{Node: "n", Seed: strings.ToUpper(seed), N: 8, Links: 1, DeadlineMillis: 1},
		"answer with both":         CapacityAnswer{Seed: seed, Digests: []string{"d"}, Error: "e"},
		"answer with neither":      CapacityAnswer{Seed: seed},
		"spot of link 0":           SpotRequest{Seed: seed},
		"spot answer too large":    SpotAnswer{Cur: make([]byte, MaxCapacityProduct+1)},
	} {
		var err error
		switch m := bad.(type) {
		case CapacityRequest:
			_, err = Decode[CapacityRequest](Encode(m))
		case CapacityAnswer:
			_, err = Decode[CapacityAnswer](Encode(m))
		case SpotRequest:
			_, err = Decode[SpotRequest](Encode(m))
		case SpotAnswer:
			_, err = Decode[SpotAnswer](Encode(m))
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	full := SpotAnswer{Prev: make([]byte, MaxCapacityProduct), Cur: make([]byte, MaxCapacityProduct)}
	if len(Encode(full)) > 1<<20 {
		t.Fatalf("a full spot answer is %d bytes, over NATS's 1 MiB", len(Encode(full)))
	}
	if _, err := Decode[SpotAnswer](Encode(full)); err != nil {
		t.Fatal(err)
	}
}

func TestSenderOf(t *testing.T) {
	for subject, want := range map[string]string{
		HeartbeatSubject("abc"): "abc", ResultSubject("x1"): "x1", "omni.router.result": "", "omni.node.": "", "omni.node..result": "",
	} {
		got, ok := SenderOf(subject)
		if got != want || ok != (want != "") {
			t.Errorf("SenderOf(%q) = %q, %v; want %q", subject, got, ok, want)
		}
	}
}

func TestLogChunkBounds(t *testing.T) {
	ok := LogChunk{JobID: "j", NodeID: "n", Offset: 10, Data: make([]byte, MaxLogChunk), EOF: true}
	if got, err := Decode[LogChunk](Encode(ok)); err != nil || got.Offset != 10 || !got.EOF || len(got.Data) != MaxLogChunk {
		t.Fatalf("a full chunk: %+v %v", got, err)
	}
	for name, bad := range map[string]LogChunk{
		"too large":       {JobID: "j", NodeID: "n", Data: make([]byte, MaxLogChunk+1)},
		"negative offset": {JobID: "j", NodeID: "n", Offset: -1},
		"no node":         {JobID: "j"},
	} {
		if _, err := Decode[LogChunk](Encode(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPaceMustBePositive(t *testing.T) {
	if got, err := Decode[Pace](Encode(Pace{HeartbeatMillis: 2500})); err != nil || got.Interval() != 2500*time.Millisecond {
		t.Fatalf("a pace of 2.5 s: %+v %v", got, err)
	}
	for _, bad := range []string{`{"heartbeat_ms":0}`, `{"heartbeat_ms":-5}`, `{}`} {
		if _, err := Decode[Pace]([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
