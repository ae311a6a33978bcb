package node

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// countingGPU multiplies on the CPU, or fails with err, counting its calls.
type countingGPU struct {
	calls int
	err   error
}

func (*countingGPU) Name() string { return "Counting GPU" }

func (g *countingGPU) MatMulInt8(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error) {
	g.calls++
	if g.err != nil {
		return nil, g.err
	}
	return tensor.MatMulInt8(a, b)
}

// A node with a GPU proves its capacity on it, and on the CPU where the GPU fails: the
// answer is the honest one either way.
func TestCapacityIsSolvedOnTheGPU(t *testing.T) {
	ch := verify.CapacityChallenge{Seed: [32]byte{7}, N: 16, Links: 5}
	want, err := verify.SolveCapacity(ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, gpu := range []*countingGPU{{}, {err: errors.New("device lost")}} {
		got, err := gpuCapacitySolver(gpu)(context.Background(), ch, nil)
		if err != nil || !slices.Equal(got.Digests, want.Digests) || gpu.calls != ch.Links {
			t.Fatalf("GPU %+v: digests %v (want %v), %d calls, %v", gpu, got.Digests, want.Digests, gpu.calls, err)
		}
	}
}
