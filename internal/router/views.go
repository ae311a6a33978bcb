package router

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

// Job returns a job's current state: the chain's record joined with the progress its
// router recorded (this router's, or a peer's from the shared job store).
func (r *Router) Job(ctx context.Context, id string) (api.Job, error) {
	v, _, err := r.jobView(ctx, id, false)
	return v, err
}

// JobJSON returns what Job returns, without its events, and the whole job encoded as
// json.Marshal encodes it (httpapi.JobEncoder). The events, most of the bytes, are the
// ones the router keeps encoded for the job's record: a job's event stream encodes its
// job at every change, for every follower, and the events are encoded once.
func (r *Router) JobJSON(ctx context.Context, id string) (api.Job, []byte, error) {
	v, events, err := r.jobView(ctx, id, true)
	if err != nil {
		return api.Job{}, nil, err
	}
	// Room for the whole job, escapes aside, so that it is allocated once: its fixed
	// fields take under 512 bytes, a tx hash with its stage under 96, a replica under 256.
	size := 512 + len(events) + len(v.Error) + 96*len(v.Txs) + 256*len(v.Replicas)
	return v, appendJobJSON(make([]byte, 0, size), &v, events), nil
}

// appendJobJSON appends v, with events (api.Events encoded and comma-separated) in place
// of v.Events, byte for byte as json.Marshal encodes an api.Job; its tests hold it to
// that. A job's event stream encodes its job at every change, and json.Marshal's
// reflection over it (less its events) was over a third of what JobJSON cost where the
// chain's record is read once a block (BenchmarkJobJSONOnceABlock).
func appendJobJSON(b []byte, v *api.Job, events []byte) []byte {
	b = appendJSONString(append(b, `{"id":`...), v.ID)
	b = appendJSONString(append(b, `,"consumer":`...), v.Consumer)
	b = appendJSONString(append(b, `,"status":`...), v.Status)
	if v.Node != "" {
		b = appendJSONString(append(b, `,"node":`...), v.Node)
	}
	if v.Scores != nil {
		b = appendScores(b, v.Scores)
	}
	if v.ResultDigest != "" {
		b = appendJSONString(append(b, `,"result_digest":`...), v.ResultDigest)
	}
	b = strconv.AppendBool(append(b, `,"verified":`...), v.Verified)
	if v.Verdict != "" {
		b = appendJSONString(append(b, `,"verdict":`...), v.Verdict)
	}
	if p := v.Payment; p != nil {
		b = strconv.AppendUint(append(b, `,"payment":{"budget":`...), p.Budget, 10)
		b = strconv.AppendUint(append(b, `,"cost":`...), p.Cost, 10)
		b = strconv.AppendUint(append(b, `,"paid_to_node":`...), p.PaidToNode, 10)
		b = strconv.AppendUint(append(b, `,"burned":`...), p.Burned, 10)
		b = strconv.AppendUint(append(b, `,"protocol_fee":`...), p.ProtocolFee, 10)
		b = strconv.AppendUint(append(b, `,"refunded":`...), p.Refunded, 10)
		b = strconv.AppendUint(append(b, `,"billed_millis":`...), p.BilledMillis, 10)
		b = append(strconv.AppendUint(append(b, `,"network_reward":`...), p.NetworkReward, 10), '}')
	}
	if len(v.Txs) > 0 {
		b = appendTxs(b, v.Txs)
	}
	if v.Kind != "" {
		b = appendJSONString(append(b, `,"kind":`...), v.Kind)
	}
	if v.Verification != "" {
		b = appendJSONString(append(b, `,"verification":`...), v.Verification)
	}
	if v.Audited {
		b = append(b, `,"audited":true`...)
	}
	if len(v.Replicas) > 0 {
		b = append(b, `,"replicas":[`...)
		for i, rp := range v.Replicas {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(append(b, `{"node":`...), rp.Node)
			if rp.ResultDigest != "" {
				b = appendJSONString(append(b, `,"result_digest":`...), rp.ResultDigest)
			}
			if rp.Paid != 0 {
				b = strconv.AppendUint(append(b, `,"paid":`...), rp.Paid, 10)
			}
			if rp.Reward != 0 {
				b = strconv.AppendUint(append(b, `,"reward":`...), rp.Reward, 10)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = strconv.AppendInt(append(b, `,"attempts":`...), int64(v.Attempts), 10)
	if v.Error != "" {
		b = appendJSONString(append(b, `,"error":`...), v.Error)
	}
	if len(events) > 0 {
		b = append(append(append(b, `,"events":[`...), events...), ']')
	}
	return append(b, '}')
}

// jobView is Job, with the job's events either in the view (encoded false) or left out of
// it and returned encoded, comma-separated, as the job's record holds them.
func (r *Router) jobView(ctx context.Context, id string, encoded bool) (api.Job, []byte, error) {
	v, err := r.views().Job(ctx, id)
	if errors.Is(err, api.ErrNotFound) {
		// Not on chain: a job whose escrow a router is waiting for (an Async submission's,
		// answered before its block), or whose escrow its block refused; this router's,
		// or a peer's from the shared job store.
		r.mu.Lock()
		j := r.jobs[id]
		r.mu.Unlock()
		if j == nil {
			j = r.storedJob(ctx, id)
		}
		if j != nil {
			j.mu.Lock()
			escrowed, v := j.escrowed, j.unescrowedLocked()
			events := j.eventsLocked(&v, encoded)
			j.mu.Unlock()
			if !escrowed {
				return v, events, nil
			}
		}
	}
	if err != nil {
		return api.Job{}, nil, err
	}
	var events []byte
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	live := j != nil
	if j == nil {
		j = r.storedJob(ctx, id)
	}
	if j != nil {
		j.mu.Lock()
		if live && j.finished.IsZero() && j.ctx.Err() == nil && (v.Status == api.StatusSettled || v.Status == api.StatusFailed) && j.holdDecided(r.opts.Now()) {
			// The block that decided the job is committed, but this router has not yet
			// recorded how (the verdict and attestation it is handed, the outcome): it
			// does within milliseconds. Until then, for at most decidedHold, the job
			// reads as computed, so that a client that stops at the final status has the
			// whole story.
			v.Status, v.Verified, v.Payment = api.StatusComputed, false, nil
			for i := range v.Replicas {
				v.Replicas[i].Paid, v.Replicas[i].Reward = 0, 0
			}
		}
		if j.running && v.Status == api.StatusAssigned {
			v.Status = api.StatusRunning
		}
		if v.Status == api.StatusQueued && slices.Contains(j.stored, false) {
			v.Status = api.StatusAwaitingInputs
		}
		v.Scores, v.Attempts, v.Verdict, v.Error = j.scores, j.attempts, j.verdict, j.errMsg
		v.Kind = j.spec.Workload.Kind
		v.Txs = make(map[string]string, len(j.txs))
		for k, h := range j.txs {
			v.Txs[k] = h
		}
		events = j.eventsLocked(&v, encoded)
		j.mu.Unlock()
	}
	return v, events, nil
}

// unescrowedView is a job the chain does not hold as this router knows it: queued while
// its escrow waits for a block, failed (with the reason) when the escrow was refused.
func (j *job) unescrowedView() api.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := j.unescrowedLocked()
	j.eventsLocked(&v, false)
	return v
}

// unescrowedLocked is unescrowedView without the events; j.mu must be held.
func (j *job) unescrowedLocked() api.Job {
	v := api.Job{ID: j.id, Consumer: string(j.consumer), Kind: j.spec.Workload.Kind, Status: api.StatusQueued,
		Error: j.errMsg, Txs: maps.Clone(j.txs)}
	if !j.finished.IsZero() {
		v.Status = api.StatusFailed
	}
	return v
}

// eventsLocked puts a copy of the job's events in v, or, when encoded, leaves v as it is
// and returns them encoded (eventsJSONLocked). j.mu must be held.
func (j *job) eventsLocked(v *api.Job, encoded bool) []byte {
	if encoded {
		return j.eventsJSONLocked()
	}
	v.Events = append([]api.Event(nil), j.events...)
	return nil
}

// decidedHold bounds how long a job the chain decided reads as computed while its router
// records the outcome: a router slow to finish (stopping replicas, a lost answer) never
// keeps the chain's decision from a client for longer.
const decidedHold = 2 * time.Second

// holdDecided reports whether the job, which the chain has decided and this router has
// not finished, should still read as computed at now; j.mu must be held.
func (j *job) holdDecided(now time.Time) bool {
	if j.decidedAt.IsZero() {
		j.decidedAt = now
	}
	return now.Sub(j.decidedAt) < decidedHold
}

// escrowRefused reports whether the job ended without its escrow ever committing (an
// Async submission's, refused in its block).
func (j *job) escrowRefused() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.finished.IsZero() && !j.escrowed
}

// escrowUnsure reports whether the router is looking on chain for the job's escrow, which
// it broadcast without hearing the outcome (confirmEscrow).
func (j *job) escrowUnsure() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.unsure
}

