package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/blockwait"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// run owns one job from placement to settlement. A job that cannot be computed is
// released on chain at once, so its consumer is refunded now rather than at the deadline.
// A job a previous router saved picks up where the chain says it stands: verified if a
// result is committed, watched again if its node is still running it, placed otherwise.
func (r *Router) run(j *job) {
	defer r.wg.Done()
	defer r.finish(j)
	ctx, cancel := context.WithDeadline(j.ctx, j.started.Add(time.Duration(j.spec.TimeoutSeconds)*time.Second))
	defer cancel()
	var res protocol.Result
	var running string // a node the chain says holds the job and that still runs it
	computed := false
	var cj ledger.Job
	if j.resumed {
		if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err != nil {
			r.log.Warn("resumed job not found on chain; dropping it", "job", j.id, "err", err)
			return
		}
		if cj.Status == ledger.JobCreated {
			r.findStored(ctx, j)
		}
	}
	if j.spec.Verification == api.VerifyRedundant {
		r.runRedundant(ctx, j, cj)
		return
	}
	if j.resumed {
		switch cj.Status {
		case ledger.JobComputed:
			res, computed = protocol.Result{JobID: j.id, NodeID: string(cj.Node), Digest: cj.ResultDigest, GPUMillis: cj.GPUMillis}, true
		case ledger.JobAssigned:
			// Its node may still run it: give the node a heartbeat's time to reconnect to
			// this router and say so.
			if hb, ok := r.nextHeartbeat(ctx, string(cj.Node)); ok && slices.Contains(hb.Running, j.id) {
				running = string(cj.Node)
			}
		case ledger.JobCreated:
		default:
			return // it ended while no router watched it
		}
		j.record("resumed", "", "", "a restarted router took the job up (%s on chain)", cj.Status)
	}
	if !computed {
		select {
		case <-j.ready:
		case <-ctx.Done():
			r.release(j, fmt.Errorf("inputs %v never arrived", j.missingInputs()))
			return
		}
		if err := r.prepareChallenge(ctx, j); err != nil {
			r.release(j, err)
			return
		}
		var err error
		if res, err = r.compute(ctx, j, running, nil); err != nil {
			r.release(j, err)
			return
		}
	}
	decided, err := r.verifyUntilDecided(ctx, j, res)
	if err != nil {
		r.log.Warn("job not verified", "job", j.id, "err", err)
		j.set(func(j *job) { j.errMsg = err.Error() })
		j.record("failed", "", "", "%v", err)
		return
	}
	if decided.ID == "" {
		r.recordOutcome(ctx, j)
		return
	}
	r.recordDecision(j, decided)
}

// recordOutcome reads how the chain decided the job, and records it (recordDecision).
func (r *Router) recordOutcome(ctx context.Context, j *job) {
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err != nil {
		cj = ledger.Job{}
	}
	r.recordDecision(j, cj)
}

// recordDecision records what the chain paid and refunded for the job, as cj (its record
// once decided; the zero Job when it could not be read) shows. A decided job's
// settlement never changes, so a record read when the decision was seen serves.
func (r *Router) recordDecision(j *job, cj ledger.Job) {
	if cj.Settlement != nil {
		s := cj.Settlement
		switch {
		case cj.Status == ledger.JobCancelled:
			j.record("refunded", "", "", "cancelled; %s OMNI refunded to the consumer", ledger.FormatOMNI(s.Refunded))
		case cj.Status == ledger.JobExpired:
			j.record("refunded", "", "", "the deadline passed; %s OMNI refunded to the consumer", ledger.FormatOMNI(s.Refunded))
		case cj.Status == ledger.JobSettled && len(s.Shares) > 0:
			j.record("settled", "", "", "%d of %d replicas agreed on %s: paid %s OMNI to them, burned %s, fee %s, refunded %s",
				len(s.Shares), len(cj.Replicas), cj.ResultDigest, ledger.FormatOMNI(s.Paid), ledger.FormatOMNI(s.Burned), ledger.FormatOMNI(s.Fee), ledger.FormatOMNI(s.Refunded))
		case cj.Status == ledger.JobSettled && !verified(cj):
			j.record("settled", "", "", "not drawn for audit: paid %s OMNI to the node on its word, burned %s, fee %s, refunded %s",
				ledger.FormatOMNI(s.Paid), ledger.FormatOMNI(s.Burned), ledger.FormatOMNI(s.Fee), ledger.FormatOMNI(s.Refunded))
		case cj.Status == ledger.JobSettled:
			j.record("settled", "", "", "paid %s OMNI to the node, burned %s, fee %s, refunded %s",
				ledger.FormatOMNI(s.Paid), ledger.FormatOMNI(s.Burned), ledger.FormatOMNI(s.Fee), ledger.FormatOMNI(s.Refunded))
		case cj.Verification == ledger.VerifyRedundant:
			j.record("refunded", "", "", "no two replicas agreed; %s OMNI refunded to the consumer", ledger.FormatOMNI(s.Refunded))
		default:
			j.record("refunded", "", "", "verification failed; %s OMNI refunded to the consumer", ledger.FormatOMNI(s.Refunded))
		}
	}
	r.log.Info("job finished", "job", j.id, "status", cj.Status, "took", since(j.started))
}

