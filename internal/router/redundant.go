package router

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// A redundant job runs on ledger.RedundantReplicas nodes at once, each a replica with its
// own placement and retries. Each node commits a seal of its output's digest; once every
// replica has sealed, the nodes reveal their digests on their own and the chain pays the
// replicas whose digests agree (no validator is involved), at the latest at the job's
// deadline. A replica whose node fails before it seals is placed again elsewhere, in its
// place on chain; once the chain has decided, the router stops any replica still running.

// replicaSet orders the placements of one job's replicas, so no two choose the same node.
type replicaSet struct {
	mu   sync.Mutex
	reps []*replica
}

// replica is one run of a redundant job.
type replica struct {
	index int
	set   *replicaSet
	node  string // the node placed last (guarded by set.mu)
	chain string // the node the chain has this replica assigned to, "" before any (set.mu)
}

// label prefixes a replica's events; "" for a job run once.
func (rp *replica) label() string {
	if rp == nil {
		return ""
	}
	return fmt.Sprintf("replica %d: ", rp.index+1)
}

// txKey names a replica's tx in the job's txs map.
func (rp *replica) txKey(k string) string {
	if rp == nil {
		return k
	}
	return fmt.Sprintf("%s %d", k, rp.index+1)
}

// onChain is the node the chain has the replica assigned to: the one a new assignment
// replaces.
func (rp *replica) onChain() string {
	rp.set.mu.Lock()
	defer rp.set.mu.Unlock()
	return rp.chain
}

func (rp *replica) assigned(node string) {
	rp.set.mu.Lock()
	rp.chain = node
	rp.set.mu.Unlock()
}

// placeReplica places a job, or one replica of it away from the nodes its siblings hold.
func (r *Router) placeReplica(ctx context.Context, j *job, tried []string, rep *replica) (scheduler.Placement, func(), error) {
	if rep == nil {
		return r.place(ctx, j.spec, tried)
	}
	rep.set.mu.Lock()
	defer rep.set.mu.Unlock()
	exclude := slices.Clone(tried)
	for _, o := range rep.set.reps {
		if o != rep && o.node != "" {
			exclude = append(exclude, o.node)
		}
	}
	p, release, err := r.place(ctx, j.spec, exclude)
	if err == nil {
		rep.node = p.NodeID
	}
	return p, release, err
}

// runRedundant runs a redundant job's replicas until the chain decides it. cj is the
// chain's record of a resumed job (zero for a new one): replicas that committed are
// done, and those whose node still runs them are watched again.
func (r *Router) runRedundant(ctx context.Context, j *job, cj ledger.Job) {
	if j.resumed {
		switch cj.Status {
		case ledger.JobCreated, ledger.JobAssigned:
			j.record("resumed", "", "", "a restarted router took the job up (%s on chain, %d replicas assigned)", cj.Status, len(cj.Replicas))
		default:
			return // it ended while no router watched it
		}
	}
	select {
	case <-j.ready:
	case <-ctx.Done():
		r.release(j, fmt.Errorf("inputs %v never arrived", j.missingInputs()))
		return
	}
	set := &replicaSet{}
	running := make([]string, ledger.RedundantReplicas)
	for i := range ledger.RedundantReplicas {
		set.reps = append(set.reps, &replica{index: i, set: set})
	}
	done := make([]bool, len(set.reps))
	for i, rp := range cj.Replicas {
		if i >= len(set.reps) {
			break
		}
		node := string(rp.Node)
		set.reps[i].node, set.reps[i].chain = node, node
		if rp.Committed() {
			done[i] = true
		} else if hb, ok := r.nextHeartbeat(ctx, node); ok && slices.Contains(hb.Running, j.id) {
			running[i] = node
		}
	}

	type outcome struct {
		rep *replica
		err error
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	outcomes := make(chan outcome, len(set.reps))
	pending := map[*replica]bool{}
	for i, rp := range set.reps {
		if done[i] {
			continue
		}
		pending[rp] = true
		go func() {
			_, err := r.compute(rctx, j, running[i], rp)
			outcomes <- outcome{rp, err}
		}()
	}
	var lastErr error
	poll := time.NewTicker(decidedPoll)
	defer poll.Stop()
	decided := false
	for len(pending) > 0 && !decided && ctx.Err() == nil {
		select {
		case o := <-outcomes:
			delete(pending, o.rep)
			if o.err != nil && rctx.Err() == nil {
				lastErr = o.err
				j.record("failed", "", "", "%sgave up: %v", o.rep.label(), o.err)
			}
		case <-poll.C:
		case <-ctx.Done():
		}
		decided = r.decided(ctx, j.id)
	}
	if !decided && len(pending) == 0 && ctx.Err() == nil {
		decided = r.awaitReveals(ctx, j, lastErr)
	}
	cancel()
	if decided {
		r.stopReplicas(j, set, pending)
	}
	for range pending {
		<-outcomes
	}
	if decided {
		r.recordOutcome(ctx, j)
	}
}

// awaitReveals follows a redundant job whose replicas have all ended: once every replica
// has sealed, the nodes reveal and the chain decides (at the latest at the job's deadline,
// which settles a revealed quorum or refunds); a job no replica sealed is released at once;
// one that some replica could not seal waits for its deadline's refund. It reports whether
// the chain decided while it watched.
func (r *Router) awaitReveals(ctx context.Context, j *job, lastErr error) bool {
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err != nil {
		return false
	}
	if !cj.Open() {
		return true
	}
	if _, any := committed(cj, ""); !any {
		r.release(j, lastErr)
		return false
	}
	if !ledger.RevealsOpen(cj) {
		msg := fmt.Sprintf("a replica could not be computed (%v), so the sealed results cannot be revealed; the escrow is refunded at the job's deadline", lastErr)
		j.set(func(j *job) { j.errMsg = msg })
		j.record("failed", "", "", "%s", msg)
		return false
	}
	j.record("revealing", "", "", "all %d replicas sealed their results; the nodes reveal them now, and the chain pays the replicas whose digests agree", ledger.RedundantReplicas)
	poll := time.NewTicker(decidedPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return false // the chain decides at the deadline
		case <-poll.C:
			if r.decided(ctx, j.id) {
				return true
			}
		}
	}
}

// decided reports whether the chain has settled, failed or otherwise closed the job.
func (r *Router) decided(ctx context.Context, id string) bool {
	var cj ledger.Job
	return r.opts.Chain.Query(ctx, "job/"+id, &cj) == nil && !cj.Open()
}

// stopReplicas asks the nodes of the replicas still running to stop: the chain decided
// the job without them, and their work would be paid by nobody.
func (r *Router) stopReplicas(j *job, set *replicaSet, pending map[*replica]bool) {
	set.mu.Lock()
	var nodes []string
	for rp := range pending {
		if rp.node != "" {
			nodes = append(nodes, rp.node)
		}
	}
	set.mu.Unlock()
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), r.opts.DispatchTimeout)
		_, err := r.conn.RequestWithContext(ctx, protocol.DispatchSubject(node),
			protocol.Encode(protocol.Dispatch{JobID: j.id, Router: string(r.id), Spec: j.spec, Cancel: true}))
		cancel()
		if err != nil {
			r.log.Debug("stop a replica", "job", j.id, "node", keys.Address(node).Short(), "err", err)
			continue
		}
		j.record("stopped", "", "", "the job has ended; %s's replica was asked to stop", keys.Address(node).Short())
	}
}
