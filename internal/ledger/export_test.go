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

// Replica is a second ledger fed the blocks another one made.
type Replica struct{ h *harness }

// NewReplica starts a ledger on st from the same genesis and first block as RandomChain.
func NewReplica(t testing.TB, st Store) *Replica { return &Replica{newHarnessOn(t, richGenesis(), st)} }

func (r *Replica) Apply(b Block) BlockResult { return r.h.finalize(b) }
func (r *Replica) Info() (int64, []byte)     { return r.h.app.Info() }

// Reopen replaces the replica's ledger with a fresh one over st, as a restart does.
func (r *Replica) Reopen(st Store) {
	r.h.t.Helper()
	app, err := New(st)
	if err != nil {
		r.h.t.Fatal(err)
	}
	r.h.app, r.h.store = app, st
}