// nextHeartbeat waits up to HeartbeatTTL for node's heartbeat. It serves a router that has
// just started, whose heartbeats are all new.
func (r *Router) nextHeartbeat(ctx context.Context, node string) (protocol.Heartbeat, bool) {
	deadline := time.NewTimer(r.opts.HeartbeatTTL)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		r.mu.Lock()
		hb, ok := r.seen[node]
		r.mu.Unlock()
		if ok {
			return hb, true
		}
		select {
		case <-ctx.Done():
			return protocol.Heartbeat{}, false
		case <-deadline.C:
			return protocol.Heartbeat{}, false
		case <-poll.C:
		}
	}
}

// finish marks the job done, unless the router left it (it is shutting down, or another
// router owns the job now): then the job is only left, for its owner to take up.
func (r *Router) finish(j *job) {
	if j.ctx.Err() != nil {
		return
	}
	j.set(func(j *job) { j.finished = r.opts.Now() })
	r.mu.Lock()
	r.uncountLocked(j)
	r.mu.Unlock()
	j.save()
}

// release gives up on a job that no node computed: it cancels the job on chain, which
// refunds the budget in full, and records why. A router that left the job releases
// nothing: the job is not given up, only left.
func (r *Router) release(j *job, why error) {
	if j.ctx.Err() != nil {
		return
	}
	r.log.Warn("job not computed; releasing it", "job", j.id, "err", why)
	ctx, cancel := context.WithTimeout(j.ctx, r.opts.DispatchTimeout)
	defer cancel()
	tx, err := r.opts.Chain.Send(ctx, ledger.Msg{CancelJob: &ledger.MsgCancelJob{JobID: j.id}})
	if err != nil {
		msg := fmt.Sprintf("%v; releasing it on chain failed (%v), so the escrow is refunded in full at the job's deadline", why, err)
		j.set(func(j *job) { j.errMsg = msg })
		j.record("failed", "", "", "%s", msg)
		return
	}
	j.set(func(j *job) { j.errMsg = why.Error() + "; the job was released and its budget refunded in full" })
	j.record("refunded", "release", tx, "%v; released on chain, %s OMNI refunded", why, ledger.FormatOMNI(j.spec.Budget))
}

// errAllBusy means a job fits some online node but every such node's GPUs are held.
var errAllBusy = errors.New("every node that fits the job is busy")

// noneOnlineError is a placement's error when nodes are registered but none is online:
// they restart, or lost their connection, and the job waits up to HeartbeatTTL for one
// to come back (compute) before it fails with this error. (A container job on a network
// whose online nodes run no containers fails at once.)
type noneOnlineError struct{ error }

func (e noneOnlineError) Unwrap() error { return e.error }

