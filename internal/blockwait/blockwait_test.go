package blockwait

import (
	"context"
	"errors"
	"testing"
)

type watched struct {
	blocks chan int64
	err    error
}

func (w watched) NewBlocks(context.Context) (<-chan int64, error) { return w.blocks, w.err }

func TestNextAsksAChainThatTellsItsBlocks(t *testing.T) {
	blocks := make(chan int64, 1)
	blocks <- 7
	if got := Next(t.Context(), watched{blocks: blocks}); got == nil || <-got != 7 {
		t.Fatal("a chain that tells its blocks: want its channel")
	}
	if got := Next(t.Context(), watched{err: errors.New("no chain node")}); got != nil {
		t.Fatal("a watch that failed: want nil, so the caller reads on a timer")
	}
	if got := Next(t.Context(), struct{}{}); got != nil {
		t.Fatal("a chain that cannot tell its blocks: want nil")
	}
}
