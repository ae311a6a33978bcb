package verify

import (
	"fmt"

	"github.com/omnisync/omnisync/internal/tensor"
)

// CheckKernel verifies a node's encoded output of a named kernel against the
// encoded inputs it was given. An output that does not decode, has the wrong
// shape or is wrong is a failed Verdict; an unknown kernel, malformed inputs
// or rounds < 1 are caller errors. Every Verdict carries the kernel's
// operation count for the inputs (Verdict.Ops).
func CheckKernel(kernel string, inputs [][]byte, output []byte, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	switch kernel {
	case tensor.KernelMatMulInt8:
		a, b, err := tensor.DecodeMatMulInt8Inputs(inputs)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		ops := tensor.MatMulOps(a.Rows, a.Cols, b.Cols)
		c, err := tensor.DecodeInt32(output)
		if err != nil {
			v := failed(0, -1, "output does not decode: %v", err)
			v.Ops = ops
			return v, nil
		}
		v, err := FreivaldsInt8(a, b, c, seed, rounds)
		if err != nil {
			return Verdict{}, err
		}
		v.Ops = ops
		return v, nil
	default:
		return Verdict{}, fmt.Errorf("%w: %q", ErrUnknownKernel, kernel)
	}
}
