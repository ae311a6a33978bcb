package ledger_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// TestSameBlocksSameAppHash feeds the random blocks one ledger makes (every transaction
// type, evidence, time jumps) to a second ledger on a separate goleveldb store and requires the
// same results and app hash at every height. The follower lives on goleveldb and restarts
// halfway, so the hash also survives reopening the state from disk.
func TestSameBlocksSameAppHash(t *testing.T) {
	outcomes := map[string]int{}
	for seed := uint64(1); seed <= 3; seed++ {
		a := store.OpenMemory()
		dir := t.TempDir()
		b, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		chain, follower := ledger.NewRandomChain(t, a, seed), ledger.NewFollower(t, b)
		for i := range 160 {
			if i == 80 {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				if b, err = store.Open(dir); err != nil {
					t.Fatal(err)
				}
				follower.Reopen(b)
				if h1, a1 := chain.Info(); true {
					h2, a2 := follower.Info()
					if h1 != h2 || !bytes.Equal(a1, a2) {
						t.Fatalf("seed %d: reopened follower at %d %x, chain at %d %x", seed, h2, a2, h1, a1)
					}
				}
			}
			blk := chain.Next()
			ra, rb := chain.Apply(blk), follower.Apply(blk)
			if !bytes.Equal(ra.AppHash, rb.AppHash) {
				t.Fatalf("seed %d height %d: app hash %x on one store, %x on the other", seed, blk.Height, ra.AppHash, rb.AppHash)
			}
			if !reflect.DeepEqual(ra, rb) {
				t.Fatalf("seed %d height %d: results differ:\n%+v\n%+v", seed, blk.Height, ra, rb)
			}
		}
		chain.CheckBooks()
		_ = b.Close()
		for k, n := range chain.Outcomes() {
			outcomes[k] += n
		}
	}
	for _, want := range []string{"transfer", "job_settled", "job_failed", "staked", "unbonded", "proposal_passed:params", "slashed", "buyback_settled",
		"settlement_share", "replica_outvoted", "result_revealed", "replica_withheld", "job_settled:deadline"} {
		if outcomes[want] == 0 {
			t.Errorf("the random blocks never produced %q: %v", want, outcomes)
		}
	}
}
