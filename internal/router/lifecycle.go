package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// job is the router's working record of one job. Only its lifecycle goroutine writes the
// fields below mu's guard; readers copy them under mu.
type job struct {
	id       string
	consumer keys.Address
	spec     api.JobSpec
	results  chan protocol.Result
	started  time.Time

	mu        sync.Mutex
	escrowed  bool          // create_job committed: its bytes may now be stored
	stored    []bool        // per input: in the store
	uploading []bool        // per input: an upload is under way
	ready     chan struct{} // closed once every input is stored
	node      string
	scores    *api.Scores
	txs       map[string]string
	events    []api.Event
	attempts  int
	running   bool
	verdict   string
	errMsg    string
}

func newJob(id string, consumer keys.Address, spec api.JobSpec) *job {
	j := &job{id: id, consumer: consumer, spec: spec, results: make(chan protocol.Result, 4),
		started: time.Now(), txs: map[string]string{}, ready: make(chan struct{}),
		stored: make([]bool, len(spec.Inputs)), uploading: make([]bool, len(spec.Inputs))}
	if len(spec.Inputs) == 0 {
		close(j.ready)
	}
	return j
}

// startUpload claims input i for one upload: the job must be escrowed and the input
// neither stored nor being uploaded.
func (j *job) startUpload(i int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.escrowed:
		return fmt.Errorf("%w: job %s has no committed escrow yet", api.ErrConflict, j.id)
	case j.stored[i]:
		return fmt.Errorf("%w: input %s of job %s is already stored", api.ErrConflict, j.spec.Inputs[i].Name, j.id)
	case j.uploading[i]:
		return fmt.Errorf("%w: input %s of job %s is being uploaded", api.ErrConflict, j.spec.Inputs[i].Name, j.id)
	}
	j.uploading[i] = true
	return nil
}

func (j *job) endUpload(i int, stored bool) {
	j.mu.Lock()
	j.uploading[i] = false
	j.mu.Unlock()
	if stored {
		j.inputStored(i)
	}
}

// inputStored marks input i stored and releases the job once all are.
func (j *job) inputStored(i int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stored[i] {
		return
	}
	j.stored[i] = true
	if !slices.Contains(j.stored, false) {
		close(j.ready)
	}
}

// missingInputs names the inputs not yet stored.
func (j *job) missingInputs() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for i, ok := range j.stored {
		if !ok {
			out = append(out, j.spec.Inputs[i].Name)
		}
	}
	return out
}

// record appends a progress event, optionally remembering a tx hash under txKey.
func (j *job) record(stage, txKey, txHash, format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if txKey != "" && txHash != "" {
		j.txs[txKey] = txHash
	}
	j.events = append(j.events, api.Event{Time: time.Now().UTC(), Stage: stage, Message: fmt.Sprintf(format, args...)})
}

func (j *job) set(f func(j *job)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	f(j)
}

// run owns one job from placement to settlement.
func (r *Router) run(j *job) {
	defer r.wg.Done()
	ctx, cancel := context.WithTimeout(r.ctx, time.Duration(j.spec.TimeoutSeconds)*time.Second)
	defer cancel()
	select {
	case <-j.ready:
	case <-ctx.Done():
		err := fmt.Errorf("inputs %v never arrived", j.missingInputs())
		j.set(func(j *job) { j.errMsg = err.Error() + "; the escrow is refunded in full at the job's deadline" })
		j.record("failed", "", "", "%v", err)
		return
	}
	res, err := r.compute(ctx, j)
	if err != nil {
		r.log.Warn("job not computed", "job", j.id, "err", err)
		j.set(func(j *job) { j.errMsg = err.Error() + "; the escrow is refunded in full at the job's deadline" })
		j.record("failed", "", "", "%v", err)
		return
	}
	if err := r.verify(ctx, j, res); err != nil {
		r.log.Warn("job not verified", "job", j.id, "err", err)
		j.set(func(j *job) { j.errMsg = err.Error() })
		j.record("failed", "", "", "%v", err)
		return
	}
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err == nil && cj.Settlement != nil {
		s := cj.Settlement
		if cj.Status == ledger.JobSettled {
			j.record("settled", "", "", "paid %s OMNI to the node, burned %s, fee %s, refunded %s",
				ledger.FormatOMNI(s.Paid), ledger.FormatOMNI(s.Burned), ledger.FormatOMNI(s.Fee), ledger.FormatOMNI(s.Refunded))
		} else {
			j.record("refunded", "", "", "verification failed; %s OMNI refunded to the consumer", ledger.FormatOMNI(s.Refunded))
		}
	}
	r.log.Info("job finished", "job", j.id, "status", cj.Status, "took", since(j.started))
}