// compute places the job and retries on other nodes until one returns a committed result.
// Waiting for a free GPU is not an attempt, nor waiting for a node to come online, nor a
// node that declines for lack of a GPU: only a node that fails the job counts, and it is
// not asked again.
//
// running names a node that already runs the job (a restarted router found it so): it is
// watched first, as the first attempt.
//
// rep is the replica this computes of a redundant job, nil for a job run once: its
// placements avoid the nodes its sibling replicas hold, and its assignments replace its
// own node that failed.
func (r *Router) compute(ctx context.Context, j *job, running string, rep *replica) (protocol.Result, error) {
	var lastErr error
	if running != "" {
		r.mu.Lock()
		release := r.reserveLocked(running, j.spec.Resources.Slots())
		r.mu.Unlock()
		revoke := r.grant(j, running)
		reports, stop := j.listen(running)
		res, err := r.await(ctx, j, running, reports)
		stop()
		revoke()
		release()
		if err == nil {
			return res, nil
		}
		lastErr = err
		j.set(func(j *job) { j.tried = append(j.tried, running) })
	}
	waiting, hops := false, 0 // hops: how often a wake this job could not use may be passed on
	var line *waiter          // the job's place in line while it waits, kept for the next wait
	var offline time.Time     // when placement found no node online, while the job waits for one
	// await passes on a wake the job could not use and waits in line until capacity comes
	// free, its safety poll passes or ctx ends.
	await := func(ctx context.Context) (err error) {
		r.passWake(hops)
		if line == nil {
			line = new(waiter)
		}
		hops, err = r.waitForCapacity(ctx, line)
		return err
	}
	for attempt := 1; attempt <= r.opts.MaxAttempts; {
		j.mu.Lock()
		tried := slices.Clone(j.tried)
		j.mu.Unlock()
		began := time.Now()
		p, release, err := r.placeReplica(ctx, j, tried, rep)
		r.metrics.placement(time.Since(began), err)
		if errors.Is(err, errAllBusy) {
			if !waiting {
				j.record("queued", "", "", "%v; waiting for a free gpu", err)
				waiting = true
			}
			if err := await(ctx); err != nil {
				return protocol.Result{}, err
			}
			continue
		}
		if errors.As(err, new(noneOnlineError)) {
			if offline.IsZero() {
				offline = time.Now()
				j.record("queued", "", "", "%v; waiting up to %s for one to come online", err, r.opts.HeartbeatTTL)
			}
			if left := r.opts.HeartbeatTTL - time.Since(offline); left > 0 {
				wait, cancel := context.WithTimeout(ctx, left)
				_ = await(wait) // woken by a node's heartbeat, or the time is up
				cancel()
				if ctx.Err() != nil {
					return protocol.Result{}, fmt.Errorf("%w (waited for a node until the job's deadline)", err)
				}
				continue
			}
		}
		offline = time.Time{}
		if err != nil {
			r.passWake(hops) // it needed none of what came free
			if lastErr != nil {
				return protocol.Result{}, fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return protocol.Result{}, err
		}
		waiting, hops = false, 0
		j.set(func(j *job) { j.attempts = attempt })
		res, err := r.attempt(ctx, j, p, rep)
		release()
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return protocol.Result{}, fmt.Errorf("job timed out: %w", err)
		}
		if errors.Is(err, errNodeBusy) {
			r.log.Debug("node busy; placing again", "job", j.id, "node", keys.Address(p.NodeID).Short())
			j.record("retry", "", "", "%s has no free gpu; placing again (not counted as an attempt)", keys.Address(p.NodeID).Short())
			r.metrics.replaced("declined")
			r.mu.Lock()
			r.declined[p.NodeID] = r.when[p.NodeID]
			r.freeChangedLocked(p.NodeID)
			r.mu.Unlock()
			continue // the node counts as full until it heartbeats again: another, or the line
		}
		if errors.Is(err, errNodeUnreachable) && j.firstSilence(p.NodeID) {
			// Nothing listens for the node's jobs: it is down, and its heartbeats have not
			// lapsed yet, or it is restarting. Like a node that declined, it counts as full
			// until it heartbeats again, and the job is placed again without counting an
			// attempt, so that a job outlives a few seconds when every node is down. Once
			// a node: one that heartbeats but never listens fails the job the next time,
			// as any failed attempt does, rather than holding it to its deadline.
			r.log.Debug("node unreachable; placing again", "job", j.id, "node", keys.Address(p.NodeID).Short())
			j.record("retry", "", "", "%s%s is unreachable; placing again (not counted as an attempt)", rep.label(), keys.Address(p.NodeID).Short())
			r.metrics.replaced("unreachable")
			r.mu.Lock()
			r.declined[p.NodeID] = r.when[p.NodeID]
			r.freeChangedLocked(p.NodeID)
			r.mu.Unlock()
			continue
		}
		onChain := ""
		if rep != nil {
			onChain = p.NodeID // another replica's commit is not this one's
		}
		if res, ok := r.resultOnChain(ctx, j, onChain, fmt.Sprintf("the attempt on %s failed (%v)", keys.Address(p.NodeID).Short(), err)); ok {
			return res, nil // the node's commit landed though it (or the router) never heard
		}
		j.set(func(j *job) { j.tried = append(j.tried, p.NodeID) })
		lastErr = err
		r.log.Warn("attempt failed; re-placing", "job", j.id, "node", keys.Address(p.NodeID).Short(), "attempt", attempt, "err", err)
		j.record("retry", "", "", "%sattempt %d on %s failed: %v", rep.label(), attempt, keys.Address(p.NodeID).Short(), err)
		if attempt < r.opts.MaxAttempts {
			r.metrics.replaced("failed")
		}
		attempt++
	}
	return protocol.Result{}, fmt.Errorf("gave up after %d attempts: %w", r.opts.MaxAttempts, lastErr)
}

