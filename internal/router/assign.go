package router

import (
	"context"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/txbatch"
)

// Assignments decided close together reach the chain as one transaction: every job needs
// an assignment, and one per tx made the router's key the network's bottleneck. The
// assigner (a txbatch.Batcher) collects the assignments made within AssignWindow of the
// first (up to AssignBatchMax) and sends them as one ledger.MsgAssignJobs; a lone one goes
// as a plain MsgAssignJob. The ledger applies each item on its own (ledger/batch.go), so
// each job's attempt gets its own item's outcome, and handles a failed item as it handled
// a failed single assignment.

// DefaultAssignWindow is how long the first assignment of a batch waits for others.
const DefaultAssignWindow = txbatch.DefaultWindow

// assign records a placement on chain, alone or in a batch with others, and returns the
// hash of the tx that carried it.
func (r *Router) assign(ctx context.Context, m ledger.MsgAssignJob) (string, error) {
	return r.assigner.Send(ctx, ledger.Msg{AssignJob: &m})
}
