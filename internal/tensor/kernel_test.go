package tensor

import (
	"errors"
	"slices"
	"testing"
)

func mustEncode(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunKernelMatMul(t *testing.T) {
	a, b := mustRandom(t, 4, 6, 1), mustRandom(t, 6, 5, 2)
	out, err := RunKernel(KernelMatMulInt8, [][]byte{mustEncode(t, a), mustEncode(t, b)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeInt32(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := naiveMatMul(a, b); !slices.Equal(c.Data, want.Data) || c.Rows != 4 || c.Cols != 5 {
		t.Fatal("kernel output differs from the naive product")
	}
}

func TestRunKernelErrors(t *testing.T) {
	a := mustEncode(t, mustRandom(t, 2, 3, 1))
	b := mustEncode(t, mustRandom(t, 3, 2, 2))
	tests := []struct {
		name   string
		kernel string
		inputs [][]byte
		want   error
	}{
		{"unknown kernel", "fp64-fft", [][]byte{a, b}, ErrUnknownKernel},
		{"one input", KernelMatMulInt8, [][]byte{a}, ErrKernelInputs},
		{"three inputs", KernelMatMulInt8, [][]byte{a, b, b}, ErrKernelInputs},
		{"undecodable input", KernelMatMulInt8, [][]byte{a, []byte("junk")}, ErrEncoding},
		{"shapes do not conform", KernelMatMulInt8, [][]byte{a, a}, ErrShape},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := RunKernel(tt.kernel, tt.inputs); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKernels(t *testing.T) {
	names := Kernels()
	if !slices.IsSorted(names) || !slices.Contains(names, KernelMatMulInt8) {
		t.Fatalf("Kernels() = %v", names)
	}
	names[0] = "mutated"
	if Kernels()[0] == "mutated" {
		t.Fatal("Kernels returned shared state")
	}
}

func TestDecodeMatMulInputsRejectsShapesThatDoNotMultiply(t *testing.T) {
	a, _ := RandomInt8(4, 5, 1)
	b, _ := RandomInt8(3, 5, 2)
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	if _, _, err := DecodeMatMulInt8Inputs([][]byte{ab, bb}); !errors.Is(err, ErrShape) {
		t.Fatalf("err = %v, want ErrShape", err)
	}
}

// TestMatMulOps pins the count a product is billed by: 2·n·k·m, saturating, 0 for an
// empty shape.
func TestMatMulOps(t *testing.T) {
	for _, c := range []struct {
		n, k, m int
		want    uint64
	}{
		{64, 64, 64, 524_288},
		{5, 4, 3, 120},
		{1, 1, 1, 2},
		{8192, MaxInner, 8192, 2 * 8192 * MaxInner * 8192},
		{0, 4, 3, 0},
		{-1, 4, 3, 0},
		{1 << 31, 1 << 31, 1 << 31, ^uint64(0)},
	} {
		if got := MatMulOps(c.n, c.k, c.m); got != c.want {
			t.Errorf("MatMulOps(%d, %d, %d) = %d, want %d", c.n, c.k, c.m, got, c.want)
		}
	}
}
