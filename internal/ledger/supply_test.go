package ledger

import (
	"maps"
	"testing"
)

// TestTransactionsShareTheBlockPoolsSafely runs transactions that change pools the way
// FinalizeBlock does (a working copy of the block supply, committed or dropped) and checks
// that a dropped one leaves no trace, a committed one lands whole, and the map a committed
// one frees is reused without anyone still reading it.
func TestTransactionsShareTheBlockPoolsSafely(t *testing.T) {
	blk := &blockCtx{supply: Supply{Pools: map[string]uint64{PoolBuyback: 100, PoolEcosystem: 1000}}}
	want := maps.Clone(blk.supply.Pools)
	tx := func(buyback, ecosystem uint64, keep bool) {
		t.Helper()
		c := &execCtx{blk: blk}
		c.borrowSupply()
		before := blk.supply.Pools
		if err := addPool(&c.sp, PoolBuyback, buyback); err != nil {
			t.Fatal(err)
		}
		if err := takePool(&c.sp, PoolEcosystem, ecosystem); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(before, want) {
			t.Fatalf("a running tx changed the block's pools: %v, want %v", before, want)
		}
		if keep {
			c.commit()
			want[PoolBuyback] += buyback
			want[PoolEcosystem] -= ecosystem
		}
		if !maps.Equal(blk.supply.Pools, want) {
			t.Fatalf("block pools %v, want %v", blk.supply.Pools, want)
		}
	}
	tx(1, 10, true)  // allocates a copy, frees the genesis map
	tx(2, 20, false) // copies into the freed map, then is dropped
	tx(3, 30, true)  // copies into it again and commits
	tx(4, 40, true)  // into the map tx 1 made
	tx(5, 50, false)
	if blk.supply.poolsShared || blk.supply.spare != nil {
		t.Fatal("the block's supply still borrows a map")
	}
}
