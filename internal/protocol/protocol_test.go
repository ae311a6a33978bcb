package protocol

import (
	"errors"
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
