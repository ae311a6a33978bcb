package runtime

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

func operands(t *testing.T, n int) [][]byte {
	t.Helper()
	a, _ := tensor.RandomInt8(n, n, 1)
	b, _ := tensor.RandomInt8(n, n, 2)
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	return [][]byte{ab, bb}
}

func TestNativeRunsKernelAndMeasuresTime(t *testing.T) {
	clock := time.Unix(0, 0)
	rt := Native{Now: func() time.Time { clock = clock.Add(1500 * time.Millisecond); return clock }}
	res, err := rt.Run(context.Background(), Task{JobID: "j", Kernel: tensor.KernelMatMulInt8, Inputs: operands(t, 8)})
	if err != nil {
		t.Fatal(err)
	}
	if res.GPUMillis != 1500 {
		t.Fatalf("GPUMillis = %d, want 1500 from the injected clock", res.GPUMillis)
	}
	c, err := tensor.DecodeInt32(res.Output)
	if err != nil || c.Rows != 8 || c.Cols != 8 {
		t.Fatalf("output %v %v", c, err)
	}
}

func TestNativeErrors(t *testing.T) {
	if _, err := (Native{}).Run(context.Background(), Task{Kernel: "nope", Inputs: operands(t, 2)}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unknown kernel: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Native{}).Run(ctx, Task{Kernel: tensor.KernelMatMulInt8, Inputs: operands(t, 256)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v", err)
	}
}
