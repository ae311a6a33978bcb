package zk

import (
	"bytes"
	"testing"
)

// Decoders and Verify take bytes from the network: on any bytes they return an error or a
// value, never panic, and never accept a proof other than the honest one.

func FuzzDecodeProof(f *testing.F) {
	_, _, _, proof := honestProof(f, 1)
	f.Add(proof)
	f.Add([]byte{})
	f.Add(append(proof[:128:128], 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if _, err := p.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeVerifyingKey(f *testing.F) {
	vk, err := sharedTinyKeys(f).VerifyingKey().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	_, _, st, proof := honestProof(f, 1)
	f.Add(vk)
	f.Add([]byte{})
	f.Add(vk[:len(vk)-130])
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeVerifyingKey(b)
		if err != nil {
			return
		}
		// A hostile key may be well formed: verifying with it must still not panic.
		_ = Verify(k, st, proof)
	})
}

func FuzzVerify(f *testing.F) {
	_, _, st, proof := honestProof(f, 1)
	vk := sharedTinyKeys(f).VerifyingKey()
	f.Add(proof)
	tampered := append([]byte(nil), proof...)
	tampered[40] ^= 1
	f.Add(tampered)
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := Verify(vk, st, b); err == nil && !bytes.Equal(b, proof) {
			t.Fatalf("verified a proof other than the honest one: %x", b)
		}
	})
}

// The job blobs: what decodes re-encodes to the same bytes (the encodings are canonical).

func FuzzDecodeModel(f *testing.F) {
	m, _, _, _ := honestProof(f, 1)
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:10])
	f.Add([]byte("OMZM\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeModel(b)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, %v; want %x", again, err, b)
		}
	})
}

func FuzzDecodeInput(f *testing.F) {
	_, in, _, _ := honestProof(f, 1)
	b, err := in.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInput(b)
		if err != nil {
			return
		}
		again, err := in.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, %v; want %x", again, err, b)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	_, _, st, proof := honestProof(f, 1)
	b, err := Result{Output: st.Output, Proof: proof}.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := DecodeResult(b)
		if err != nil {
			return
		}
		again, err := res.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, %v; want %x", again, err, b)
		}
	})
}
