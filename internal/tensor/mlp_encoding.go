package tensor

import (
	"encoding/binary"
	"fmt"
)

// The mlp-int8 kernel's blobs. Each is a 4-byte magic and a version byte, then fields with
// nothing left over; decoders check every length against the bytes that remain before
// they allocate, so the encoding of a value is unique and a few hostile bytes ask for
// nothing.
//
//	model:  "OMZM" 1, layers u8, per layer (in u32, out u32, shift u8),
//	        then per layer its out·in weights (int8, row-major) and out biases (int32);
//	        big-endian (the zk level defined it first, and its commitments hash the model)
//	trace:  "OMLT" 1, layers u8, rows u32, per layer out u32,
//	        then per layer rows·out accumulators (int32, row-major),
//	        then rows·out of the last layer outputs (int8, row-major); little-endian as OMT1
//
// The model is the kernel's first input at every level; the trace is its output at the
// freivalds level (the zk level's input and output are internal/zk's).
const mlpBlobVersion = 1

var (
	modelMagic = []byte("OMZM")
	traceMagic = []byte("OMLT")
)

// readLayers reads a layer count and checks it lies in 1..MLPMaxLayers.
func readLayers(r *BlobReader) int {
	n := int(r.U8())
	if r.Err() == nil && (n < 1 || n > MLPMaxLayers) {
		r.Fail("%d layers, want 1..%d", n, MLPMaxLayers)
	}
	return n
}

func appendInt8s(b []byte, v []int8) []byte {
	for _, x := range v {
		b = append(b, byte(x))
	}
	return b
}

func appendInt32s(b []byte, order binary.AppendByteOrder, v []int32) []byte {
	for _, x := range v {
		b = order.AppendUint32(b, uint32(x))
	}
	return b
}

// MarshalBinary encodes the model for a job's `model` input.
func (m *MLP) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	s := m.Shape()
	b := make([]byte, 0, len(modelMagic)+2+9*len(s)+4*s.Weights())
	b = append(append(b, modelMagic...), mlpBlobVersion, byte(len(s)))
	for _, l := range s {
		b = binary.BigEndian.AppendUint32(b, uint32(l.In))
		b = binary.BigEndian.AppendUint32(b, uint32(l.Out))
		b = append(b, l.Shift)
	}
	for _, l := range m.Layers {
		b = appendInt8s(b, l.Weights)
		b = appendInt32s(b, binary.BigEndian, l.Biases)
	}
	return b, nil
}

// DecodeMLP decodes a model that MLP.MarshalBinary encoded; the model it returns is valid.
// It fails with ErrEncoding only.
func DecodeMLP(b []byte) (*MLP, error) {
	r := NewBlobReader(b, binary.BigEndian)
	r.Header(modelMagic, mlpBlobVersion, "model")
	n := readLayers(r)
	s := make(MLPShape, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		s = append(s, LayerShape{In: r.Dim("layer inputs", MLPMaxDim), Out: r.Dim("layer outputs", MLPMaxDim), Shift: r.U8()})
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	// Every size is now bounded: check the parameters' length before allocating them.
	if want := s.Weights() + 3*s.outputs(); len(r.b) != want {
		return nil, fmt.Errorf("%w: %d bytes of parameters for shape %s, want %d", ErrEncoding, len(r.b), s.ID(), want)
	}
	m := &MLP{Layers: make([]MLPLayer, n)}
	for i, ls := range s {
		m.Layers[i] = MLPLayer{LayerShape: ls, Weights: r.Int8s(ls.In * ls.Out), Biases: r.Int32s(ls.Out)}
	}
	return m, r.End()
}

// MarshalBinary encodes the trace as the job's output blob.
func (t *MLPTrace) MarshalBinary() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	rows := t.Output.Rows
	size := len(traceMagic) + 6 + 4*len(t.Acc) + len(t.Output.Data)
	for _, a := range t.Acc {
		size += 4 * len(a.Data)
	}
	b := append(append(make([]byte, 0, size), traceMagic...), mlpBlobVersion, byte(len(t.Acc)))
	b = binary.LittleEndian.AppendUint32(b, uint32(rows))
	for _, a := range t.Acc {
		b = binary.LittleEndian.AppendUint32(b, uint32(a.Cols))
	}
	for _, a := range t.Acc {
		b = appendInt32s(b, binary.LittleEndian, a.Data)
	}
	return appendInt8s(b, t.Output.Data), nil
}

// Validate checks that the trace holds 1..MLPMaxLayers accumulator matrices of one row
// count, each at most MLPMaxDim wide and MaxElements in all, and an output as wide as the
// last of them.
func (t *MLPTrace) Validate() error {
	if t == nil || len(t.Acc) < 1 || len(t.Acc) > MLPMaxLayers || t.Output == nil {
		return fmt.Errorf("%w: a trace needs 1..%d accumulator matrices and an output", ErrShape, MLPMaxLayers)
	}
	if err := t.Output.Validate(); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	total := 0
	for l, a := range t.Acc {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("layer %d accumulators: %w", l, err)
		}
		if a.Rows != t.Output.Rows || a.Cols > MLPMaxDim {
			return fmt.Errorf("%w: layer %d accumulators are %dx%d, want %d rows and at most %d columns", ErrShape, l, a.Rows, a.Cols, t.Output.Rows, MLPMaxDim)
		}
		total += len(a.Data)
	}
	if last := t.Acc[len(t.Acc)-1]; t.Output.Cols != last.Cols {
		return fmt.Errorf("%w: output is %dx%d, the last layer's accumulators %dx%d", ErrShape, t.Output.Rows, t.Output.Cols, last.Rows, last.Cols)
	}
	if total > MaxElements {
		return fmt.Errorf("%w: %d accumulators exceed %d", ErrShape, total, MaxElements)
	}
	return nil
}

// DecodeMLPTrace decodes a trace that MLPTrace.MarshalBinary encoded; the trace it returns
// is valid. It fails with ErrEncoding only.
func DecodeMLPTrace(b []byte) (*MLPTrace, error) {
	r := NewBlobReader(b, binary.LittleEndian)
	r.Header(traceMagic, mlpBlobVersion, "mlp trace")
	n := readLayers(r)
	rows := r.Dim("rows", MaxElements)
	cols := make([]int, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		cols = append(cols, r.Dim("layer outputs", MLPMaxDim))
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	// Every size is now bounded (rows < 2^27, cols ≤ 2^12): check the data's length before
	// allocating it.
	total := 0
	for _, c := range cols {
		total += rows * c
	}
	last := cols[n-1]
	if total > MaxElements {
		return nil, fmt.Errorf("%w: %d accumulators exceed %d", ErrEncoding, total, MaxElements)
	}
	if want := 4*total + rows*last; len(r.b) != want {
		return nil, fmt.Errorf("%w: %d bytes of data for %d rows of %v outputs, want %d", ErrEncoding, len(r.b), rows, cols, want)
	}
	t := &MLPTrace{Acc: make([]*Int32Matrix, n)}
	for i, c := range cols {
		t.Acc[i] = &Int32Matrix{Rows: rows, Cols: c, Data: r.Int32s(rows * c)}
	}
	t.Output = &Int8Matrix{Rows: rows, Cols: last, Data: r.Int8s(rows * last)}
	return t, r.End()
}
