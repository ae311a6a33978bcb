package node

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/runtime/runtimetest"
	"github.com/omnisync/omnisync/internal/verify"
)

// A node with a GPU proves its capacity on it, and on the CPU where the GPU fails: the
// answer is the honest one either way.
func TestCapacityIsSolvedOnTheGPU(t *testing.T) {
	ch := verify.CapacityChallenge{Seed: [32]byte{7}, N: 16, Links: 5}
	want, err := verify.SolveCapacity(ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, gpu := range []*runtimetest.GPU{{}, {Err: errors.New("device lost")}} {
		got, err := gpuCapacitySolver(gpu)(context.Background(), ch, nil)
		if err != nil || !slices.Equal(got.Digests, want.Digests) || gpu.Calls != ch.Links {
			t.Fatalf("GPU %+v: digests %v (want %v), %d calls, %v", gpu, got.Digests, want.Digests, gpu.Calls, err)
		}
	}
}
