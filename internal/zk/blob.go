package zk

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/omnisync/omnisync/internal/tensor"
)

// A zk job's blobs: the model and the input the consumer uploads, and the result the node
// returns. Each is a 4-byte magic and a version byte, then big-endian fields, with nothing
// left over; decoders check every length against the bytes that remain before they
// allocate, so the encoding of a value is unique and four hostile bytes ask for nothing.
//
//	model:  "OMZM", tensor's (MLP.MarshalBinary, tensor.DecodeMLP; DecodeModel here)
//	input:  "OMZI" 1, salt [16], n u32, n values (int8)
//	result: "OMZR" 1, n u32, n outputs (int8), proof length u32, proof

const blobVersion = 1

var (
	inputMagic  = []byte("OMZI")
	resultMagic = []byte("OMZR")
)

// malformed reads a tensor.BlobReader's outcome as this package's error.
func malformed(err error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func appendInt8s(b []byte, v []int8) []byte {
	for _, x := range v {
		b = append(b, byte(x))
	}
	return b
}

// MarshalBinary encodes the input and its salt for a job's `input` input: only the node
// that runs the job reads it.
func (in Input) MarshalBinary() ([]byte, error) {
	if len(in.Values) < 1 || len(in.Values) > MaxDim {
		return nil, fmt.Errorf("%w: %d values, want 1..%d", ErrInvalidInput, len(in.Values), MaxDim)
	}
	b := append(append([]byte(nil), inputMagic...), blobVersion)
	b = append(b, in.Salt[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(in.Values)))
	return appendInt8s(b, in.Values), nil
}

// DecodeInput decodes an input that Input.MarshalBinary encoded.
func DecodeInput(b []byte) (Input, error) {
	r := tensor.NewBlobReader(b, binary.BigEndian)
	r.Header(inputMagic, blobVersion, "zk input")
	var in Input
	copy(in.Salt[:], r.Bytes(len(in.Salt)))
	n := r.Dim("input length", MaxDim)
	in.Values = r.Int8s(n)
	return in, malformed(r.End())
}

// Result is a zk job's output: the model's output vector and the proof that it is the
// committed model applied to the committed input.
type Result struct {
	Output []int8
	Proof  []byte
}

// MarshalBinary encodes the result as the job's output blob.
func (res Result) MarshalBinary() ([]byte, error) {
	if len(res.Output) < 1 || len(res.Output) > MaxDim || len(res.Proof) > MaxProofBytes {
		return nil, fmt.Errorf("%w: %d outputs and a proof of %d bytes", ErrMalformed, len(res.Output), len(res.Proof))
	}
	b := append(append([]byte(nil), resultMagic...), blobVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(res.Output)))
	b = appendInt8s(b, res.Output)
	b = binary.BigEndian.AppendUint32(b, uint32(len(res.Proof)))
	return append(b, res.Proof...), nil
}

// DecodeResult decodes a job's output blob; it does not verify the proof.
func DecodeResult(b []byte) (Result, error) {
	r := tensor.NewBlobReader(b, binary.BigEndian)
	r.Header(resultMagic, blobVersion, "zk result")
	var res Result
	res.Output = r.Int8s(r.Dim("output length", MaxDim))
	n := r.U32()
	if r.Err() == nil && n > MaxProofBytes {
		r.Fail("proof of %d bytes", n)
	}
	res.Proof = bytes.Clone(r.Bytes(int(n)))
	return res, malformed(r.End())
}

// ParseShape parses a Shape.ID such as "64x32s7-32x10s6"; only the canonical spelling
// (what ID returns) is accepted, so a shape has one name.
func ParseShape(id string) (Shape, error) {
	bad := func() (Shape, error) {
		return nil, fmt.Errorf("%w: shape %q is not LAYER[-LAYER...], LAYER = INxOUTsSHIFT", ErrInvalidModel, id)
	}
	if len(id) > 16*MaxLayers {
		return bad()
	}
	var s Shape
	for _, part := range strings.Split(id, "-") {
		in, rest, ok1 := strings.Cut(part, "x")
		out, shift, ok2 := strings.Cut(rest, "s")
		a, err1 := strconv.Atoi(in)
		b, err2 := strconv.Atoi(out)
		c, err3 := strconv.ParseUint(shift, 10, 8)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || err3 != nil {
			return bad()
		}
		s = append(s, LayerShape{In: a, Out: b, Shift: uint8(c)})
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.ID() != id {
		return bad()
	}
	return s, nil
}

// ParseCommitment parses a commitment's hex (Commitment.String): 64 lower-case digits of
// a BN254 scalar.
func ParseCommitment(s string) (Commitment, error) {
	var c Commitment
	if len(s) != 2*len(c) || strings.ToLower(s) != s {
		return c, fmt.Errorf("%w: commitment %q is not %d lower-case hex digits", ErrMalformed, s, 2*len(c))
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return c, fmt.Errorf("%w: commitment %q: %v", ErrMalformed, s, err)
	}
	var e fr.Element
	if err := e.SetBytesCanonical(c[:]); err != nil {
		return c, fmt.Errorf("%w: commitment %s is not a BN254 scalar", ErrMalformed, s)
	}
	return c, nil
}
