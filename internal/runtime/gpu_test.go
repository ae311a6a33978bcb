package runtime

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/runtime/runtimetest"
	"github.com/omnisync/omnisync/internal/tensor"
)

// A native runtime with a GPU multiplies on it, and falls back to the CPU, with the same
// output, where the GPU fails; other kernels stay on the CPU.
func TestNativeMultipliesOnItsGPU(t *testing.T) {
	in := operands(t, 16)
	want, err := tensor.RunKernel(tensor.KernelMatMulInt8, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		gpu    *runtimetest.GPU
		device string
	}{{&runtimetest.GPU{}, "Fake GPU"}, {&runtimetest.GPU{Err: errors.New("out of memory")}, "cpu (the GPU failed: out of memory)"}} {
		res, err := Native{GPU: tc.gpu}.Run(context.Background(), Task{JobID: "j", Kernel: tensor.KernelMatMulInt8, Inputs: in})
		if err != nil || !bytes.Equal(res.Output, want) || res.Device != tc.device || tc.gpu.Calls != 1 {
			t.Fatalf("GPU %+v: device %q, %d calls, same output %v, err %v", tc.gpu, res.Device, tc.gpu.Calls, bytes.Equal(res.Output, want), err)
		}
	}
	gpu := &runtimetest.GPU{}
	res, err := Native{GPU: gpu}.Run(context.Background(), Task{JobID: "j", Kernel: tensor.KernelMatMulInt8, Inputs: in[:1]})
	if err == nil || gpu.Calls != 0 || !strings.Contains(err.Error(), "2 inputs") {
		t.Fatalf("malformed inputs: %+v, %v, %d GPU calls", res, err, gpu.Calls)
	}
	f32a, _ := tensor.RandomFloat32(4, 4, 1)
	f32b, _ := tensor.RandomFloat32(4, 4, 2)
	ea, _ := f32a.MarshalBinary()
	eb, _ := f32b.MarshalBinary()
	if res, err := (Native{GPU: gpu}).Run(context.Background(), Task{JobID: "j", Kernel: tensor.KernelMatMulFloat32, Inputs: [][]byte{ea, eb}}); err != nil || res.Device != "cpu" || gpu.Calls != 0 {
		t.Fatalf("fp32 product: device %q, %d GPU calls, %v", res.Device, gpu.Calls, err)
	}
}