// compute places the job and retries on other nodes until one returns a committed result.
func (r *Router) compute(ctx context.Context, j *job) (protocol.Result, error) {
	var tried []string
	var lastErr error
	for attempt := 1; attempt <= r.opts.MaxAttempts; attempt++ {
		j.set(func(j *job) { j.attempts = attempt })
		p, err := r.place(ctx, j.spec, tried)
		if err != nil {
			if lastErr != nil {
				return protocol.Result{}, fmt.Errorf("%w (after: %v)", err, lastErr)
			}
			return protocol.Result{}, err
		}
		tried = append(tried, p.NodeID)
		res, err := r.attempt(ctx, j, p)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return protocol.Result{}, fmt.Errorf("job timed out: %w", err)
		}
		lastErr = err
		r.log.Warn("attempt failed; re-placing", "job", j.id, "node", keys.Address(p.NodeID).Short(), "attempt", attempt, "err", err)
		j.record("retry", "", "", "attempt %d on %s failed: %v", attempt, keys.Address(p.NodeID).Short(), err)
	}
	return protocol.Result{}, fmt.Errorf("gave up after %d attempts: %w", r.opts.MaxAttempts, lastErr)
}

// place scores the online, registered nodes and returns the best feasible one.
func (r *Router) place(ctx context.Context, spec api.JobSpec, exclude []string) (scheduler.Placement, error) {
	var chainNodes []ledger.Node
	if err := r.opts.Chain.Query(ctx, "nodes", &chainNodes); err != nil {
		return scheduler.Placement{}, fmt.Errorf("read nodes from chain: %w", err)
	}
	live := r.online(protocol.RoleNode)
	snapshot := make([]scheduler.Node, 0, len(chainNodes))
	for _, n := range chainNodes {
		hb, ok := live[string(n.Address)]
		if !ok || n.Status != ledger.NodeActive {
			continue
		}
		snapshot = append(snapshot, scheduler.Node{
			ID: string(n.Address), Operator: string(n.Address), FreeGPUs: hb.FreeGPUs,
			VRAMMiB: n.Hardware.VRAMMiB, TFLOPSMilli: n.Hardware.TFLOPSMilli, Region: n.Hardware.Region,
			Location:      scheduler.Location{LatE6: n.Hardware.LatE6, LonE6: n.Hardware.LonE6},
			ReliabilityBP: reliabilityBP(n), PricePerHourUomni: n.PricePerHour,
		})
	}
	if len(snapshot) == 0 {
		return scheduler.Placement{}, fmt.Errorf("%w: no registered node is online", scheduler.ErrNoFeasibleNode)
	}
	weights := r.opts.Weights
	if weights == (scheduler.Weights{}) {
		var p ledger.Params
		if err := r.opts.Chain.Query(ctx, "params", &p); err != nil {
			return scheduler.Placement{}, fmt.Errorf("read router weights from chain: %w", err)
		}
		weights = scheduler.Weights(p.RouterWeights)
	}
	plan, err := scheduler.Place(schedulerJob(spec, exclude), snapshot, weights)
	if err != nil {
		return scheduler.Placement{}, err
	}
	return plan.Placements[0], nil
}

