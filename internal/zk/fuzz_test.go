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
