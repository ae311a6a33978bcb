package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
)

// admittingChain is fakeChain with a mempool: it admits a create_job at once, then
// commits it when the test closes gate, or rejects it in its block with inBlock.
type admittingChain struct {
	*fakeChain
	gate     chan struct{} // guarded by fakeChain.mu; blocks decide once it is closed
	inBlock  error         // guarded by fakeChain.mu
	admitted atomic.Int32  // escrows admitted
}

func (a *admittingChain) BroadcastTxAdmitted(ctx context.Context, raw []byte, admitted func()) (string, int64, error) {
	a.admitted.Add(1)
	a.mu.Lock()
	inBlock, gate := a.inBlock, a.gate
	a.mu.Unlock()
	if admitted != nil {
		admitted()
	}
	select {
	case <-gate:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	if inBlock != nil {
		return "", 0, fmt.Errorf("rejected in block 8: %w", inBlock)
	}
	return a.fakeChain.BroadcastTx(ctx, raw)
}

// An Async submission is answered once the mempool admits its escrow: the job reads as
// queued until the block, then runs as any other; the consumer's next sequences are taken
// at once, up to the ledger's window.
func TestAsyncSubmissionAnsweredAtAdmission(t *testing.T) {
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{})}
	r, _ := startRouterWith(t, Options{Chain: chain})
	consumer := newKey(t)
	first, _ := consumerJobFor(t, chain.fakeChain, consumer, 0, func(*api.JobSpec) {})
	first.Async = true
	j, err := r.SubmitJob(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != api.StatusQueued {
		t.Fatalf("answered as %s before the escrow's block, want queued", j.Status)
	}
	if v, err := r.Job(t.Context(), j.ID); err != nil || v.Status != api.StatusQueued {
		t.Fatalf("read before the block: %+v, %v", v, err)
	}

	// The next sequence is taken before the first escrow commits; one past the window
	// is not, and neither is an ahead sequence without Async.
	next, _ := consumerJobFor(t, chain.fakeChain, consumer, 1, func(*api.JobSpec) {})
	if _, err := r.SubmitJob(t.Context(), next); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("sequence 1 without Async: %v, want ErrConflict", err)
	}
	next.Async = true
	nj, err := r.SubmitJob(t.Context(), next)
	if err != nil {
		t.Fatalf("sequence 1, Async: %v", err)
	}
	far, _ := consumerJobFor(t, chain.fakeChain, consumer, ledger.MaxPending, func(*api.JobSpec) {})
	far.Async = true
	if _, err := r.SubmitJob(t.Context(), far); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("sequence %d, Async: %v, want ErrConflict", ledger.MaxPending, err)
	}

	close(chain.gate)
	for _, id := range []string{j.ID, nj.ID} {
		waitFor(t, id+" escrowed", func() bool { return jobHas(r, id, "escrowed") })
	}
	for _, in := range append(first.Spec.Inputs, next.Spec.Inputs...) {
		waitFor(t, "input "+in.Name+" stored once the escrow committed", func() bool { return r.stored(t, in.Digest) })
	}
	chain.mu.Lock()
	defer chain.mu.Unlock()
	if len(chain.jobs) != 2 {
		t.Fatalf("%d jobs escrowed, want 2", len(chain.jobs))
	}
}

// An Async submission whose escrow its block rejects leaves the job failed with the
// reason, for the consumer who already holds its id; nothing is escrowed and the job
// never runs.
func TestAsyncEscrowRejectedInItsBlockFailsTheJob(t *testing.T) {
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{}), inBlock: ledger.ErrInsufficientFunds}
	close(chain.gate)
	r, _ := startRouterWith(t, Options{Chain: chain})
	consumer := newKey(t)
	req, _ := consumerJobFor(t, chain.fakeChain, consumer, 0, func(*api.JobSpec) {})
	req.Async = true
	j, err := r.SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job failed", func() bool {
		v, err := r.Job(t.Context(), j.ID)
		return err == nil && v.Status == api.StatusFailed
	})
	v, _ := r.Job(t.Context(), j.ID)
	if !strings.Contains(v.Error, "insufficient funds") || !strings.Contains(v.Error, "nothing was escrowed") {
		t.Fatalf("failed with %q, want the block's reason", v.Error)
	}
	if jobHas(r, j.ID, "escrowed") {
		t.Fatalf("job %+v", v)
	}
	chain.mu.Lock()
	if len(chain.jobs) != 0 || len(chain.assigned) != 0 {
		t.Fatalf("%d jobs escrowed, %d assignments: want none", len(chain.jobs), len(chain.assigned))
	}
	chain.inBlock = nil
	chain.mu.Unlock()

	// The sequence is still the account's next: the consumer signs again with it, and the
	// router takes the new job under the same id, though it still holds the failed one.
	again, _ := consumerJobFor(t, chain.fakeChain, consumer, 0, func(s *api.JobSpec) { s.TimeoutSeconds = 31 })
	again.Async = true
	if _, err := r.SubmitJob(t.Context(), again); err != nil {
		t.Fatalf("the same sequence again, after its escrow was refused: %v", err)
	}
	waitFor(t, "the new job escrowed", func() bool { return jobHas(r, j.ID, "escrowed") })
	// A third time, the escrow in: answered with the job, nothing escrowed again; the
	// refused job's spec signed with the used sequence is a conflict.
	if v, err := r.SubmitJob(t.Context(), again); err != nil || v.ID != j.ID {
		t.Fatalf("a third time, with the escrow in: %+v, %v; want the job", v, err)
	}
	if _, err := r.SubmitJob(t.Context(), req); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("the refused job again, with the new one's escrow in: %v, want ErrConflict", err)
	}
	chain.mu.Lock()
	defer chain.mu.Unlock()
	if chain.creates != 1 {
		t.Fatalf("%d escrows broadcast, want the new job's alone", chain.creates)
	}
}

