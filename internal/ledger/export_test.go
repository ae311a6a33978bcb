package ledger

import "testing"

// The test API package ledger_test uses to run the ledger over the real IAVL store
// (package store imports this one, so those tests cannot live here).

// RandomChain drives a ledger with random blocks of every transaction type (see sim).
type RandomChain struct{ s *sim }

// NewRandomChain starts a ledger on st from richGenesis and commits its first block.
func NewRandomChain(t testing.TB, st Store, seed uint64) *RandomChain {
	return &RandomChain{newSim(newHarnessOn(t, richGenesis(), st), seed)}
}

func (c *RandomChain) Next() Block               { return c.s.next() }
func (c *RandomChain) Apply(b Block) BlockResult { return c.s.apply(b) }
func (c *RandomChain) CheckBooks()               { c.s.h.checkBooks() }
func (c *RandomChain) Outcomes() map[string]int  { return c.s.outcomes }
func (c *RandomChain) Info() (int64, []byte)     { return c.s.h.app.Info() }

// Follower is a second ledger fed the blocks another one made.
type Follower struct{ h *harness }

// NewFollower starts a ledger on st from the same genesis and first block as RandomChain.
func NewFollower(t testing.TB, st Store) *Follower {
	return &Follower{newHarnessOn(t, richGenesis(), st)}
}

func (r *Follower) Apply(b Block) BlockResult { return r.h.finalize(b) }
func (r *Follower) Info() (int64, []byte)     { return r.h.app.Info() }

// Reopen replaces the follower's ledger with a fresh one over st, as a restart does.
func (r *Follower) Reopen(st Store) {
	r.h.t.Helper()
	app, err := New(st)
	if err != nil {
		r.h.t.Fatal(err)
	}
	r.h.app, r.h.store = app, st
}