// place scores the online, registered nodes and returns the best feasible one with the
// job's GPUs reserved on it until release is called. It asks the placement index
// (placement.go), which answers what a scan of every such node would. A node's free GPUs
// are its GPUs less what this router's own attempts hold (freeLocked). errAllBusy means
// the job fits a node whose GPUs are all held; noneOnlineError, that nodes are
// registered but none is online.
func (r *Router) place(ctx context.Context, spec api.JobSpec, exclude []string) (scheduler.Placement, func(), error) {
	view, err := r.placementView(ctx)
	if err != nil {
		return scheduler.Placement{}, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.indexLocked(view, spec.Workload.Kind == api.WorkloadContainer)
	if err != nil {
		return scheduler.Placement{}, nil, err
	}
	if x.Len() == 0 {
		what := "node"
		if spec.Workload.Kind == api.WorkloadContainer {
			what = "node that runs containers"
		}
		err := fmt.Errorf("%w: no registered %s is online", scheduler.ErrNoFeasibleNode, what)
		if len(r.px.registered) > 0 && r.px.all.Len() == 0 { // not: online, but none runs containers
			return scheduler.Placement{}, nil, noneOnlineError{err}
		}
		return scheduler.Placement{}, nil, err
	}
	job := schedulerJob(spec, exclude)
	px := r.px // indexLocked made it, x's holder
	plan, err := x.PlaceWith(&px.scratch, job)
	if errors.Is(err, scheduler.ErrNoFeasibleNode) && px.fitsHeld(x, r.idleLocked(px), job, view.weights) {
		return scheduler.Placement{}, nil, fmt.Errorf("%w (%v)", errAllBusy, err)
	}
	if err != nil {
		return scheduler.Placement{}, nil, err
	}
	p := plan.Placements[0]
	return p, r.reserveLocked(p.NodeID, spec.Resources.Slots()), nil
}

// fitsHeld reports whether job, which fits no node of x, would fit a node some of whose
// GPUs are held were none of them: idle gives those nodes' GPUs (idleLocked). The job then
// waits for a GPU rather than failing. Only those nodes need a look: every other node is
// in x as it would be, and x has none the job fits. (With 100,000 nodes online, scanning
// a copy of them all under r.mu, as this did, took tens of milliseconds for each job a
// busy network made wait, and again at each wake.) A placement of one replica is feasible
// on a node or not whatever the other nodes are, so the answer is the full scan's.
// The held nodes are gathered into px.held, reused under r.mu as px.scratch is: a copy
// of every held node, made afresh for each job a busy network made wait, was the most
// the router allocated.
func (px *placementIndex) fitsHeld(x *scheduler.Index, idle map[string]int, job scheduler.Job, w scheduler.Weights) bool {
	held := px.held[:0]
	for id, gpus := range idle {
		if n, ok := x.Node(id); ok {
			n.FreeGPUs = gpus
			held = append(held, n)
		}
	}
	px.held = held
	_, err := scheduler.Place(job, held, w)
	return len(held) > 0 && err == nil
}

// idleLocked gives, for each node some of whose GPUs this router's attempts hold, or
// that declined a job and so counts as full until it heartbeats again, its GPUs less
// what its peers hold (freeLocked). What the peers hold is not given back: their leases
// can outlive the hold (a router cut off from the others leaves its jobs without
// releasing them), and a job waiting on such a hold would wait to its deadline. The map
// is px.idle, emptied and filled again: it is good until the next call. r.mu must be
// held.
func (r *Router) idleLocked(px *placementIndex) map[string]int {
	if px.idle == nil {
		px.idle = make(map[string]int, len(r.reserved)+len(r.declined))
	}
	idle := px.idle
	clear(idle)
	for id := range r.reserved {
		idle[id] = r.seen[id].GPUs - r.peerHeld[id]
	}
	for id := range r.declined {
		idle[id] = r.seen[id].GPUs - r.peerHeld[id]
	}
	return idle
}

// placementViewTTL is how long the chain's nodes and router weights are reused between
// placements: a router places hundreds of jobs a second, and a chain query for each was
// a storm. The ledger re-checks every assignment, so a node deactivated within the
// window is refused there.
const placementViewTTL = 250 * time.Millisecond

// placementView returns the chain's registered nodes and the router weights, read at
// most once per placementViewTTL however many jobs ask, and again at once after a node
// the last read did not know heartbeated.
func (r *Router) placementView(ctx context.Context) (placementSnapshot, error) {
	r.viewMu.Lock()
	defer r.viewMu.Unlock()
	if v := r.view; !v.at.IsZero() && time.Since(v.at) < placementViewTTL && !r.viewStale.Swap(false) {
		return v, nil
	}
	nodes, changed, err := r.chainNodesLocked(ctx)
	if err != nil {
		return placementSnapshot{}, fmt.Errorf("read nodes from chain: %w", err)
	}
	weights := r.opts.Weights
	if weights == (scheduler.Weights{}) {
		var p ledger.Params
		if err := r.opts.Chain.Query(ctx, "params", &p); err != nil {
			return placementSnapshot{}, fmt.Errorf("read router weights from chain: %w", err)
		}
		weights = scheduler.Weights(p.RouterWeights)
	}
	v := placementSnapshot{at: time.Now(), gen: r.view.gen, nodes: nodes, weights: weights}
	if len(nodes) != len(r.view.nodes) || len(nodes) > 0 && &nodes[0] != &r.view.nodes[0] || weights != r.view.weights {
		v.gen++ // a new generation for the index to sync to (chainNodesLocked keeps an unchanged list)
		if weights == r.view.weights {
			v.changed, v.base = changed, r.view.gen
		}
	}
	r.view = v
	return r.view, nil
}

// chainNodesLocked returns the chain's registered nodes, reading only the records
// written since the last read (the ledger's nodes_since): with 100,000 nodes, reading
// and decoding all of them every placementViewTTL was a third of a core. The list it
// returns is never changed afterwards (a read with changes makes a new one), so views
// handed out earlier stay as they were. changed are the records read, nil when they
// were every node. r.viewMu must be held.
func (r *Router) chainNodesLocked(ctx context.Context) (nodes, changed []ledger.Node, err error) {
	var ns ledger.NodesSince
	if err := r.opts.Chain.Query(ctx, fmt.Sprintf("nodes_since/%d", r.nodesHeight), &ns); err != nil {
		return nil, nil, err
	}
	nodes = r.view.nodes
	switch {
	case !ns.Full && r.nodeAt == nil:
		return nil, nil, fmt.Errorf("the chain answered the nodes changed since height %d before the router held any", r.nodesHeight)
	case ns.Full:
		nodes, r.nodeAt = ns.Nodes, make(map[keys.Address]int, len(ns.Nodes))
		for i, n := range nodes {
			r.nodeAt[n.Address] = i
		}
	case len(ns.Nodes) > 0:
		nodes, changed = slices.Clone(nodes), ns.Nodes
		for _, n := range ns.Nodes {
			if i, ok := r.nodeAt[n.Address]; ok {
				nodes[i] = n
			} else {
				r.nodeAt[n.Address] = len(nodes)
				nodes = append(nodes, n)
			}
		}
	}
	r.nodesHeight = ns.Height
	return nodes, changed, nil
}

// reserveLocked holds gpus of node for one attempt until the returned func is called
// (once); the jobs waiting for capacity then hear of it (freeChangedLocked). r.mu must
// be held.
func (r *Router) reserveLocked(node string, gpus int) (release func()) {
	r.reserved[node] += gpus
	r.freeChangedLocked(node)
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.reserved[node] -= gpus; r.reserved[node] <= 0 {
				delete(r.reserved, node)
			}
			r.freeChangedLocked(node)
		})
	}
}