// A peer router answers for an Async job whose escrow its block refused as the router
// that took it does, from the job's record in the shared store: failed, with the reason,
// not "no such job" (the chain never heard of it).
func TestPeersAnswerForAnAsyncJobTheChainRefused(t *testing.T) {
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{}), inBlock: ledger.ErrInsufficientFunds}
	close(chain.gate)
	routers, _ := startCluster(t, chain.fakeChain, Options{Chain: chain})
	req, _ := consumerJob(t, chain.fakeChain)
	req.Async = true
	j, err := routers[0].SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job failed on its router", func() bool { return jobHas(routers[0], j.ID, "failed") })
	waitFor(t, "a peer answering that the job failed", func() bool {
		v, err := routers[1].Job(t.Context(), j.ID)
		return err == nil && v.Status == api.StatusFailed && strings.Contains(v.Error, "insufficient funds")
	})
}

// A router that stops after answering an Async submission and before its escrow's block
// leaves the job whole: the inline inputs were stored and the record says the consumer
// holds the id, so the router that takes the job up runs it once the escrow commits,
// rather than refunding it for inputs it thinks were never sent.
func TestAsyncJobOutlivesItsRouterBeforeTheBlock(t *testing.T) {
	defer func(w time.Duration) { escrowWait = w }(escrowWait)
	escrowWait = 5 * time.Second
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{})}
	store := t.TempDir()
	first, _ := startRouterWith(t, Options{Chain: chain, StoreDir: store})
	req, _ := consumerJob(t, chain.fakeChain)
	req.Async = true
	j, err := first.SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	_ = first.Close()

	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	second, roots := startRouterWith(t, Options{Chain: chain, StoreDir: store, Key: first.opts.Key})
	scriptedNode(t, second, roots, key, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Accepted: true} })
	waitFor(t, "the node online", func() bool { return len(second.online(protocol.RoleNode)) == 1 })
	if _, _, err := chain.fakeChain.BroadcastTx(t.Context(), req.Tx); err != nil { // the block, at last
		t.Fatal(err)
	}
	waitFor(t, "the job running under the second router", func() bool { return jobHas(second, j.ID, "running") })
	if jobHas(second, j.ID, "refunded") || jobHas(second, j.ID, "failed") {
		v, _ := second.Job(t.Context(), j.ID)
		t.Fatalf("the job was given up: %+v", v)
	}
}

// A consumer cannot have Async jobs promise more than it holds: the mempool checks each
// escrow against the committed balance alone, and an Async job's inputs are stored before
// its block, so a wallet of 10 OMNI sending 64 jobs of 6 could have the router store 64
// jobs' inputs for one paid escrow. The router counts the budgets it has admitted and
// refuses the second job before anything is broadcast or stored; once the first's block
// has decided, the wallet's balance is its own again.
func TestAsyncJobsCannotPromiseMoreThanTheWalletHolds(t *testing.T) {
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{})}
	r, _ := startRouterWith(t, Options{Chain: chain})
	consumer := newKey(t)
	six := func(s *api.JobSpec) { s.Budget = 6 * ledger.UomniPerOMNI }
	first, _ := consumerJobFor(t, chain.fakeChain, consumer, 0, six) // the wallet holds 10 OMNI
	first.Async = true
	j, err := r.SubmitJob(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := consumerJobFor(t, chain.fakeChain, consumer, 1, six)
	second.Async = true
	if _, err := r.SubmitJob(t.Context(), second); !errors.Is(err, api.ErrInsufficientFunds) || !strings.Contains(err.Error(), "waiting for their block") {
		t.Fatalf("a second job of 6 OMNI from a wallet of 10 with 6 promised: %v, want ErrInsufficientFunds", err)
	}
	if n := chain.admitted.Load(); n != 1 {
		t.Fatalf("%d escrows broadcast, want the first alone", n)
	}
	tx, _ := ledger.DecodeTx(second.Tx)
	if _, err := r.Job(t.Context(), ledger.JobID(tx.Signer, tx.Body.Seq)); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("the refused job: %v, want no such job", err)
	}
	four, _ := consumerJobFor(t, chain.fakeChain, consumer, 1, func(s *api.JobSpec) { s.Budget = 4 * ledger.UomniPerOMNI })
	four.Async = true
	if _, err := r.SubmitJob(t.Context(), four); err != nil {
		t.Fatalf("a job of the 4 OMNI left: %v", err)
	}

	close(chain.gate) // the blocks decide; nothing is promised any more
	waitFor(t, "the first escrowed", func() bool { return jobHas(r, j.ID, "escrowed") })
	waitFor(t, "nothing promised", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.pending) == 0
	})
}

