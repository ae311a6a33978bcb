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
//
// matmul-int8 is checked exactly (FreivaldsInt8); matmul-fp32 within a rounding-error
// bound (FreivaldsFloat32), which sees only errors above the rounding noise; mlp-int8 (its
// freivalds form: inputs [model, X], output a tensor.MLPTrace) exactly, layer by layer
// (CheckMLP).
func CheckKernel(kernel string, inputs [][]byte, output []byte, seed [32]byte, rounds int) (Verdict, error) {
	return CheckKernelOn(nil, kernel, inputs, output, seed, rounds)
}

// CheckKernelOn is CheckKernel with matmul-int8's products computed by acc
// (FreivaldsInt8On); nil, and every other kernel, use this process's CPU.
func CheckKernelOn(acc Accelerator, kernel string, inputs [][]byte, output []byte, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	switch kernel {
	case tensor.KernelMatMulInt8:
		// On the CPU the inputs and the output are read where they lie, not decoded.
		a, b, err := tensor.ViewMatMulInt8Inputs(inputs)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		ops := tensor.MatMulOps(a.Rows, a.Cols, b.Cols)
		if acc == nil {
			return checkProduct(ops, output, tensor.ViewInt32,
				func(c tensor.Int32View) (Verdict, error) { return freivaldsInt8Views(a, b, c, seed, rounds), nil })
		}
		am, bm, _ := tensor.DecodeMatMulInt8Inputs(inputs) // they viewed, so they decode
		return checkProduct(ops, output, tensor.DecodeInt32,
			func(c *tensor.Int32Matrix) (Verdict, error) { return FreivaldsInt8On(acc, am, bm, c, seed, rounds) })
	case tensor.KernelMatMulFloat32:
		a, b, err := tensor.DecodeMatMulFloat32Inputs(inputs)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return checkProduct(tensor.MatMulOps(a.Rows, a.Cols, b.Cols), output, tensor.DecodeFloat32,
			func(c *tensor.Float32Matrix) (Verdict, error) { return FreivaldsFloat32(a, b, c, seed, rounds) })
	case tensor.KernelMLPInt8:
		m, x, err := tensor.DecodeMLPInt8Inputs(inputs)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return checkProduct(MLPOps(m, x.Rows), output, tensor.DecodeMLPTrace,
			func(t *tensor.MLPTrace) (Verdict, error) { return CheckMLP(m, x, t, seed, rounds) })
	default:
		return Verdict{}, fmt.Errorf("%w: %q", ErrUnknownKernel, kernel)
	}
}

// checkProduct decodes a product's output and checks it, setting the Verdict's Ops
// whatever the outcome.
func checkProduct[M any](ops uint64, output []byte, decode func([]byte) (M, error), check func(M) (Verdict, error)) (Verdict, error) {
	c, err := decode(output)
	if err != nil {
		v := failed(0, -1, "output does not decode: %v", err)
		v.Ops = ops
		return v, nil
	}
	v, err := check(c)
	if err != nil {
		return Verdict{}, err
	}
	v.Ops = ops
	return v, nil
}