// errNodeBusy means the node declined the job for want of a free GPU.
var errNodeBusy = errors.New("node declined: " + protocol.DeclineNoFreeGPU)

// errNodeUnreachable means nothing listened for the node's dispatches.
var errNodeUnreachable = errors.New("node unreachable")

// firstSilence records that a dispatch of j found no one listening on node, and reports
// whether it was the first to.
func (j *job) firstSilence(node string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if slices.Contains(j.silent, node) {
		return false
	}
	j.silent = append(j.silent, node)
	return true
}

// attempt assigns the job (or one replica of it) to one node on chain, dispatches it and
// waits for the result.
func (r *Router) attempt(ctx context.Context, j *job, p scheduler.Placement, rep *replica) (protocol.Result, error) {
	sc := api.Scores(p.Scores)
	j.set(func(j *job) { j.node, j.scores, j.running = p.NodeID, &sc, false })
	j.record("placed", "", "", "%snode %s scored %d.%02d%% (compute %d, latency %d, reliability %d, price %d bp)",
		rep.label(), keys.Address(p.NodeID).Short(), sc.Total/100, sc.Total%100, sc.Compute, sc.Latency, sc.Reliability, sc.Price)
	// Saved before the assignment goes on chain: a router that lost the job to a peer
	// learns it here, before it assigns anything, and a challenge's hidden rows, which
	// the assignment commits to, are in the store for a restarted router to reveal.
	j.save()
	assign := &ledger.MsgAssignJob{JobID: j.id, Node: keys.Address(p.NodeID), ScoreBP: p.Scores.Total}
	if rep != nil {
		assign.Replaces = keys.Address(rep.onChain())
	}
	if c := j.challengeState(); c != nil {
		assign.Challenge = c.commitment()
	}
	tx, err := r.assign(ctx, *assign)
	if err != nil {
		return protocol.Result{}, fmt.Errorf("record assignment: %w", err)
	}
	if rep != nil {
		rep.assigned(p.NodeID)
	}
	j.record("assigned", rep.txKey("assign"), tx, "%sassignment recorded on chain", rep.label())

	revoke := r.grant(j, p.NodeID)
	defer revoke()
	reports, stop := j.listen(p.NodeID)
	defer stop()

	spec := j.dispatched()
	dctx, cancel := context.WithTimeout(ctx, r.opts.DispatchTimeout)
	msg, err := r.conn.RequestWithContext(dctx, protocol.DispatchSubject(p.NodeID),
		protocol.Encode(protocol.Dispatch{JobID: j.id, Router: string(r.id), Spec: spec, TimeoutSeconds: j.spec.TimeoutSeconds, Inputs: j.inlineFor(spec)}))
	cancel()
	if errors.Is(err, nats.ErrNoResponders) {
		return protocol.Result{}, fmt.Errorf("dispatch: %w: %w", errNodeUnreachable, err)
	}
	if err != nil {
		return protocol.Result{}, fmt.Errorf("dispatch: %w", err)
	}
	ack, err := protocol.Decode[protocol.Ack](msg.Data)
	if err != nil {
		return protocol.Result{}, fmt.Errorf("dispatch: %w", err)
	}
	if !ack.Accepted {
		if ack.Error == protocol.DeclineNoFreeGPU {
			return protocol.Result{}, errNodeBusy
		}
		return protocol.Result{}, fmt.Errorf("node declined: %s", ack.Error)
	}
	j.set(func(j *job) { j.running = true })
	j.record("running", "", "", "%snode accepted the job", rep.label())
	return r.await(ctx, j, p.NodeID, reports)
}

