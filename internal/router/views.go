package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

// apiStatus maps a chain job status to the API's.
var apiStatus = map[string]string{
	ledger.JobCreated: api.StatusQueued, ledger.JobAssigned: api.StatusAssigned,
	ledger.JobComputed: api.StatusComputed, ledger.JobSettled: api.StatusSettled,
	ledger.JobFailed: api.StatusFailed, ledger.JobCancelled: api.StatusCancelled,
	ledger.JobExpired: api.StatusExpired,
}

// Job returns a job's current state: the chain's record joined with the router's progress.
func (r *Router) Job(ctx context.Context, id string) (api.Job, error) {
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+id, &cj); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return api.Job{}, fmt.Errorf("%w: job %s", api.ErrNotFound, id)
		}
		return api.Job{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	v := api.Job{ID: cj.ID, Consumer: string(cj.Consumer), Node: string(cj.Node), ResultDigest: cj.ResultDigest}
	v.Status = apiStatus[cj.Status]
	v.Verified = cj.Status == ledger.JobSettled
	if s := cj.Settlement; s != nil {
		v.Payment = &api.Payment{
			Budget: cj.Budget, Cost: s.Cost, PaidToNode: s.Paid, Burned: s.Burned,
			ProtocolFee: s.Fee, Refunded: s.Refunded, BilledMillis: s.BilledMillis, NetworkReward: s.Reward,
		}
	}
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	if j != nil {
		j.mu.Lock()
		if j.running && v.Status == api.StatusAssigned {
			v.Status = api.StatusRunning
		}
		if v.Status == api.StatusQueued && slices.Contains(j.stored, false) {
			v.Status = api.StatusAwaitingInputs
		}
		v.Scores, v.Attempts, v.Verdict, v.Error = j.scores, j.attempts, j.verdict, j.errMsg
		v.Txs = make(map[string]string, len(j.txs))
		for k, h := range j.txs {
			v.Txs[k] = h
		}
		v.Events = append([]api.Event(nil), j.events...)
		j.mu.Unlock()
	}
	return v, nil
}

// JobOutput returns a job's committed output to its consumer, whose signed request, good
// for at most api.MaxOutputAuthTTL, proves it asked. Nobody else may read it through
// REST. The output says whether the chain has settled the job as verified; until then it
// is only the node's word.
func (r *Router) JobOutput(ctx context.Context, jobID string, auth api.OutputAuth) (api.JobOutput, error) {
	pub, err := keys.Address(auth.Address).PublicKey()
	if err != nil {
		return api.JobOutput{}, fmt.Errorf("%w: %v", api.ErrUnauthorized, err)
	}
	if err := api.VerifyOutputAuth(pub, jobID, auth, r.opts.Now(), api.MaxOutputAuthTTL); err != nil {
		return api.JobOutput{}, err
	}
	var cj ledger.Job
	if err := r.opts.Chain.Query(ctx, "job/"+jobID, &cj); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return api.JobOutput{}, fmt.Errorf("%w: job %s", api.ErrNotFound, jobID)
		}
		return api.JobOutput{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	if keys.Address(auth.Address) != cj.Consumer {
		return api.JobOutput{}, fmt.Errorf("%w: only the consumer of job %s may read its output", api.ErrForbidden, jobID)
	}
	if cj.ResultDigest == "" {
		return api.JobOutput{}, fmt.Errorf("%w: job %s has no output yet (it is %s)", api.ErrNotFound, jobID, apiStatus[cj.Status])
	}
	data, err := transport.GetBlob(ctx, r.js, protocol.BlobBucket, cj.ResultDigest)
	switch {
	case errors.Is(err, transport.ErrNotFound):
		return api.JobOutput{}, fmt.Errorf("%w: the output %s of job %s is not in this router's store", api.ErrNotFound, cj.ResultDigest, jobID)
	case err != nil:
		return api.JobOutput{}, fmt.Errorf("%w: read output: %v", api.ErrUnavailable, err)
	}
	return api.JobOutput{
		JobID: jobID, Digest: cj.ResultDigest, Size: int64(len(data)), Data: data,
		Verified: cj.Status == ledger.JobSettled, Status: apiStatus[cj.Status],
	}, nil
}

// Nodes lists registered nodes with their live state.
func (r *Router) Nodes(ctx context.Context) ([]api.Node, error) {
	var chainNodes []ledger.Node
	if err := r.opts.Chain.Query(ctx, "nodes", &chainNodes); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	live := r.online(protocol.RoleNode)
	out := make([]api.Node, 0, len(chainNodes))
	for _, n := range chainNodes {
		hb, online := live[string(n.Address)]
		an := api.Node{
			ID: string(n.Address), GPUModel: n.Hardware.GPUModel, GPUs: n.Hardware.GPUs, VRAMMiB: n.Hardware.VRAMMiB,
			TFLOPS: float64(n.Hardware.TFLOPSMilli) / 1000, Region: n.Hardware.Region, PricePerHour: n.PricePerHour,
			Stake: n.Stake, Online: online, FreeGPUs: hb.FreeGPUs, JobsVerified: n.JobsVerified, JobsFailed: n.JobsFailed,
		}
		if online {
			an.LastHeartbeat = hb.Sent
		}
		out = append(out, an)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// Account returns an account's balance.
func (r *Router) Account(ctx context.Context, address string) (api.Account, error) {
	var acc ledger.Account
	if err := r.opts.Chain.Query(ctx, "account/"+address, &acc); err != nil {
		if errors.Is(err, ledger.ErrInvalidMsg) {
			return api.Account{}, &api.FieldError{Field: "address", Msg: err.Error()}
		}
		return api.Account{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return api.Account{Address: string(acc.Address), Balance: acc.Balance, Seq: acc.Seq}, nil
}

// Supply returns the chain's supply breakdown.
func (r *Router) Supply(ctx context.Context) (api.Supply, error) {
	var sp ledger.SupplyView
	if err := r.opts.Chain.Query(ctx, "supply", &sp); err != nil {
		return api.Supply{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return api.Supply(sp), nil
}
