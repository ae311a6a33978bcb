package router

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/txbatch"
)

// TestAssignmentsShareATx: assignments made together reach the chain as one batch, each
// attempt hears its own item's outcome, and a job cancelled meanwhile fails alone, as a
// single assignment of it would.
func TestAssignmentsShareATx(t *testing.T) {
	chain := newFakeChain()
	node := keys.AddressOfKey(ed25519.NewKeyFromSeed(make([]byte, 32)))
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("job-%016x", i)
		chain.jobs[id] = &ledger.Job{ID: id, Status: ledger.JobCreated}
		ids = append(ids, id)
	}
	chain.jobs[ids[3]].Status = ledger.JobCancelled
	r, err := New(Options{Key: ed25519.NewKeyFromSeed(make([]byte, 32)), Chain: chain, AssignWindow: time.Second, AssignBatchMax: len(ids)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); r.wg.Wait() }()
	runAssigner(ctx, r)

	errs := make([]error, len(ids))
	txs := make([]string, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txs[i], errs[i] = r.assign(ctx, ledger.MsgAssignJob{JobID: id, Node: node})
		}()
	}
	wg.Wait()
	if len(chain.batches) != 1 || chain.batches[0] != len(ids) {
		t.Fatalf("batches %v, want one of %d (the batch fills before the window ends)", chain.batches, len(ids))
	}
	for i, err := range errs {
		if want := i == 3; (err != nil) != want || (want && !errors.Is(err, ledger.ErrBadState)) {
			t.Errorf("job %d: err %v", i, err)
		}
		if txs[i] != "ASSIGN-BATCH-1" && err == nil {
			t.Errorf("job %d: tx %q", i, txs[i])
		}
	}
	if j := chain.jobs[ids[3]]; j.Status != ledger.JobCancelled {
		t.Errorf("cancelled job is %s", j.Status)
	}

	// A lone assignment goes as a plain assign_job once its window ends.
	r.assigner = txbatch.New(chain, 5*time.Millisecond, 0)
	runAssigner(ctx, r)
	chain.jobs[ids[3]].Status = ledger.JobCreated
	if tx, err := r.assign(ctx, ledger.MsgAssignJob{JobID: ids[3], Node: node}); err != nil || tx != fmt.Sprintf("ASSIGN-%d", len(ids)) {
		t.Fatalf("lone assignment: %q, %v", tx, err)
	}
}

// runAssigner runs the router's assigner until ctx ends, as Start does.
func runAssigner(ctx context.Context, r *Router) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.assigner.Run(ctx)
	}()
}