// grant lets node read the job's inputs and store its one output until revoke is called:
// for as long as one attempt lasts, and not a moment longer.
func (r *Router) grant(j *job, node string) (revoke func()) {
	revokeRead := r.grants.AllowRead(node, inputDigests(j.dispatched())...)
	revokeWrite := r.grants.AllowWrite(node, j.id, r.opts.MaxOutputBytes)
	return func() { revokeRead(); revokeWrite() }
}

// await watches the node running the job until it reports. A node that stops
// heartbeating is presumed gone, and one whose heartbeats no longer list the job (it
// restarted and lost it) has dropped it: either way the job is re-placed, unless its
// result already reached the chain.
func (r *Router) await(ctx context.Context, j *job, node string, reports <-chan protocol.Result) (protocol.Result, error) {
	r.mu.Lock()
	startBeats := r.beats[node]
	r.mu.Unlock()
	watch := time.NewTicker(r.opts.HeartbeatTTL / 2)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			return protocol.Result{}, ctx.Err()
		case <-watch.C:
			lost := r.dropped(node, j.id, startBeats)
			if lost == "" {
				continue
			}
			select {
			case res := <-reports: // the result overtook the heartbeat that shows it done
				if res, ok, err := r.report(j, node, res); ok {
					return res, err
				}
			default:
			}
			if res, ok := r.resultOnChain(ctx, j, node, "the node "+lost); ok {
				return res, nil
			}
			return protocol.Result{}, fmt.Errorf("node %s", lost)
		case res := <-reports:
			if res, ok, err := r.report(j, node, res); ok {
				return res, err
			}
		}
	}
}

// resultOnChain returns the result the chain holds for the job, if a node (node, or any
// when node is "") committed one, recording that it was found there after what happened.
func (r *Router) resultOnChain(ctx context.Context, j *job, node, after string) (protocol.Result, bool) {
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err != nil {
		return protocol.Result{}, false
	}
	res, ok := committed(cj, node)
	if ok {
		j.record("computed", "", "", "the result of %s was found on chain after %s", keys.Address(res.NodeID).Short(), after)
	}
	return res, ok
}

// committed returns the result node committed for the job on chain (any node's when node
// is ""): a single node's committed result, or a replica's.
func committed(cj ledger.Job, node string) (protocol.Result, bool) {
	for _, rp := range cj.Replicas {
		if rp.Committed() && (node == "" || string(rp.Node) == node) {
			return protocol.Result{JobID: cj.ID, NodeID: string(rp.Node), Digest: rp.ResultDigest, GPUMillis: rp.GPUMillis}, true
		}
	}
	if cj.Status != ledger.JobComputed || (node != "" && string(cj.Node) != node) {
		return protocol.Result{}, false
	}
	return protocol.Result{JobID: cj.ID, NodeID: string(cj.Node), Digest: cj.ResultDigest, GPUMillis: cj.GPUMillis}, true
}

