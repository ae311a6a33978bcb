package zk

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bn254 "github.com/consensys/gnark-crypto/ecc/bn254"
	groth16 "github.com/consensys/gnark/backend/groth16/bn254"
)

// Proofs and verifying keys travel in gnark's compressed encoding. gnark's decoders trust
// the length prefixes they read (a hostile prefix asks for gigabytes), so the layout is
// checked here first: every point compressed, every length within the bytes that follow,
// nothing left over. Only then does gnark decode, with its subgroup checks.

const (
	g1Size = bn254.SizeOfG1AffineCompressed
	g2Size = bn254.SizeOfG2AffineCompressed

	// MaxProofBytes bounds a proof: ours are 4 points, one commitment and its length.
	MaxProofBytes = 1 << 10
	// MaxVerifyingKeyBytes bounds a verifying key; ours grow by one point per output.
	MaxVerifyingKeyBytes = 1 << 20
	maxCommitments       = 8
)

// layout walks gnark's compressed encoding without decoding it.
type layout struct {
	b   []byte
	err error
}

func (l *layout) fail(format string, args ...any) {
	if l.err == nil {
		l.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

// points skips n compressed points of the given size.
func (l *layout) points(n uint64, size int) {
	if l.err != nil {
		return
	}
	if n > uint64(len(l.b)/size) {
		l.fail("%d points in %d bytes", n, len(l.b))
		return
	}
	for range n {
		if l.b[0]>>6 == 0 { // the top two bits are zero only in the uncompressed form
			l.fail("uncompressed point")
			return
		}
		l.b = l.b[size:]
	}
}

// count reads a 4-byte length, at most limit.
func (l *layout) count(limit uint64) uint64 {
	if l.err != nil {
		return 0
	}
	if len(l.b) < 4 {
		l.fail("truncated")
		return 0
	}
	n := uint64(binary.BigEndian.Uint32(l.b))
	l.b = l.b[4:]
	if n > limit {
		l.fail("length %d over %d", n, limit)
	}
	return n
}

func (l *layout) end() error {
	if l.err == nil && len(l.b) != 0 {
		l.fail("%d trailing bytes", len(l.b))
	}
	return l.err
}

// DecodeProof decodes a proof; it does not verify it.
func DecodeProof(b []byte) (*groth16.Proof, error) {
	if len(b) > MaxProofBytes {
		return nil, fmt.Errorf("%w: proof of %d bytes", ErrMalformed, len(b))
	}
	l := layout{b: b}
	l.points(1, g1Size) // Ar
	l.points(1, g2Size) // Bs
	l.points(1, g1Size) // Krs
	l.points(l.count(maxCommitments), g1Size)
	l.points(1, g1Size) // the commitments' proof of knowledge
	if err := l.end(); err != nil {
		return nil, err
	}
	var p groth16.Proof
	if _, err := p.ReadFrom(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: proof: %v", ErrMalformed, err)
	}
	return &p, nil
}

// VerifyingKey is a shape's Groth16 verifying key.
type VerifyingKey struct {
	vk groth16.VerifyingKey
}

// MarshalBinary encodes the key in gnark's compressed form.
func (vk *VerifyingKey) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := vk.vk.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("zk: encode verifying key: %w", err)
	}
	return buf.Bytes(), nil
}

// Outputs is the length of the output vector the key's circuit proves.
func (vk *VerifyingKey) Outputs() int {
	// K has a point for the constant 1, each public input and each commitment.
	return len(vk.vk.G1.K) - 1 - len(vk.vk.PublicAndCommitmentCommitted) - 2
}

// DecodeVerifyingKey decodes and checks a verifying key.
func DecodeVerifyingKey(b []byte) (*VerifyingKey, error) {
	if len(b) > MaxVerifyingKeyBytes {
		return nil, fmt.Errorf("%w: verifying key of %d bytes", ErrMalformed, len(b))
	}
	l := layout{b: b}
	l.points(2, g1Size) // α, β, then β, γ in G2, then δ in G1 and in G2
	l.points(2, g2Size)
	l.points(1, g1Size)
	l.points(1, g2Size)
	l.points(l.count(MaxVerifyingKeyBytes/g1Size), g1Size) // K
	for range l.count(maxCommitments) {                    // public wires each commitment covers
		n := l.count(uint64(len(l.b) / 8))
		if l.err == nil {
			l.b = l.b[8*n:]
		}
	}
	l.points(2*l.count(maxCommitments), g2Size) // Pedersen keys: G and GSigmaNeg each
	if err := l.end(); err != nil {
		return nil, err
	}
	vk := &VerifyingKey{}
	if _, err := vk.vk.ReadFrom(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: verifying key: %v", ErrMalformed, err)
	}
	if vk.Outputs() < 1 {
		return nil, fmt.Errorf("%w: verifying key for %d outputs", ErrMalformed, vk.Outputs())
	}
	return vk, nil
}

// fits checks what gnark's verifier indexes without checking: the proof carries one
// commitment per commitment key, and the public wires each commitment covers exist.
func (vk *VerifyingKey) fits(p *groth16.Proof, nbPublic int) error {
	v := &vk.vk
	if len(v.CommitmentKeys) != len(v.PublicAndCommitmentCommitted) || len(p.Commitments) != len(v.CommitmentKeys) {
		return fmt.Errorf("%w: %d commitments for %d keys", ErrInvalidProof, len(p.Commitments), len(v.CommitmentKeys))
	}
	if len(v.G1.K) != 1+nbPublic+len(v.CommitmentKeys) {
		return fmt.Errorf("%w: the key is for %d outputs, the statement has %d", ErrInvalidProof, vk.Outputs(), nbPublic-2)
	}
	for _, wires := range v.PublicAndCommitmentCommitted {
		for _, w := range wires {
			if w < 1 || w > nbPublic {
				return fmt.Errorf("%w: commitment covers wire %d of %d", ErrInvalidProof, w, nbPublic)
			}
		}
	}
	return nil
}
