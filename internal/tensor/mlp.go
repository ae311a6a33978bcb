package tensor

import (
	"fmt"
	"strconv"
	"strings"
)

// Limits on an MLP that keep every intermediate value small: an accumulator is at most
// MLPMaxDim·128·128 + 2^31 < 2^32 in absolute value, far from int64, from the BN254 field
// internal/zk proves in and from the field verify checks in.
const (
	MLPMaxDim    = 4096 // inputs or outputs of one layer
	MLPMaxLayers = 16
	MLPMaxShift  = 31 // bits of the requantising right shift
)

// LayerShape is one MLP layer's sizes and its shift.
type LayerShape struct {
	In, Out int
	Shift   uint8
}

// MLPShape is a model's architecture without its parameters.
type MLPShape []LayerShape

// ID names the shape, e.g. "64x32s7-32x10s6"; it is safe in a file name.
func (s MLPShape) ID() string {
	parts := make([]string, len(s))
	for i, l := range s {
		parts[i] = strconv.Itoa(l.In) + "x" + strconv.Itoa(l.Out) + "s" + strconv.Itoa(int(l.Shift))
	}
	return strings.Join(parts, "-")
}

// Weights is the number of weights and biases.
func (s MLPShape) Weights() int {
	n := 0
	for _, l := range s {
		n += l.In*l.Out + l.Out
	}
	return n
}

// outputs is the number of outputs of all layers (one bias or accumulator column each).
func (s MLPShape) outputs() int {
	n := 0
	for _, l := range s {
		n += l.Out
	}
	return n
}

// Ops is the model's arithmetic on one input row as a node is billed for it: a multiply
// and an add per weight, 2·Σ in·out.
func (s MLPShape) Ops() uint64 {
	var n uint64
	for _, l := range s {
		n += 2 * uint64(l.In) * uint64(l.Out)
	}
	return n
}

// Validate checks the limits and that each layer's input is the previous layer's output.
func (s MLPShape) Validate() error {
	if len(s) == 0 || len(s) > MLPMaxLayers {
		return fmt.Errorf("%w: %d layers, want 1..%d", ErrModel, len(s), MLPMaxLayers)
	}
	for i, l := range s {
		if l.In < 1 || l.In > MLPMaxDim || l.Out < 1 || l.Out > MLPMaxDim {
			return fmt.Errorf("%w: layer %d is %dx%d, want 1..%d each", ErrModel, i, l.In, l.Out, MLPMaxDim)
		}
		if l.Shift > MLPMaxShift {
			return fmt.Errorf("%w: layer %d shift %d > %d", ErrModel, i, l.Shift, MLPMaxShift)
		}
		if i > 0 && l.In != s[i-1].Out {
			return fmt.Errorf("%w: layer %d takes %d inputs, layer %d gives %d", ErrModel, i, l.In, i-1, s[i-1].Out)
		}
	}
	return nil
}

// MLPLayer is one fully connected layer. Weights are row-major Out×In: Weights[j*In+i]
// multiplies input i for output j.
type MLPLayer struct {
	LayerShape
	Weights []int8
	Biases  []int32
}

// MLP is an int8 multilayer perceptron. Each layer computes, for every output j,
//
//	acc_j = Biases[j] + Σ_i Weights[j*In+i]·x_i        (exact integers)
//	y_j   = clamp(floor(acc_j / 2^Shift), lo, 127)
//
// with lo = 0 for every layer but the last (the clamp is then also the ReLU) and lo = -128
// for the last, whose y is the model's output. internal/zk proves exactly this (zk.Model
// is this type); verify.CheckMLP checks it layer by layer.
type MLP struct {
	Layers []MLPLayer
}

// Shape returns the model's shape.
func (m *MLP) Shape() MLPShape {
	s := make(MLPShape, len(m.Layers))
	for i, l := range m.Layers {
		s[i] = l.LayerShape
	}
	return s
}

// Validate checks the shape and the parameter counts.
func (m *MLP) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil model", ErrModel)
	}
	if err := m.Shape().Validate(); err != nil {
		return err
	}
	for i, l := range m.Layers {
		if len(l.Weights) != l.In*l.Out || len(l.Biases) != l.Out {
			return fmt.Errorf("%w: layer %d has %d weights and %d biases, want %d and %d",
				ErrModel, i, len(l.Weights), len(l.Biases), l.In*l.Out, l.Out)
		}
	}
	return nil
}

// Forward runs the model on one input vector x in plain integer arithmetic.
func (m *MLP) Forward(x []int8) ([]int8, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if len(x) != m.Layers[0].In {
		return nil, fmt.Errorf("%w: %d values, the model takes %d", ErrShape, len(x), m.Layers[0].In)
	}
	for li, l := range m.Layers {
		lo := ClampLow(li, len(m.Layers))
		y := make([]int8, l.Out)
		for j := range y {
			acc := int64(l.Biases[j])
			for i, w := range l.Weights[j*l.In : (j+1)*l.In] {
				acc += int64(w) * int64(x[i])
			}
			y[j] = int8(Requantize(acc, l.Shift, lo))
		}
		x = y
	}
	return x, nil
}

// Requantize is floor(acc / 2^shift) clamped to [lo, 127]; >> on a signed integer floors.
func Requantize(acc int64, shift uint8, lo int64) int64 {
	return min(max(acc>>shift, lo), 127)
}

// ClampLow is the clamp's lower bound for layer i of n: 0 (ReLU) inside, -128 at the end.
func ClampLow(i, n int) int64 {
	if i == n-1 {
		return -128
	}
	return 0
}
