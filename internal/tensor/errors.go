package tensor

import "errors"

var (
	// ErrShape reports invalid dimensions: zero or negative, too large, a
	// data slice that does not match them, or operands that do not conform.
	ErrShape = errors.New("tensor shape")
	// ErrEncoding reports bytes that are not a valid OMT1 matrix or NumPy .npy file.
	ErrEncoding = errors.New("tensor encoding")
	// ErrUnknownKernel reports a kernel name that is not registered.
	ErrUnknownKernel = errors.New("unknown kernel")
	// ErrRange reports float32 values a kernel refuses: NaN, ±Inf, subnormals, or
	// magnitudes whose product could overflow.
	ErrRange = errors.New("tensor values out of range")
	// ErrKernelInputs reports the wrong number of inputs for a kernel.
	ErrKernelInputs = errors.New("kernel inputs")
	// ErrModel reports an MLP outside this package's definition: too many or too few
	// layers, sizes out of range or that do not chain, parameters of the wrong count.
	ErrModel = errors.New("invalid mlp model")
)
