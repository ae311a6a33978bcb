package tensor

import (
	"fmt"
	"math"
)

// MLPTrace is a node's output for the mlp-int8 kernel at the freivalds level: the model's
// output on a batch of rows and, per layer, the int32 accumulators it requantised. With
// H_0 = X and H_l the requantised Acc[l-1],
//
//	Acc[l] = H_l·W_lᵀ + 1·b_lᵀ        (B×Out_l, exact)
//	Output = requantize(Acc[L-1])     (B×Out_L)
//
// The hidden activations H_l are not carried: they are requantize(Acc[l-1]), which a
// checker recomputes for a fraction of the product's cost (verify.CheckMLP).
type MLPTrace struct {
	Acc    []*Int32Matrix
	Output *Int8Matrix
}

// AccumulatorsFitInt32 reports whether every accumulator of the model fits in int32
// whatever the int8 input: for each output j of each layer, |b_j| + 128·Σ_i |w_ji| must
// stay below 2^31. Every trained int8 model we know of does by orders of magnitude; one that
// does not (biases near ±2^31) is refused with ErrRange at the freivalds level and runs at
// the zk level, which accumulates in the field.
func (m *MLP) AccumulatorsFitInt32() error {
	for li, l := range m.Layers {
		for j, b := range l.Biases {
			bound := int64(b)
			if bound < 0 {
				bound = -bound
			}
			for _, w := range l.Weights[j*l.In : (j+1)*l.In] {
				a := int64(w) // in int64: -(-128) wraps in int8
				bound += 128 * max(a, -a)
			}
			if bound > math.MaxInt32 {
				return fmt.Errorf("%w: layer %d output %d can accumulate to ±%d, beyond int32", ErrRange, li, j, bound)
			}
		}
	}
	return nil
}

// Trace runs the model on the rows of x (B×In) and returns every layer's accumulators and
// the output. Each layer is one exact int8 product (MatMulInt8 of the activations by the
// transposed weights) plus the biases, then the requantisation.
func (m *MLP) Trace(x *Int8Matrix) (*MLPTrace, error) {
	if err := m.CheckBatch(x); err != nil {
		return nil, err
	}
	t := &MLPTrace{Acc: make([]*Int32Matrix, len(m.Layers))}
	h := x
	for li, l := range m.Layers {
		acc, err := MatMulInt8(h, l.Transposed())
		if err != nil {
			return nil, err
		}
		for i := 0; i < acc.Rows; i++ {
			row := acc.Data[i*acc.Cols : (i+1)*acc.Cols]
			for j, b := range l.Biases {
				row[j] += b // AccumulatorsFitInt32: no overflow
			}
		}
		t.Acc[li] = acc
		h = RequantizeMatrix(acc, l.Shift, ClampLow(li, len(m.Layers)))
	}
	t.Output = h
	return t, nil
}

// ForwardBatch runs the model on the rows of x (B×In) and returns its output (B×Out).
func (m *MLP) ForwardBatch(x *Int8Matrix) (*Int8Matrix, error) {
	t, err := m.Trace(x)
	if err != nil {
		return nil, err
	}
	return t.Output, nil
}

// CheckBatch refuses what the freivalds form of the kernel does not take: an invalid
// model or one whose accumulators could leave int32, a batch of the wrong width, or one
// whose trace would exceed MaxElements accumulators.
func (m *MLP) CheckBatch(x *Int8Matrix) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := m.AccumulatorsFitInt32(); err != nil {
		return err
	}
	if err := x.Validate(); err != nil {
		return fmt.Errorf("input X: %w", err)
	}
	if x.Cols != m.Layers[0].In {
		return fmt.Errorf("%w: X is %dx%d, the model takes %d inputs", ErrShape, x.Rows, x.Cols, m.Layers[0].In)
	}
	if x.Rows > MaxElements/m.Shape().outputs() {
		return fmt.Errorf("%w: %d rows of %d outputs exceed %d accumulators", ErrShape, x.Rows, m.Shape().outputs(), MaxElements)
	}
	return nil
}

// Transposed returns the layer's weights as an In×Out matrix, Wᵀ. It copies 32×32 tiles:
// a row-by-row copy writes a column of Wᵀ at a time, one cache line per element.
func (l *MLPLayer) Transposed() *Int8Matrix {
	const tile = 32
	t := &Int8Matrix{Rows: l.In, Cols: l.Out, Data: make([]int8, len(l.Weights))}
	for j0 := 0; j0 < l.Out; j0 += tile {
		for i0 := 0; i0 < l.In; i0 += tile {
			for j := j0; j < min(j0+tile, l.Out); j++ {
				for i := i0; i < min(i0+tile, l.In); i++ {
					t.Data[i*l.Out+j] = l.Weights[j*l.In+i]
				}
			}
		}
	}
	return t
}

// RequantizeMatrix applies Requantize to every element of acc.
func RequantizeMatrix(acc *Int32Matrix, shift uint8, lo int64) *Int8Matrix {
	h := &Int8Matrix{Rows: acc.Rows, Cols: acc.Cols, Data: make([]int8, len(acc.Data))}
	for i, a := range acc.Data {
		h.Data[i] = int8(Requantize(int64(a), shift, lo))
	}
	return h
}

// DecodeMLPInt8Inputs decodes the [model, X] inputs of KernelMLPInt8 at the freivalds
// level and checks that the kernel takes them (the model's accumulators fit in int32, X
// is as wide as the model's input).
func DecodeMLPInt8Inputs(inputs [][]byte) (*MLP, *Int8Matrix, error) {
	if len(inputs) != 2 {
		return nil, nil, fmt.Errorf("%w: %s takes 2 inputs [model, X], got %d", ErrKernelInputs, KernelMLPInt8, len(inputs))
	}
	m, err := DecodeMLP(inputs[0])
	if err != nil {
		return nil, nil, fmt.Errorf("input model: %w", err)
	}
	x, err := DecodeInt8(inputs[1])
	if err != nil {
		return nil, nil, fmt.Errorf("input X: %w", err)
	}
	if err := m.CheckBatch(x); err != nil {
		return nil, nil, err
	}
	return m, x, nil
}

func runMLPInt8(inputs [][]byte) ([]byte, error) {
	m, x, err := DecodeMLPInt8Inputs(inputs)
	if err != nil {
		return nil, err
	}
	t, err := m.Trace(x)
	if err != nil {
		return nil, err
	}
	return t.MarshalBinary()
}