// wasAnswered reports whether the consumer holds the job's id from before its escrow
// committed (an Async submission).
func (j *job) wasAnswered() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.answered
}

// storedJob reads a job's record from the store, where a peer router keeps the jobs it
// runs; nil when there is none.
func (r *Router) storedJob(ctx context.Context, id string) *job {
	entry, err := r.kv.Get(ctx, id)
	if err != nil {
		return nil
	}
	j, err := jobFromRecord(entry.Value())
	if err != nil {
		return nil
	}
	return j
}

// JobOutput returns a job's committed output to its consumer, whose signed request, good
// for at most api.MaxOutputAuthTTL, proves it asked. Nobody else may read it through
// REST. The output says whether the chain has settled the job as verified; until then it
// is only the node's word.
func (r *Router) JobOutput(ctx context.Context, jobID string, auth api.OutputAuth) (api.JobOutput, error) {
	if err := r.checkSigned(auth, func(pub ed25519.PublicKey) error {
		return api.VerifyOutputAuth(pub, jobID, auth, r.opts.Now(), api.MaxOutputAuthTTL)
	}); err != nil {
		return api.JobOutput{}, err
	}
	cj, err := r.views().chainJob(ctx, jobID)
	if err != nil {
		return api.JobOutput{}, err
	}
	if keys.Address(auth.Address) != cj.Consumer {
		return api.JobOutput{}, fmt.Errorf("%w: only the consumer of job %s may read its output", api.ErrForbidden, jobID)
	}
	if cj.ResultDigest == "" {
		if !cj.Open() {
			return api.JobOutput{}, fmt.Errorf("%w: job %s ended %s without an output", api.ErrNotFound, jobID, apiStatus[cj.Status])
		}
		return api.JobOutput{}, fmt.Errorf("%w: job %s has no output yet (it is %s)", api.ErrNotFound, jobID, apiStatus[cj.Status])
	}
	if cj.Verification == ledger.VerifyChallenge && cj.ChallengeReveal == nil {
		return api.JobOutput{}, fmt.Errorf("%w: job %s's output holds challenge rows until they are revealed, moments after its result (it is %s)", api.ErrNotFound, jobID, apiStatus[cj.Status])
	}
	data, err := r.blobs.Get(ctx, cj.ResultDigest)
	switch {
	case errors.Is(err, transport.ErrNotFound):
		return api.JobOutput{}, fmt.Errorf("%w: the output %s of job %s is not in this router's store", api.ErrNotFound, cj.ResultDigest, jobID)
	case err != nil:
		return api.JobOutput{}, fmt.Errorf("%w: read output: %v", api.ErrUnavailable, err)
	}
	digest := cj.ResultDigest
	if cj.ChallengeReveal != nil {
		// The node computed the product with the challenge rows in it: the consumer gets
		// its own rows, named by their own digest.
		if data, err = stripChallenge(cj, data); err != nil {
			return api.JobOutput{}, fmt.Errorf("%w: job %s's output: %v", api.ErrUnavailable, jobID, err)
		}
		digest = transport.Digest(data)
	}
	return api.JobOutput{
		JobID: jobID, Digest: digest, Size: int64(len(data)), Data: data,
		Verified: verified(cj), Status: apiStatus[cj.Status],
	}, nil
}

