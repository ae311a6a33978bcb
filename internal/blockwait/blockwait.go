// Package blockwait lets a daemon wait for the chain's next block through whatever chain
// client it was given: one that tells its blocks (chain.Wallet, through one height watch
// per client) is asked to, and any other, a test's fake say, is read again on a timer.
// It keeps the daemons from importing the chain package, and with it CometBFT, for that.
package blockwait

import "context"

// Watch is a chain that tells its readers when a block commits (chain.Wallet.NewBlocks).
type Watch interface {
	NewBlocks(ctx context.Context) (<-chan int64, error)
}

// Next returns the heights of chain's next blocks until ctx ends, or nil, a channel that
// never receives, when chain cannot tell them (it is no Watch, or its watch failed): the
// caller then reads the chain again on a timer of its own.
func Next(ctx context.Context, chain any) <-chan int64 {
	if w, ok := chain.(Watch); ok {
		if blocks, err := w.NewBlocks(ctx); err == nil {
			return blocks
		}
	}
	return nil
}