// Two submissions of one job at once (a client that sends again when its first attempt
// seems lost, or a consumer signing again a sequence whose escrow was refused) make one
// job: one is taken and its escrow broadcast once, the other is refused with ErrConflict,
// and the job taken is the one the router answers for. Submitted again after a refusal,
// the first of the pair to pass the check for a job already held waits to read the
// refused job's store revision, which the test holds until the other has its answer: a
// router that tracked the claim too late takes both.
func TestRacingSubmissionsOfOneJobTakeOne(t *testing.T) {
	const pairs = 32
	for _, resubmit := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "after a refused escrow"}[resubmit], func(t *testing.T) {
			chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{})}
			close(chain.gate)
			r, _ := startRouterWith(t, Options{Chain: chain, MaxActiveJobs: 4 * pairs})
			reqs := make([]api.SubmitJobRequest, pairs)
			for i := range reqs {
				consumer := newKey(t)
				if resubmit {
					chain.mu.Lock()
					chain.inBlock = ledger.ErrInsufficientFunds
					chain.mu.Unlock()
					refused, _ := consumerJobFor(t, chain.fakeChain, consumer, 0, func(*api.JobSpec) {})
					refused.Async = true
					j, err := r.SubmitJob(t.Context(), refused)
					if err != nil {
						t.Fatal(err)
					}
					waitFor(t, "the escrow refused", func() bool { return jobHas(r, j.ID, "failed") })
					chain.mu.Lock()
					chain.inBlock = nil
					chain.mu.Unlock()
				}
				reqs[i], _ = consumerJobFor(t, chain.fakeChain, consumer, 0, func(s *api.JobSpec) { s.TimeoutSeconds = 31 })
				reqs[i].Async = true
			}
			// No escrow commits until every pair has been answered: a submission that read
			// the account after its twin's escrow committed would be answered with the job
			// as a resubmission (resubmitted), not taken a second time.
			held := make(chan struct{})
			chain.mu.Lock()
			chain.gate = held
			chain.mu.Unlock()
			broadcastBefore := chain.admitted.Load()
			ids := make([]string, pairs)
			errs := make([][2]error, pairs)
			var wg sync.WaitGroup
			for i, req := range reqs {
				var refused *job
				if resubmit {
					tx, _ := ledger.DecodeTx(req.Tx)
					r.mu.Lock()
					refused = r.jobs[ledger.JobID(tx.Signer, tx.Body.Seq)]
					r.mu.Unlock()
					refused.saveMu.Lock()
				}
				start, answered := make(chan struct{}), make(chan struct{}, 2)
				for k := range 2 {
					wg.Go(func() {
						<-start
						j, err := r.SubmitJob(t.Context(), req)
						errs[i][k] = err
						if err == nil {
							ids[i] = j.ID
						}
						answered <- struct{}{}
					})
				}
				close(start)
				if resubmit {
					select {
					case <-answered:
					case <-time.After(time.Second): // both wait: both passed the check
					}
					refused.saveMu.Unlock()
				}
			}
			wg.Wait()
			close(held)
			for i, e := range errs {
				taken := 0
				for _, err := range e {
					switch {
					case err == nil:
						taken++
					case !errors.Is(err, api.ErrConflict):
						t.Errorf("pair %d: %v, want the job taken or ErrConflict", i, err)
					}
				}
				if taken != 1 {
					t.Fatalf("pair %d: taken %d times (%v), want once", i, taken, e)
				}
			}
			if n := chain.admitted.Load() - broadcastBefore; n != pairs {
				t.Errorf("%d escrows broadcast for %d jobs, want one each", n, pairs)
			}
			for _, id := range ids {
				waitFor(t, id+" escrowed", func() bool { return jobHas(r, id, "escrowed") })
			}
		})
	}
}