// Nodes lists registered nodes with their live state.
func (r *Router) Nodes(ctx context.Context) ([]api.Node, error) {
	nodes, err := r.views().Nodes(ctx)
	if err != nil {
		return nil, err
	}
	live := r.online(protocol.RoleNode)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range nodes {
		if hb, online := live[n.ID]; online {
			// The router's clock, not the one the node stamped: a node's may be wrong.
			nodes[i].Online, nodes[i].FreeGPUs, nodes[i].LastHeartbeat = true, hb.FreeGPUs, r.when[n.ID].UTC()
			nodes[i].Running = slices.Clone(hb.Running)
			nodes[i].Containers, nodes[i].Unsandboxed = hb.Containers, hb.Unsandboxed
		}
	}
	return nodes, nil
}

// jobListScan bounds how many of the signer's newest jobs one listing reads from the
// chain while it filters by status.
const jobListScan = 2000

// Jobs lists the signer's jobs that the routers' shared store remembers (finished ones for
// FinishedRetention), newest first, joined with the chain's view. The signature proves the
// signer asked; nobody lists another account's jobs.
func (r *Router) Jobs(ctx context.Context, auth api.OutputAuth, q api.JobQuery) (api.JobList, error) {
	if err := r.checkSigned(auth, func(pub ed25519.PublicKey) error {
		return api.VerifyJobListAuth(pub, auth, r.opts.Now(), api.MaxOutputAuthTTL)
	}); err != nil {
		return api.JobList{}, err
	}
	if q.Limit <= 0 {
		q.Limit = api.DefaultJobListLimit
	}
	mine, err := r.storedJobsOf(ctx, keys.Address(auth.Address))
	if err != nil {
		return api.JobList{}, err
	}
	start := 0
	if q.After != "" {
		i := slices.IndexFunc(mine, func(j *job) bool { return j.id == q.After })
		if i < 0 {
			return api.JobList{}, &api.FieldError{Field: "after", Msg: fmt.Sprintf("%q is none of your jobs this router remembers", q.After)}
		}
		start = i + 1
	}
	list := api.JobList{Jobs: []api.Job{}}
	for i := start; i < len(mine) && i-start < jobListScan; i++ {
		if len(list.Jobs) == q.Limit {
			list.Next = list.Jobs[len(list.Jobs)-1].ID
			break
		}
		v, err := r.Job(ctx, mine[i].id)
		if err != nil {
			return api.JobList{}, err
		}
		if q.Status == "" || v.Status == q.Status {
			v.Events = nil
			list.Jobs = append(list.Jobs, v)
		}
	}
	return list, nil
}

