package verify

import (
	"bytes"
	"errors"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
)

func encode(t testing.TB, m interface{ MarshalBinary() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kernelCase(t testing.TB) (inputs [][]byte, output []byte) {
	a, b, _ := instance(t, 5, 4, 3, 21)
	inputs = [][]byte{encode(t, a), encode(t, b)}
	output, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
	if err != nil {
		t.Fatal(err)
	}
	return inputs, output
}

func TestCheckKernelVerdicts(t *testing.T) {
	inputs, honest := kernelCase(t)
	flipped := bytes.Clone(honest)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		output []byte
		ok     bool
	}{
		{"honest output", honest, true},
		{"one bit flipped in the last element", flipped, false},
		{"empty output", nil, false},
		{"output truncated", honest[:len(honest)-4], false},
		{"output encoded as int8", inputs[0], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := CheckKernel(tensor.KernelMatMulInt8, inputs, tt.output, seedOf(5), 2)
			if err != nil {
				t.Fatalf("a bad output must be a verdict, got error %v", err)
			}
			if v.OK != tt.ok || v.Reason == "" {
				t.Fatalf("verdict %+v, want OK=%v with a reason", v, tt.ok)
			}
			if v.Ops != 2*5*4*3 { // a 5×4 by 4×3 product, whatever the output
				t.Fatalf("verdict counts %d operations, want 120", v.Ops)
			}
		})
	}
}

func TestCheckKernelMisuse(t *testing.T) {
	inputs, honest := kernelCase(t)
	tests := []struct {
		name   string
		kernel string
		inputs [][]byte
		rounds int
		want   error
	}{
		{"unknown kernel", "fp16-attention", inputs, 1, ErrUnknownKernel},
		{"zero rounds", tensor.KernelMatMulInt8, inputs, 0, ErrInvalidArgument},
		{"one input", tensor.KernelMatMulInt8, inputs[:1], 1, ErrInvalidArgument},
		{"undecodable input", tensor.KernelMatMulInt8, [][]byte{inputs[0], []byte("x")}, 1, tensor.ErrEncoding},
		{"inputs do not conform", tensor.KernelMatMulInt8, [][]byte{inputs[0], inputs[0]}, 1, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CheckKernel(tt.kernel, tt.inputs, honest, seedOf(6), tt.rounds); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzCheckKernelOutput feeds arbitrary output bytes to the checker. Because
// the encoding is canonical, an output must pass exactly when it equals the
// honest bytes, and it must never be reported as an error.
func FuzzCheckKernelOutput(f *testing.F) {
	inputs, honest := kernelCase(f)
	f.Add(honest)
	f.Add(honest[:16])
	f.Add([]byte("OMT1"))
	f.Fuzz(func(t *testing.T, output []byte) {
		v, err := CheckKernel(tensor.KernelMatMulInt8, inputs, output, seedOf(7), 1)
		if err != nil {
			t.Fatalf("output bytes caused an error: %v", err)
		}
		if v.OK != bytes.Equal(output, honest) {
			t.Fatalf("verdict %+v for output % x", v, output)
		}
	})
}
