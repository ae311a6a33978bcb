package zk

import "github.com/omnisync/omnisync/internal/tensor"

// The model is tensor's (tensor.MLP): one definition and one encoding serve the zk level,
// which proves it, and the freivalds level, which checks it layer by layer. These names
// keep this package's API.
type (
	// LayerShape is what a circuit is built from: a layer's sizes and its shift.
	LayerShape = tensor.LayerShape
	// Shape is a model's architecture without its parameters; a Groth16 setup is per shape.
	Shape = tensor.MLPShape
	// Layer is one fully connected layer, weights row-major Out×In.
	Layer = tensor.MLPLayer
	// Model is an int8 MLP with exactly the arithmetic the circuit constrains (tensor.MLP).
	Model = tensor.MLP
)

// Limits that keep every intermediate value small: an accumulator is at most
// MaxDim·128·128 + 2^31 < 2^32 in absolute value, far from both int64 and the BN254 field.
const (
	MaxDim    = tensor.MLPMaxDim
	MaxLayers = tensor.MLPMaxLayers
	MaxShift  = tensor.MLPMaxShift
)

var (
	// ErrInvalidModel is returned for a model or shape outside the definition (tensor.ErrModel).
	ErrInvalidModel = tensor.ErrModel
	// ErrInvalidInput is returned for an input vector of the wrong length (tensor.ErrShape).
	ErrInvalidInput = tensor.ErrShape
)

// requantize and clampLow are the model's requantisation, which the circuit constrains.
func requantize(acc int64, shift uint8, lo int64) int64 { return tensor.Requantize(acc, shift, lo) }

func clampLow(i, n int) int64 { return tensor.ClampLow(i, n) }

// DecodeModel decodes a model that Model.MarshalBinary encoded (tensor.DecodeMLP); the
// model it returns is valid.
func DecodeModel(b []byte) (*Model, error) {
	m, err := tensor.DecodeMLP(b)
	return m, malformed(err)
}