// storedJobsOf reads every job record of consumer from the shared store, newest first.
// It lists the store's keys and reads the records whose consumer it does not yet know or
// knows to be consumer's: a router whose store holds many consumers' jobs decoded every
// record for every listing.
func (r *Router) storedJobsOf(ctx context.Context, consumer keys.Address) ([]*job, error) {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: list the job store: %v", api.ErrUnavailable, err)
	}
	var ids []string
	listed := map[string]bool{}
	for id := range lister.Keys() {
		ids, listed[id] = append(ids, id), true
	}
	// A record saved while the keys were listed can be missing from the list (the listing
	// ends at the pending count it saw when it began, and a rewrite moves the key past
	// it), so the records of the jobs this router runs are added from memory.
	r.mu.Lock()
	running := slices.Collect(maps.Values(r.jobs))
	r.mu.Unlock()
	for _, j := range running {
		j.saveMu.Lock()
		stored := j.storeRev != 0
		j.saveMu.Unlock()
		if stored && !listed[j.id] {
			ids = append(ids, j.id)
		}
	}
	r.listMu.Lock()
	known := r.consumerOf
	r.listMu.Unlock()
	seen := make(map[string]keys.Address, len(ids)) // what the store holds now: forgotten records drop out
	var mine []*job
	for _, id := range ids {
		if c, ok := known[id]; ok && c != consumer {
			seen[id] = c
			continue
		}
		entry, err := r.kv.Get(ctx, id)
		if err != nil {
			continue // removed since it was listed
		}
		j, err := jobFromRecord(entry.Value())
		if err != nil {
			continue
		}
		seen[id] = j.consumer
		if j.consumer == consumer {
			mine = append(mine, j)
		}
	}
	r.listMu.Lock()
	r.consumerOf = seen
	r.listMu.Unlock()
	slices.SortFunc(mine, func(a, b *job) int {
		if c := b.started.Compare(a.started); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	return mine, nil
}

// checkSigned checks a consumer's signed request with verify, given the public key its
// address stands for (an address is its key); errors wrap api.ErrUnauthorized.
func (r *Router) checkSigned(auth api.OutputAuth, verify func(ed25519.PublicKey) error) error {
	pub, err := keys.Address(auth.Address).PublicKey()
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrUnauthorized, err)
	}
	return verify(pub)
}