// dropped says how node let the job go ("stopped heartbeating for 10s", "restarted and no
// longer runs the job"), or "" while it still works on it. Two heartbeats since startBeats
// without the job are needed: one sent before the node took the job may arrive after.
func (r *Router) dropped(node, jobID string, startBeats uint64) string {
	if _, alive := r.onlineAs(node, protocol.RoleNode); !alive {
		return fmt.Sprintf("stopped heartbeating for %s", r.opts.HeartbeatTTL)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.beats[node] >= startBeats+2 && !slices.Contains(r.seen[node].Running, jobID) {
		return "no longer runs the job (it restarted)"
	}
	return ""
}

// report turns a node's result message into the attempt's outcome; ok is false for a
// late report from an earlier attempt on another node.
func (r *Router) report(j *job, node string, res protocol.Result) (protocol.Result, bool, error) {
	if res.NodeID != node {
		return protocol.Result{}, false, nil
	}
	if res.Error != "" {
		// A job's logs are its consumer's: the end of them that a runtime's error carries
		// stays out of the job's events, which anyone may read.
		msg, _, _ := strings.Cut(res.Error, "; log tail:")
		return protocol.Result{}, true, errors.New(msg)
	}
	short, exit := keys.Address(node).Short(), ""
	if res.ExitCode != nil {
		exit = fmt.Sprintf(", exit code %d", *res.ExitCode)
	}
	if j.spec.Verification == api.VerifyRedundant {
		// The digest stays off the public record until the chain opens the seals.
		j.record("computed", "result "+short, res.CommitTx, "%s sealed its result on chain (%d GPU-ms%s); it reveals the digest once all %d replicas have sealed",
			short, res.GPUMillis, exit, ledger.RedundantReplicas)
		return res, true, nil
	}
	j.record("computed", "result", res.CommitTx, "%s committed result %s on chain (%d GPU-ms%s)", short, res.Digest, res.GPUMillis, exit)
	return res, true, nil
}

// decidedPoll is how often a router waiting for verdicts checks whether the chain has
// decided the job already.
const decidedPoll = 500 * time.Millisecond

// undecidedPoll is how long a router waits for a first verdict before it checks, every
// decidedPoll, whether the chain has decided the job without one (every member's answer
// lost, or sent to another router of the cluster).
const undecidedPoll = 2 * time.Second

// verifyRetry is how long the router waits before asking a committee again.
const verifyRetry = 2 * time.Second

// verifyUntilDecided asks the committee again, until the job's deadline, while too few of
// its validators could attest: a committed result cannot be released, only verified or
// left to expire, and validators come back (a restarted router hears them within a
// heartbeat). It returns the decided record verify read, if it read one.
func (r *Router) verifyUntilDecided(ctx context.Context, j *job, res protocol.Result) (ledger.Job, error) {
	for {
		decided, err := r.verify(ctx, j, res)
		if err == nil {
			return decided, nil
		}
		r.log.Info("verification not decided; asking again", "job", j.id, "err", err)
		select {
		case <-ctx.Done():
			return ledger.Job{}, fmt.Errorf("%w; the job's deadline passed", err)
		case <-time.After(verifyRetry):
		}
	}
}

// verify asks every online member of the job's committee, at once, to check the
// committed result and attest: the chain settles on two thirds passing, or fails the job on
// more than a third failing, so asking one validator settles nothing where the committee
// is larger. It returns once the chain has decided, or when every member has answered,
// with the job's record that showed it decided: the zero Job when the last read failed
// (recordOutcome then reads it again).
func (r *Router) verify(ctx context.Context, j *job, res protocol.Result) (ledger.Job, error) {
	// The chain drew the committee from the block that recorded the result. The chain node
	// the router reads may not have applied that block yet: wait for it.
	cj, err := r.computedRecord(ctx, j.id)
	if err != nil {
		return ledger.Job{}, err
	}
	if cj.Status != ledger.JobComputed {
		return cj, nil // decided already (a resumed job, or an audit job the draw passed over)
	}
	if err := r.revealChallenge(ctx, j, cj); err != nil {
		return ledger.Job{}, err
	}
	var candidates []string
	for _, v := range cj.Committee {
		if _, ok := r.onlineAs(string(v), protocol.RoleValidator); ok {
			candidates = append(candidates, string(v))
		}
	}
	sort.Strings(candidates)
	if len(candidates) == 0 {
		return ledger.Job{}, fmt.Errorf("none of the job's %d committee validators is online", len(cj.Committee))
	}
	// The committee may read the inputs (as the consumer gave them and as dispatched) and
	// the output the chain recorded (not what the node reported) while the check lasts.
	readable := append(inputDigests(j.spec), cj.ResultDigest)
	if c := j.challengeState(); c != nil {
		readable = append(readable, c.Input.Digest)
	}
	for _, v := range candidates {
		revoke := r.grants.AllowRead(v, readable...)
		defer revoke()
	}
	// Asked again (too few answered before), the same members make no new event: a job
	// waiting for a verifier to come back would otherwise grow one every verifyRetry.
	asked := fmt.Sprintf("%d of %d committee validators check the result with %s", len(candidates), len(cj.Committee), j.spec.Verification)
	if j.lastEvent("verifying") != asked {
		j.record("verifying", "", "", "%s", asked)
	}
	type answer struct {
		validator string
		verdict   protocol.Verdict
		err       error
	}
	answers := make(chan answer, len(candidates))
	req := protocol.Encode(protocol.VerifyRequest{JobID: j.id, Router: string(r.id), Spec: j.spec, Inputs: j.inlineFor(j.spec)}) // the same for each
	for _, v := range candidates {
		go func() {
			vctx, cancel := context.WithTimeout(ctx, r.opts.VerifyTimeout)
			defer cancel()
			a := answer{validator: v}
			msg, err := r.conn.RequestWithContext(vctx, protocol.VerifySubject(v), req)
			if err == nil {
				a.verdict, err = protocol.Decode[protocol.Verdict](msg.Data)
			}
			if err == nil && a.verdict.Error != "" {
				err = errors.New(a.verdict.Error)
			}
			a.err = err
			answers <- a
		}()
	}
	attested := 0
	var lastErr error
	recordAnswer := func(a answer) {
		attested++
		text := "pass"
		if !a.verdict.Pass {
			text = "fail: " + a.verdict.Reason
		}
		j.set(func(j *job) {
			if j.verdict == "" || !a.verdict.Pass {
				j.verdict = text // a failing verdict is the one to show
			}
		})
		j.record("attested", "attest", a.verdict.AttestTx, "validator %s attested: %s", keys.Address(a.validator).Short(), text)
	}
	// Two thirds passing decide the job: stop waiting then for a member whose answer is
	// slow or lost (it may have reconnected to another router of the cluster). Until
	// some member has answered, the chain is asked only after undecidedPoll: most answers
	// come within a block or two, and asking every decidedPoll for every job a busy
	// router waits on was 1.4% of a devnet's CPU. Nor is it asked again before a block has
	// committed since it last was: nothing else can change its answer.
	decided := time.NewTicker(decidedPoll)
	defer decided.Stop()
	var waited time.Duration // by the ticker's count, which a test's frozen Options.Now does not stop
	bctx, stopBlocks := context.WithCancel(ctx)
	defer stopBlocks()
	var blocks <-chan int64 // once the chain was asked
	fresh := true           // a block has committed since the chain was last asked
	for pending := len(candidates); pending > 0; {
		var a answer
		select {
		case a = <-answers:
			pending--
		case <-blocks:
			fresh = true
			continue
		case <-decided.C:
			if waited += decidedPoll; !fresh || (pending == len(candidates) && waited < undecidedPoll) {
				continue
			}
			var now ledger.Job
			err := r.opts.Chain.Query(ctx, "job/"+j.id, &now)
			if err == nil && now.Status != ledger.JobComputed {
				// The validators' answers may still be on their way: those that come within
				// one more poll are recorded with their attestation txs (the chain's record
				// has none). The others' attestations are on chain, and the verdict is read
				// from there.
				for late := time.After(decidedPoll); pending > 0; pending-- {
					select {
					case a := <-answers:
						if a.err == nil {
							recordAnswer(a)
						}
						continue
					case <-late:
					}
					break
				}
				if v := chainVerdict(now.Attestations); v != "" {
					j.set(func(j *job) { j.verdict = v })
				}
				j.record("decided", "", "", "the chain decided the job (%s) with %d of %d answers in", now.Status, len(candidates)-pending, len(candidates))
				return now, nil
			}
			if blocks == nil {
				blocks = blockwait.Next(bctx, r.opts.Chain)
			}
			// A chain that cannot tell its blocks is asked at every tick, and one that did not
			// answer at the next.
			fresh = blocks == nil || err != nil
			continue
		}
		if a.err != nil {
			lastErr = a.err
			continue
		}
		recordAnswer(a)
	}
	if attested == 0 {
		return ledger.Job{}, fmt.Errorf("no validator attested: %w", lastErr)
	}
	var now ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &now); err != nil {
		return ledger.Job{}, nil
	}
	if now.Status == ledger.JobComputed {
		return ledger.Job{}, fmt.Errorf("%d of the job's %d committee validators attested, too few for the chain to decide", attested, len(now.Committee))
	}
	return now, nil
}

