package tensor

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// KernelMatMulInt8 multiplies two OMT1 int8 matrices [A, B] and returns the
// OMT1 int32 product A·B.
const KernelMatMulInt8 = "matmul-int8"

// KernelMatMulFloat32 multiplies two OMT1 float32 matrices [A, B] and returns the OMT1
// float32 product A·B (MatMulFloat32). Unlike the int8 kernel its bits depend on the order
// of the sums, so it is checked within a rounding-error bound (verify.FreivaldsFloat32).
const KernelMatMulFloat32 = "matmul-fp32"

// KernelMLPInt8 runs an int8 MLP (MLP). At the freivalds level its inputs are [model, X]
// (DecodeMLPInt8Inputs: the OMZM model and an OMT1 int8 batch B×In) and RunKernel returns
// the MLPTrace, every layer's accumulators and the output, which verify.CheckMLP checks
// layer by layer. At the zk level its inputs are [model, salted input] and its output the
// model's output vector with a Groth16 proof; the prover lives in internal/zk, which this
// package may not import, so the node's runtime runs that form (runtime.Native with keys).
const KernelMLPInt8 = "mlp-int8"

// Kernels lists the registered kernel names in sorted order.
func Kernels() []string {
	return []string{KernelMatMulFloat32, KernelMatMulInt8, KernelMLPInt8}
}

// RunKernel runs a named kernel over encoded inputs and returns the encoded
// output.
func RunKernel(name string, inputs [][]byte) ([]byte, error) {
	switch name {
	case KernelMatMulInt8:
		return runMatMulInt8(inputs)
	case KernelMatMulFloat32:
		return runMatMulFloat32(inputs)
	case KernelMLPInt8:
		return runMLPInt8(inputs)
	default:
		return nil, fmt.Errorf("%w: %q (known: %v)", ErrUnknownKernel, name, Kernels())
	}
}

// runMatMulInt8 multiplies the inputs where they lie and writes the product straight into
// its encoding: the output is the one buffer it allocates for the data.
func runMatMulInt8(inputs [][]byte) ([]byte, error) {
	a, b, err := ViewMatMulInt8Inputs(inputs)
	if err != nil {
		return nil, err
	}
	m, n := a.Rows, b.Cols
	if err := checkDims(m, n); err != nil {
		return nil, err
	}
	out := appendHeader(make([]byte, 0, headerSize+4*m*n), dtypeInt32, m, n)
	out = out[:cap(out)]
	c := out[headerSize:]
	mulInt8(a.Data, b.Data, m, a.Cols, n, func(i int, sums []int64) {
		row := c[4*i*n:]
		for j, t := range sums {
			lo, hi := splitPair(t)
			binary.LittleEndian.PutUint32(row[4*j:], uint32(lo))
			if i+1 < m {
				binary.LittleEndian.PutUint32(row[4*(n+j):], uint32(hi))
			}
		}
	})
	return out, nil
}

// DecodeMatMulInt8Inputs decodes the [A, B] inputs of KernelMatMulInt8.
func DecodeMatMulInt8Inputs(inputs [][]byte) (a, b *Int8Matrix, err error) {
	va, vb, err := ViewMatMulInt8Inputs(inputs)
	if err != nil {
		return nil, nil, err
	}
	return va.matrix(), vb.matrix(), nil
}

// ViewMatMulInt8Inputs reads the [A, B] inputs of KernelMatMulInt8 in place; it accepts and
// refuses exactly what DecodeMatMulInt8Inputs does.
func ViewMatMulInt8Inputs(inputs [][]byte) (a, b Int8View, err error) {
	if len(inputs) != 2 {
		return a, b, fmt.Errorf("%w: %s takes 2 inputs [A, B], got %d", ErrKernelInputs, KernelMatMulInt8, len(inputs))
	}
	if a, err = ViewInt8(inputs[0]); err != nil {
		return a, b, fmt.Errorf("input A: %w", err)
	}
	if b, err = ViewInt8(inputs[1]); err != nil {
		return a, b, fmt.Errorf("input B: %w", err)
	}
	if a.Cols != b.Rows {
		return a, b, fmt.Errorf("%w: A is %dx%d and B is %dx%d; A's columns must equal B's rows", ErrShape, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if a.Cols > MaxInner {
		return a, b, fmt.Errorf("%w: inner dimension %d exceeds %d (int32 accumulation could overflow)", ErrShape, a.Cols, MaxInner)
	}
	return a, b, nil
}

func runMatMulFloat32(inputs [][]byte) ([]byte, error) {
	a, b, err := DecodeMatMulFloat32Inputs(inputs)
	if err != nil {
		return nil, err
	}
	c, err := MatMulFloat32(a, b)
	if err != nil {
		return nil, err
	}
	return c.MarshalBinary()
}

// DecodeMatMulFloat32Inputs decodes the [A, B] inputs of KernelMatMulFloat32 and checks
// that the kernel takes them (CheckMatMulFloat32).
func DecodeMatMulFloat32Inputs(inputs [][]byte) (a, b *Float32Matrix, err error) {
	if len(inputs) != 2 {
		return nil, nil, fmt.Errorf("%w: %s takes 2 inputs [A, B], got %d", ErrKernelInputs, KernelMatMulFloat32, len(inputs))
	}
	if a, err = DecodeFloat32(inputs[0]); err != nil {
		return nil, nil, fmt.Errorf("input A: %w", err)
	}
	if b, err = DecodeFloat32(inputs[1]); err != nil {
		return nil, nil, fmt.Errorf("input B: %w", err)
	}
	if err := CheckMatMulFloat32(a, b); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// MatMulOps is the operation count of an n×k by k×m matrix product: a multiply and an add
// for each of its n·k·m terms, 2·n·k·m. A node is billed for a product by this count at its
// registered rate, not by the time it says it took (ledger.SettlementFor). The shapes this
// package decodes keep it below 2^54; past 2^64 it saturates, and a dimension that is not
// positive gives 0.
func MatMulOps(n, k, m int) uint64 {
	if n <= 0 || k <= 0 || m <= 0 {
		return 0
	}
	ops := uint64(2)
	for _, d := range []int{n, k, m} {
		hi, lo := bits.Mul64(ops, uint64(d))
		if hi != 0 {
			return ^uint64(0)
		}
		ops = lo
	}
	return ops
}
