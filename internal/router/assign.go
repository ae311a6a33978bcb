package router

import (
	"context"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// Assignments decided close together reach the chain as one transaction: every job needs
// an assignment, and one per tx made the router's key the network's bottleneck. The
// assigner collects the assignments made within AssignWindow of the first (up to
// AssignBatchMax) and sends them as one ledger.MsgAssignJobs; a lone one goes as a plain
// MsgAssignJob. The ledger applies each item on its own (ledger/batch.go), so each job's
// attempt gets its own item's outcome, and handles a failed item as it handled a failed
// single assignment.

// DefaultAssignWindow is how long the first assignment of a batch waits for others.
const DefaultAssignWindow = 10 * time.Millisecond

// assignRequest is one attempt's assignment waiting for its batch.
type assignRequest struct {
	msg  ledger.MsgAssignJob
	done chan assignResult // buffered: the sender never waits for the attempt
}

type assignResult struct {
	tx  string
	err error
}

// assign records a placement on chain, alone or in a batch with others, and returns the
// hash of the tx that carried it.
func (r *Router) assign(ctx context.Context, m ledger.MsgAssignJob) (string, error) {
	if r.opts.AssignWindow < 0 {
		return r.opts.Chain.Send(ctx, ledger.Msg{AssignJob: &m})
	}
	req := assignRequest{msg: m, done: make(chan assignResult, 1)}
	select {
	case r.assigns <- req:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.tx, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// batchAssignments owns the batch being collected until ctx ends. Each batch is sent from
// its own goroutine: the signer pipelines, so the next batch need not wait for a block.
func (r *Router) batchAssignments(ctx context.Context) {
	defer r.wg.Done()
	for {
		var batch []assignRequest
		select {
		case <-ctx.Done():
			return
		case req := <-r.assigns:
			batch = append(batch, req)
		}
		window := time.NewTimer(r.opts.AssignWindow)
	collect:
		for len(batch) < r.opts.AssignBatchMax {
			select {
			case req := <-r.assigns:
				batch = append(batch, req)
			case <-window.C:
				break collect
			case <-ctx.Done():
				break collect
			}
		}
		window.Stop()
		r.wg.Add(1)
		go r.sendAssignments(ctx, batch)
	}
}

// sendAssignments sends one batch and tells each attempt its item's outcome.
func (r *Router) sendAssignments(ctx context.Context, batch []assignRequest) {
	defer r.wg.Done()
	if len(batch) == 1 {
		tx, err := r.opts.Chain.Send(ctx, ledger.Msg{AssignJob: &batch[0].msg})
		batch[0].done <- assignResult{tx, err}
		return
	}
	m := &ledger.MsgAssignJobs{Assignments: make([]ledger.MsgAssignJob, len(batch))}
	for i, req := range batch {
		m.Assignments[i] = req.msg
	}
	tx, items, err := r.opts.Chain.SendBatch(ctx, ledger.Msg{AssignJobs: m})
	for i, req := range batch {
		res := assignResult{tx: tx, err: err}
		switch {
		case err != nil:
		case i >= len(items):
			res.err = fmt.Errorf("assign_jobs tx %s: no outcome for item %d of %d", tx, i, len(batch))
		case items[i] != nil:
			res.err = fmt.Errorf("assign_jobs item %d: %w", i, items[i])
		}
		req.done <- res
	}
}