// attempt assigns the job to one node on chain, dispatches it and waits for the result.
func (r *Router) attempt(ctx context.Context, j *job, p scheduler.Placement) (protocol.Result, error) {
	sc := api.Scores(p.Scores)
	j.set(func(j *job) { j.node, j.scores, j.running = p.NodeID, &sc, false })
	j.record("placed", "", "", "node %s scored %d.%02d%% (compute %d, latency %d, reliability %d, price %d bp)",
		keys.Address(p.NodeID).Short(), sc.Total/100, sc.Total%100, sc.Compute, sc.Latency, sc.Reliability, sc.Price)
	tx, err := r.opts.Chain.Send(ctx, ledger.Msg{AssignJob: &ledger.MsgAssignJob{JobID: j.id, Node: keys.Address(p.NodeID), ScoreBP: p.Scores.Total}})
	if err != nil {
		return protocol.Result{}, fmt.Errorf("record assignment: %w", err)
	}
	j.record("assigned", "assign", tx, "assignment recorded on chain")

	// The node may read the job's inputs and store its one output for as long as this
	// attempt lasts, and not a moment longer.
	revokeRead := r.grants.AllowRead(p.NodeID, inputDigests(j.spec)...)
	defer revokeRead()
	revokeWrite := r.grants.AllowWrite(p.NodeID, j.id, r.opts.MaxOutputBytes)
	defer revokeWrite()

	dctx, cancel := context.WithTimeout(ctx, r.opts.DispatchTimeout)
	msg, err := r.conn.RequestWithContext(dctx, protocol.DispatchSubject(p.NodeID),
		protocol.Encode(protocol.Dispatch{JobID: j.id, Spec: j.spec, TimeoutSeconds: j.spec.TimeoutSeconds}))
	cancel()
	if err != nil {
		return protocol.Result{}, fmt.Errorf("dispatch: %w", err)
	}
	ack, err := protocol.Decode[protocol.Ack](msg.Data)
	if err != nil {
		return protocol.Result{}, fmt.Errorf("dispatch: %w", err)
	}
	if !ack.Accepted {
		return protocol.Result{}, fmt.Errorf("node declined: %s", ack.Error)
	}
	j.set(func(j *job) { j.running = true })
	j.record("running", "", "", "node accepted the job")

	// Watch the node while it works: one that stops heartbeating is presumed gone and the
	// job is re-placed, unless its result already reached the chain.
	watch := time.NewTicker(r.opts.HeartbeatTTL / 2)
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			return protocol.Result{}, ctx.Err()
		case <-watch.C:
			if _, alive := r.online(protocol.RoleNode)[p.NodeID]; alive {
				continue
			}
			var cj ledger.Job
			if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err == nil && cj.Status == ledger.JobComputed && string(cj.Node) == p.NodeID {
				j.record("computed", "", "", "result %s found on chain after the node went silent", cj.ResultDigest)
				return protocol.Result{JobID: j.id, NodeID: p.NodeID, Digest: cj.ResultDigest, GPUMillis: cj.GPUMillis}, nil
			}
			return protocol.Result{}, fmt.Errorf("node stopped heartbeating for %s", r.opts.HeartbeatTTL)
		case res := <-j.results:
			if res.NodeID != p.NodeID {
				continue // a late report from an earlier attempt
			}
			if res.Error != "" {
				return protocol.Result{}, errors.New(res.Error)
			}
			j.record("computed", "result", res.CommitTx, "result %s committed on chain (%d GPU-ms)", res.Digest, res.GPUMillis)
			return res, nil
		}
	}
}

// verify asks online validators, in turn, to check the committed result and attest.
func (r *Router) verify(ctx context.Context, j *job, res protocol.Result) error {
	// The chain drew the verification committee from the block that recorded the result.
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+j.id, &cj); err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	live := r.online(protocol.RoleValidator)
	var candidates []string
	for _, v := range cj.Committee {
		if _, ok := live[string(v)]; ok {
			candidates = append(candidates, string(v))
		}
	}
	sort.Strings(candidates)
	if len(candidates) == 0 {
		return fmt.Errorf("none of the job's %d committee validators is online", len(cj.Committee))
	}
	// The committee may read the inputs and the output the chain recorded (not what the
	// node reported) while the check lasts.
	for _, v := range candidates {
		revoke := r.grants.AllowRead(v, append(inputDigests(j.spec), cj.ResultDigest)...)
		defer revoke()
	}
	j.record("verifying", "", "", "validator checks the product with %s", j.spec.Verification)
	var lastErr error
	for _, v := range candidates {
		vctx, cancel := context.WithTimeout(ctx, r.opts.VerifyTimeout)
		msg, err := r.conn.RequestWithContext(vctx, protocol.VerifySubject(v), protocol.Encode(protocol.VerifyRequest{JobID: j.id, Spec: j.spec}))
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		verdict, err := protocol.Decode[protocol.Verdict](msg.Data)
		if err != nil {
			lastErr = err
			continue
		}
		if verdict.Error != "" {
			lastErr = errors.New(verdict.Error)
			continue
		}
		text := "pass"
		if !verdict.Pass {
			text = "fail: " + verdict.Reason
		}
		j.set(func(j *job) { j.verdict = text })
		j.record("attested", "attest", verdict.AttestTx, "validator %s attested: %s", keys.Address(v).Short(), text)
		return nil
	}
	return fmt.Errorf("no validator attested: %w", lastErr)
}

func inputDigests(spec api.JobSpec) []string {
	out := make([]string, len(spec.Inputs))
	for i, in := range spec.Inputs {
		out[i] = in.Digest
	}
	return out
}
