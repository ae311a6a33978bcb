package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// sameBucket returns two keys of one bucket, the first present in a committed store and
// the second never written, and that store's root.
func sameBucket(t testing.TB) (s *Store, root []byte, present, absent []byte) {
	t.Helper()
	seen := map[int]string{}
	for i := 0; ; i++ {
		k := fmt.Sprintf("acct/%d", i)
		if other, ok := seen[bucketOf(k)]; ok {
			present, absent = []byte(other), []byte(k)
			break
		}
		seen[bucketOf(k)] = k
	}
	s = OpenMemory()
	_ = s.Set(present, []byte("1000 OMNI"))
	_ = s.Set([]byte("other/key"), []byte("x"))
	root, _, _ = s.Commit()
	return s, root, present, absent
}

// TestProofCannotRelabelALeaf is the attack of finding 7: a participant takes the real
// proof of a present key and relabels that key's leaf with another key of the same bucket,
// to show the present key absent (or the other key holding its value) under the real
// root. Every leaf hash is recomputed from its key and value, so the relabelled leaf no
// longer hashes to the root.
func TestProofCannotRelabelALeaf(t *testing.T) {
	s, root, present, absent := sameBucket(t)
	value, p, err := s.Prove(present)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyProof(root, present, value, p) {
		t.Fatal("the honest proof does not verify")
	}
	if len(p.Leaves) != 1 || !bytes.Equal(p.Leaves[0].Key, present) {
		t.Fatalf("bucket holds %d leaves, want just %q", len(p.Leaves), present)
	}
	forged := p
	forged.Leaves = []ProofLeaf{{Key: absent, Value: p.Leaves[0].Value}}
	if _, _, err := forged.Verify(root, present); !errors.Is(err, ErrBadProof) {
		t.Errorf("relabelled proof of %q: err %v, want ErrBadProof", present, err)
	}
	if VerifyProof(root, present, nil, forged) {
		t.Errorf("relabelled leaf shows the present key %q absent", present)
	}
	if VerifyProof(root, absent, value, forged) {
		t.Errorf("relabelled leaf shows %q holding %q's value", absent, present)
	}

	// The honest proof of the absent key is the same bucket: it shows it absent, and the
	// present key's leaf cannot be dropped or swapped for another value.
	_, pa, err := s.Prove(absent)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyProof(root, absent, nil, pa) || VerifyProof(root, absent, value, pa) {
		t.Error("honest absence proof misverifies")
	}
	dropped := pa
	dropped.Leaves = nil
	if VerifyProof(root, absent, nil, dropped) || VerifyProof(root, present, nil, dropped) {
		t.Error("an emptied bucket verifies")
	}
	changed := pa
	changed.Leaves = []ProofLeaf{{Key: present, Value: []byte("1 OMNI")}}
	if _, _, err := changed.Verify(root, present); !errors.Is(err, ErrBadProof) {
		t.Errorf("proof with a changed value: err %v, want ErrBadProof", err)
	}
}

// An empty value is present, and its proof says so.
func TestProofOfAnEmptyValue(t *testing.T) {
	s := OpenMemory()
	_ = s.Set([]byte("empty"), nil)
	root, _, _ := s.Commit()
	_, p, _ := s.Prove([]byte("empty"))
	p, err := DecodeProof(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	v, present, err := p.Verify(root, []byte("empty"))
	if err != nil || !present || v == nil || len(v) != 0 {
		t.Fatalf("Verify = %q, %v, %v; want an empty present value", v, present, err)
	}
}

func TestProofEncodingRoundTripsAndRejectsDamage(t *testing.T) {
	s, root, present, absent := sameBucket(t)
	for _, k := range [][]byte{present, absent, []byte("other/key"), []byte("nothing")} {
		v, p, _ := s.Prove(k)
		enc := p.Encode()
		got, err := DecodeProof(enc)
		if err != nil {
			t.Fatalf("decode proof of %s: %v", k, err)
		}
		if !VerifyProof(root, k, v, got) {
			t.Fatalf("decoded proof of %s does not verify", k)
		}
		_, n := binary.Uvarint(enc) // the bucket number; the leaf count, under 128, follows
		withCount := func(count ...byte) []byte {
			return slices.Concat(enc[:n], count, enc[n+1:])
		}
		damaged := map[string][]byte{
			"truncated":          enc[:len(enc)-1],
			"trailing byte":      append(slices.Clone(enc), 0),
			"huge leaf count":    withCount(0xff, 0xff, 0xff, 0x0f),
			"non-minimal varint": withCount(enc[n]|0x80, 0),
			"empty":              nil,
		}
		for name, b := range damaged {
			if _, err := DecodeProof(b); !errors.Is(err, ErrBadProof) {
				t.Errorf("%s proof of %s: err %v, want ErrBadProof", name, k, err)
			}
		}
	}
}

func FuzzDecodeProof(f *testing.F) {
	s, root, present, absent := sameBucket(f)
	for _, k := range [][]byte{present, absent, []byte("nothing")} {
		_, p, _ := s.Prove(k)
		f.Add(p.Encode(), k)
	}
	f.Add([]byte{}, []byte("k"))
	f.Fuzz(func(t *testing.T, b, key []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Encode(), b) {
			t.Fatalf("decoded %x re-encodes to %x", b, p.Encode())
		}
		// An untrusted proof must verify or fail, never panic; what verifies under the real
		// root must be what the store holds.
		v, present, err := p.Verify(root, key)
		if err != nil {
			return
		}
		want, _, _ := s.Prove(key)
		if present != (want != nil) || !bytes.Equal(v, want) {
			t.Fatalf("proof shows %q = %q (present %v); the store holds %q", key, v, present, want)
		}
	})
}
