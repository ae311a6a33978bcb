package protocol

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
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

// JobInputs uses a carried input only where it hashes to the spec's digest: one that does
// not is told to wrong and fetched, as is one not carried, and a failed fetch names its
// input.
func TestJobInputsFetchWhatIsNotCarriedRight(t *testing.T) {
	a, b := []byte("input a"), []byte("the input b")
	spec := api.JobSpec{Inputs: []api.Input{
		{Name: "a", Digest: api.DigestOf(a), Size: int64(len(a))},
		{Name: "b", Digest: api.DigestOf(b), Size: int64(len(b))},
	}}
	store := map[string][]byte{spec.Inputs[0].Digest: a, spec.Inputs[1].Digest: b}
	var fetched, wrong []string
	get := func(_ context.Context, digest string) ([]byte, error) {
		fetched = append(fetched, digest)
		if d, ok := store[digest]; ok {
			return d, nil
		}
		return nil, errors.New("not stored")
	}
	tell := func(name string, err error) {
		if !errors.Is(err, ErrInlineMismatch) {
			t.Errorf("input %s told as %v, want ErrInlineMismatch", name, err)
		}
		wrong = append(wrong, name)
	}
	for _, tc := range []struct {
		name           string
		carried        [][]byte
		fetched, wrong []string
	}{
		{"both carried", [][]byte{a, b}, nil, nil},
		{"none carried", nil, []string{spec.Inputs[0].Digest, spec.Inputs[1].Digest}, nil},
		{"b carried wrong", [][]byte{a, []byte("not the input b")}, []string{spec.Inputs[1].Digest}, []string{"b"}},
	} {
		fetched, wrong = nil, nil
		got, err := JobInputs(t.Context(), spec, tc.carried, get, tell)
		if err != nil || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
		if !reflect.DeepEqual(fetched, tc.fetched) || !reflect.DeepEqual(wrong, tc.wrong) {
			t.Errorf("%s: fetched %q, told wrong %q; want %q, %q", tc.name, fetched, wrong, tc.fetched, tc.wrong)
		}
	}
	delete(store, spec.Inputs[1].Digest)
	if _, err := JobInputs(t.Context(), spec, [][]byte{a, []byte("not the input b")}, get, nil); err == nil || !strings.Contains(err.Error(), "input b") {
		t.Fatalf("a failed fetch: %v, want an error naming input b", err)
	}
}

