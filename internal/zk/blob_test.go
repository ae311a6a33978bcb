package zk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
)

func TestBlobsRoundTrip(t *testing.T) {
	m, in, st, proof := honestProof(t, 1)
	mb, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeModel(mb)
	if err != nil {
		t.Fatal(err)
	}
	if mc, _ := ModelCommitment(got); mc != st.Model {
		t.Fatal("the decoded model commits to something else")
	}
	ib, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	gotIn, err := DecodeInput(ib)
	if err != nil || gotIn.Salt != in.Salt || !slices.Equal(gotIn.Values, in.Values) {
		t.Fatalf("input %+v, %v; want %+v", gotIn, err, in)
	}
	rb, err := Result{Output: st.Output, Proof: proof}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	res, err := DecodeResult(rb)
	if err != nil || !slices.Equal(res.Output, st.Output) || !bytes.Equal(res.Proof, proof) {
		t.Fatalf("result %+v, %v", res, err)
	}
	// Every strict prefix and every extension of each blob is refused.
	for name, b := range map[string][]byte{"model": mb, "input": ib, "result": rb} {
		decode := map[string]func([]byte) error{
			"model":  func(b []byte) error { _, err := DecodeModel(b); return err },
			"input":  func(b []byte) error { _, err := DecodeInput(b); return err },
			"result": func(b []byte) error { _, err := DecodeResult(b); return err },
		}[name]
		for n := range len(b) {
			if err := decode(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s cut to %d of %d bytes: err = %v", name, n, len(b), err)
			}
		}
		if err := decode(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s with a byte appended: err = %v", name, err)
		}
	}
}

func TestParseShapeAndCommitment(t *testing.T) {
	for _, id := range []string{"8x4s7-4x2s6", "64x32s7-32x10s6", "1x1s0"} {
		s, err := ParseShape(id)
		if err != nil || s.ID() != id {
			t.Fatalf("ParseShape(%q) = %v, %v", id, s, err)
		}
	}
	for _, id := range []string{"", "8x4s7-", "8x4s7-5x2s6", "08x4s7", "+8x4s7", "8x4s32", "8x4", "8X4s7", "0x4s1", "4097x1s0"} {
		if _, err := ParseShape(id); err == nil {
			t.Fatalf("ParseShape(%q) accepted", id)
		}
	}
	if got := tinyShape.Ops(); got != 2*(8*4+4*2) {
		t.Fatalf("Ops = %d", got)
	}
	_, _, st, _ := honestProof(t, 1)
	if c, err := ParseCommitment(st.Model.String()); err != nil || c != st.Model {
		t.Fatalf("ParseCommitment: %v, %v", c, err)
	}
	for _, s := range []string{"", st.Model.String()[2:], "FF" + st.Model.String()[2:], "ff" + st.Model.String()[2:]} {
		if _, err := ParseCommitment(s); !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseCommitment(%q): err = %v", s, err)
		}
	}
}

// Processes that share a key directory agree on one setup per shape, whoever stores
// first; a verifier only reads keys and never makes them.
func TestKeyCacheSharesOneSetup(t *testing.T) {
	dir := t.TempDir()
	s := Shape{{In: 2, Out: 1, Shift: 0}}
	if _, err := NewKeyCache(dir).VerifyingKey(s); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("VerifyingKey before any setup: err = %v, want ErrNoKeys", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("VerifyingKey made keys: %v", entries)
	}
	caches := []*KeyCache{NewKeyCache(dir), NewKeyCache(dir), NewKeyCache(dir)}
	keys := make([]*Keys, len(caches))
	var wg sync.WaitGroup
	for i, c := range caches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if keys[i], err = c.Keys(s); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	vk, err := NewKeyCache(dir).VerifyingKey(s)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := vk.MarshalBinary()
	rng := rand.New(rand.NewPCG(5, 5))
	m := randomModel(rng, s)
	mc, _ := ModelCommitment(m)
	for i, k := range keys {
		got, _ := k.VerifyingKey().MarshalBinary()
		if !bytes.Equal(got, want) {
			t.Fatalf("process %d kept its own setup", i)
		}
		in := randomInput(rng, 2)
		out, proof, err := Prove(k, m, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(vk, Statement{mc, InputCommitment(in.Values, in.Salt), out}, proof); err != nil {
			t.Fatalf("process %d's proof: %v", i, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("directory holds %d files, want the one key file", len(entries))
	}
}