// chainVerdict is the verdict the chain's attestations give, as verify words it: "pass",
// or the first failing one's "fail: reason" (a failing verdict is the one to show); ""
// when there are none.
func chainVerdict(atts []ledger.Attestation) string {
	verdict := ""
	for _, a := range atts {
		if !a.Pass {
			return "fail: " + a.Reason
		}
		verdict = "pass"
	}
	return verdict
}

// computedRecord reads the job until the chain node the router reads shows its result
// committed (or decided), for up to VerifyTimeout: again at each new block, the only
// change that can show it.
func (r *Router) computedRecord(ctx context.Context, id string) (ledger.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.VerifyTimeout)
	defer cancel()
	var blocks <-chan int64 // once a read found no result
	for first := true; ; first = false {
		var cj ledger.Job
		err := r.opts.Chain.Query(ctx, "job/"+id, &cj)
		if err == nil && cj.Status != ledger.JobCreated && cj.Status != ledger.JobAssigned {
			return cj, nil
		}
		if first {
			blocks = blockwait.Next(ctx, r.opts.Chain)
		}
		var poll <-chan time.Time
		if blocks == nil {
			poll = time.After(computedPoll)
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return cj, fmt.Errorf("read job: %w", err)
			}
			return cj, fmt.Errorf("the chain never showed the job's result committed (it is %s)", cj.Status)
		case <-blocks:
		case <-poll:
		}
	}
}

// computedPoll is how often computedRecord reads a chain that cannot tell its blocks
// (blockwait.Watch).
const computedPoll = 100 * time.Millisecond

func inputDigests(spec api.JobSpec) []string {
	out := make([]string, len(spec.Inputs))
	for i, in := range spec.Inputs {
		out[i] = in.Digest
	}
	return out
}