// Inputs a Dispatch or VerifyRequest carries travel raw after its JSON and are read back
// only where they hash to the spec's digest; bytes that are not exactly the inputs Inline
// lists, at the sizes the spec gives, make the message malformed.
func TestInlineInputs(t *testing.T) {
	a, b := []byte("input a"), []byte("the input b")
	spec := api.JobSpec{Inputs: []api.Input{
		{Name: "a", Digest: api.DigestOf(a), Size: int64(len(a))},
		{Name: "b", Digest: api.DigestOf(b), Size: int64(len(b))},
	}}
	msg := Encode(Dispatch{JobID: "j", Router: "r", Spec: spec, Inputs: [][]byte{nil, b}})
	if !bytes.HasSuffix(msg, append([]byte{0}, b...)) {
		t.Fatalf("input b not raw after the JSON: %q", msg)
	}
	d, err := Decode[Dispatch](msg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := InlineInput(d.Inputs, 0, spec.Inputs[0].Digest); got != nil || err != nil {
		t.Errorf("input not carried: %q, %v; want nil, nil", got, err)
	}
	if got, err := InlineInput(d.Inputs, 1, spec.Inputs[1].Digest); string(got) != string(b) || err != nil {
		t.Errorf("input carried: %q, %v", got, err)
	}
	if got, err := InlineInput(d.Inputs, 1, spec.Inputs[0].Digest); got != nil || !errors.Is(err, ErrInlineMismatch) {
		t.Errorf("another input's bytes: %q, %v; want ErrInlineMismatch", got, err)
	}
	if got, err := InlineInput(nil, 3, spec.Inputs[0].Digest); got != nil || err != nil {
		t.Errorf("no inputs carried: %q, %v", got, err)
	}
	if d, err := Decode[Dispatch](Encode(Dispatch{JobID: "j", Router: "r", Spec: spec, Inputs: [][]byte{b, a}})); err != nil || d.Inputs != nil {
		t.Errorf("inputs of other sizes than the spec's are not carried: %v, %v", d.Inputs, err)
	}
	v, err := Decode[VerifyRequest](Encode(VerifyRequest{JobID: "j", Router: "r", Spec: spec, Inputs: [][]byte{a, b}}))
	if err != nil || string(v.Inputs[0]) != string(a) || string(v.Inputs[1]) != string(b) {
		t.Fatalf("verify request: %q, %v", v.Inputs, err)
	}

	json := func(inline string) string {
		return `{"job_id":"j","router":"r","spec":{"inputs":[{"name":"a","digest":"x","size":7},{"name":"b","digest":"y","size":11}]}` + inline + `}`
	}
	for name, raw := range map[string]string{
		"bytes and no list":       json(``) + "\x00" + string(a),
		"a NUL and nothing":       json(``) + "\x00",
		"a list and no bytes":     json(`,"inline":[0]`),
		"bytes short of the size": json(`,"inline":[0,1]`) + "\x00" + string(a) + "short",
		"bytes beyond the sizes":  json(`,"inline":[0]`) + "\x00" + string(a) + "x",
		"an index beyond":         json(`,"inline":[2]`) + "\x00" + string(a),
		"indexes out of order":    json(`,"inline":[1,0]`) + "\x00" + string(b) + string(a),
		"an index twice":          json(`,"inline":[0,0]`) + "\x00" + string(a) + string(a),
		"too many bytes":          `{"job_id":"j","router":"r","spec":{"inputs":[{"size":262145}]},"inline":[0]}` + "\x00" + strings.Repeat("x", MaxInlineInputs+1),
	} {
		if _, err := Decode[Dispatch]([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("dispatch, %s: %v, want ErrMalformed", name, err)
		}
		if _, err := Decode[VerifyRequest]([]byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("verify request, %s: %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Decode[Result]([]byte(`{"job_id":"j","node_id":"n"}` + "\x00" + string(a))); !errors.Is(err, ErrMalformed) {
		t.Errorf("a result with bytes after its JSON: %v, want ErrMalformed", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(Dispatch{JobID: "job-1", Router: "r"}))
	f.Add(Encode(Dispatch{JobID: "job-1", Router: "r", Spec: api.JobSpec{Inputs: []api.Input{{Size: 3}, {Size: 2}}}, Inputs: [][]byte{nil, []byte("ab")}}))
	f.Add(Encode(VerifyRequest{JobID: "job-1", Router: "r", Spec: api.JobSpec{Inputs: []api.Input{{Size: 3}}}, Inputs: [][]byte{[]byte("abc")}}))
	f.Add(Encode(Heartbeat{ID: "n", Role: RoleNode}))
	f.Add([]byte(`{"job_id":"x","spec":{"inputs":[{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Decode[Heartbeat](data)
		if d, err := Decode[Dispatch](data); err == nil {
			again, err := Decode[Dispatch](Encode(d))
			if err != nil || !reflect.DeepEqual(inputsOrNil(again.Inputs), inputsOrNil(d.Inputs)) {
				t.Fatalf("dispatch %q: encoded again, %q, %v; want the inputs %q", data, again.Inputs, err, d.Inputs)
			}
		}
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

// inputsOrNil is nil for inputs of which none is carried.
func inputsOrNil(inputs [][]byte) [][]byte {
	for _, b := range inputs {
		if b != nil {
			return inputs
		}
	}
	return nil
}
