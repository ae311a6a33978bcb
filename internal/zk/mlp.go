package zk

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits that keep every intermediate value small: an accumulator is at most
// MaxDim·128·128 + 2^31 < 2^32 in absolute value, far from both int64 and the BN254 field.
const (
	MaxDim    = 4096 // inputs or outputs of one layer
	MaxLayers = 16
	MaxShift  = 31 // bits of the requantising right shift
)

var (
	// ErrInvalidModel is returned for a model or shape outside this package's definition.
	ErrInvalidModel = errors.New("zk: invalid model")
	// ErrInvalidInput is returned for an input vector of the wrong length.
	ErrInvalidInput = errors.New("zk: invalid input")
)

// LayerShape is what a circuit is built from: a layer's sizes and its shift.
type LayerShape struct {
	In, Out int
	Shift   uint8
}

// Shape is a model's architecture without its parameters; a Groth16 setup is per shape.
type Shape []LayerShape

// ID names the shape, e.g. "64x32s7-32x10s6"; it is safe in a file name.
func (s Shape) ID() string {
	parts := make([]string, len(s))
	for i, l := range s {
		parts[i] = strconv.Itoa(l.In) + "x" + strconv.Itoa(l.Out) + "s" + strconv.Itoa(int(l.Shift))
	}
	return strings.Join(parts, "-")
}

// Weights is the number of weights and biases.
func (s Shape) Weights() int {
	n := 0
	for _, l := range s {
		n += l.In*l.Out + l.Out
	}
	return n
}

// Validate checks the limits and that each layer's input is the previous layer's output.
func (s Shape) Validate() error {
	if len(s) == 0 || len(s) > MaxLayers {
		return fmt.Errorf("%w: %d layers, want 1..%d", ErrInvalidModel, len(s), MaxLayers)
	}
	for i, l := range s {
		if l.In < 1 || l.In > MaxDim || l.Out < 1 || l.Out > MaxDim {
			return fmt.Errorf("%w: layer %d is %dx%d, want 1..%d each", ErrInvalidModel, i, l.In, l.Out, MaxDim)
		}
		if l.Shift > MaxShift {
			return fmt.Errorf("%w: layer %d shift %d > %d", ErrInvalidModel, i, l.Shift, MaxShift)
		}
		if i > 0 && l.In != s[i-1].Out {
			return fmt.Errorf("%w: layer %d takes %d inputs, layer %d gives %d", ErrInvalidModel, i, l.In, i-1, s[i-1].Out)
		}
	}
	return nil
}

// Layer is one fully connected layer. Weights are row-major Out×In: Weights[j*In+i]
// multiplies input i for output j.
type Layer struct {
	LayerShape
	Weights []int8
	Biases  []int32
}

// Model is an int8 MLP. Each layer computes, for every output j,
//
//	acc_j = Biases[j] + Σ_i Weights[j*In+i]·x_i        (exact integers)
//	y_j   = clamp(floor(acc_j / 2^Shift), lo, 127)
//
// with lo = 0 for every layer but the last (the clamp is then also the ReLU) and lo = -128
// for the last, whose y is the model's output. The circuit constrains exactly this.
type Model struct {
	Layers []Layer
}

// Shape returns the model's shape.
func (m *Model) Shape() Shape {
	s := make(Shape, len(m.Layers))
	for i, l := range m.Layers {
		s[i] = l.LayerShape
	}
	return s
}

// Validate checks the shape and the parameter counts.
func (m *Model) Validate() error {
	if err := m.Shape().Validate(); err != nil {
		return err
	}
	for i, l := range m.Layers {
		if len(l.Weights) != l.In*l.Out || len(l.Biases) != l.Out {
			return fmt.Errorf("%w: layer %d has %d weights and %d biases, want %d and %d",
				ErrInvalidModel, i, len(l.Weights), len(l.Biases), l.In*l.Out, l.Out)
		}
	}
	return nil
}

// Forward runs the model on x in plain integer arithmetic; a node can compute its output
// without building a proof.
func (m *Model) Forward(x []int8) ([]int8, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if len(x) != m.Layers[0].In {
		return nil, fmt.Errorf("%w: %d values, the model takes %d", ErrInvalidInput, len(x), m.Layers[0].In)
	}
	for li, l := range m.Layers {
		lo := clampLow(li, len(m.Layers))
		y := make([]int8, l.Out)
		for j := range y {
			acc := int64(l.Biases[j])
			for i, w := range l.Weights[j*l.In : (j+1)*l.In] {
				acc += int64(w) * int64(x[i])
			}
			y[j] = int8(requantize(acc, l.Shift, lo))
		}
		x = y
	}
	return x, nil
}

// requantize is floor(acc / 2^shift) clamped to [lo, 127]; >> on a signed integer floors.
func requantize(acc int64, shift uint8, lo int64) int64 {
	return min(max(acc>>shift, lo), 127)
}

// clampLow is the clamp's lower bound for layer i of n: 0 (ReLU) inside, -128 at the end.
func clampLow(i, n int) int64 {
	if i == n-1 {
		return -128
	}
	return 0
}
