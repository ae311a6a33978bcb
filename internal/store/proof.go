package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadProof is a proof that does not show what it claims under the root it is checked
// against, or that does not decode.
var ErrBadProof = errors.New("bad proof")

// Proof shows that a key has a value (or has none) under a root: every key of the key's
// bucket with its value, in key order, and the sibling hashes from the bucket up to the
// root.
//
// A leaf carries its value, not its leaf hash, so that the verifier computes every leaf
// hash itself. A proof that carried leaf hashes labelled with their keys could be forged:
// relabel the leaf of a present key with another key of the bucket and it would show the
// present key absent, under the real root (security review, finding 7).
type Proof struct {
	Bucket   int
	Leaves   []ProofLeaf
	Siblings [][32]byte // depth hashes, the bucket's sibling first
}

// ProofLeaf is one key of a proven bucket and its value.
type ProofLeaf struct {
	Key   []byte
	Value []byte
}

// prove reads the leaves of key's bucket and the path above it; value gives each key's
// value, which the tree does not hold. The values belong to the store.
func (m *merkle) prove(key string, value func(string) []byte) Proof {
	b := bucketOf(key)
	p := Proof{Bucket: b}
	for _, e := range m.buckets[b] {
		p.Leaves = append(p.Leaves, ProofLeaf{Key: []byte(e.key), Value: value(e.key)})
	}
	for i := numBuckets + b; i > 1; i /= 2 {
		p.Siblings = append(p.Siblings, m.nodes[i^1])
	}
	return p
}

// Verify checks the proof against root and returns key's value, or present false when the
// proof shows the key absent. The error, when the proof does not verify, wraps ErrBadProof
// and says why.
func (p Proof) Verify(root, key []byte) (value []byte, present bool, err error) {
	if len(p.Siblings) != depth {
		return nil, false, fmt.Errorf("%w: %d sibling hashes, want %d", ErrBadProof, len(p.Siblings), depth)
	}
	if b := bucketOf(string(key)); p.Bucket != b {
		return nil, false, fmt.Errorf("%w: proof is of bucket %d, but the key is in bucket %d", ErrBadProof, p.Bucket, b)
	}
	entries := make([]leafEntry, len(p.Leaves))
	for i, l := range p.Leaves {
		if i > 0 && string(p.Leaves[i-1].Key) >= string(l.Key) {
			return nil, false, fmt.Errorf("%w: leaves out of key order", ErrBadProof) // so none can hide
		}
		if bucketOf(string(l.Key)) != p.Bucket {
			return nil, false, fmt.Errorf("%w: leaf %q is not in bucket %d", ErrBadProof, l.Key, p.Bucket)
		}
		// The leaf hash binds the key to its value: never taken from the proof.
		entries[i] = leafEntry{key: string(l.Key), leaf: leafHash(string(l.Key), l.Value)}
		if string(l.Key) == string(key) {
			value, present = l.Value, true
		}
	}
	h := bucketHash(entries)
	i := numBuckets + p.Bucket
	for _, s := range p.Siblings {
		if i%2 == 0 {
			h = nodeHash(h, s)
		} else {
			h = nodeHash(s, h)
		}
		i /= 2
	}
	if !bytes.Equal(h[:], root) {
		return nil, false, fmt.Errorf("%w: the proof hashes to %X, not to the root %X", ErrBadProof, h[:], root)
	}
	if present && value == nil {
		value = []byte{} // present with an empty value, which nil (absent) must not read as
	}
	return value, present, nil
}

// VerifyProof reports whether the proof shows, under root, that key holds value (or, for a
// nil value, that key is absent).
func VerifyProof(root, key, value []byte, p Proof) bool {
	got, present, err := p.Verify(root, key)
	return err == nil && present == (value != nil) && bytes.Equal(got, value)
}

// Encode is the proof's wire form: uvarint(bucket), uvarint(number of leaves), each leaf as
// uvarint(len key) key uvarint(len value) value, then the depth sibling hashes, 32 bytes
// each. Every proof has one encoding.
func (p Proof) Encode() []byte {
	n := 2*binary.MaxVarintLen64 + len(p.Siblings)*32
	for _, l := range p.Leaves {
		n += 2*binary.MaxVarintLen64 + len(l.Key) + len(l.Value)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(p.Bucket))
	b = binary.AppendUvarint(b, uint64(len(p.Leaves)))
	for _, l := range p.Leaves {
		b = binary.AppendUvarint(b, uint64(len(l.Key)))
		b = append(b, l.Key...)
		b = binary.AppendUvarint(b, uint64(len(l.Value)))
		b = append(b, l.Value...)
	}
	for _, s := range p.Siblings {
		b = append(b, s[:]...)
	}
	return b
}

// DecodeProof reads a proof's wire form (see Encode); it accepts exactly what Encode
// writes, and a proof from the wire is untrusted until Verify passes. The proof does not
// share memory with b.
func DecodeProof(b []byte) (Proof, error) {
	d := proofDecoder{b: b}
	p := Proof{Bucket: int(d.uvarint(numBuckets - 1))}
	// Each leaf takes at least two bytes: a bound that keeps a forged count from
	// allocating more than the input could hold.
	n := d.uvarint(uint64(len(d.b) / 2))
	for range n {
		key := d.bytes()
		value := d.bytes()
		if d.err != nil {
			break
		}
		p.Leaves = append(p.Leaves, ProofLeaf{Key: key, Value: value})
	}
	if d.err == nil && len(d.b) != depth*32 {
		d.err = fmt.Errorf("%d bytes of sibling hashes, want %d", len(d.b), depth*32)
	}
	if d.err != nil {
		return Proof{}, fmt.Errorf("%w: %v", ErrBadProof, d.err)
	}
	p.Siblings = make([][32]byte, depth)
	for i := range p.Siblings {
		copy(p.Siblings[i][:], d.b[32*i:])
	}
	// Non-minimal varints decode too; the one encoding rule rejects them.
	if !bytes.Equal(p.Encode(), b) {
		return Proof{}, fmt.Errorf("%w: not in canonical form", ErrBadProof)
	}
	return p, nil
}

// proofDecoder reads fields in order; the first error sticks and later reads return zeros.
type proofDecoder struct {
	b   []byte
	err error
}

func (d *proofDecoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	switch {
	case n <= 0:
		d.err = errors.New("truncated or overlong varint")
	case v > limit:
		d.err = fmt.Errorf("field value %d exceeds %d", v, limit)
	default:
		d.b = d.b[n:]
		return v
	}
	return 0
}

func (d *proofDecoder) bytes() []byte {
	n := d.uvarint(uint64(len(d.b)))
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errors.New("field runs past the end")
		return nil
	}
	out := bytes.Clone(d.b[:n])
	d.b = d.b[n:]
	return out
}
