package router

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// ChainReader is what the chain views need from the settlement layer: the ledger's
// queries, and relaying transactions that others signed. A router's Chain has both, and
// so has a plain RPC client of any chain node.
type ChainReader interface {
	BroadcastTx(ctx context.Context, tx []byte) (txHash string, height int64, err error)
	Query(ctx context.Context, path string, v any) error
}

// ChainViews serves the REST API's views of chain state from the ledger's queries alone,
// so that any chain node can answer them, with or without a router: the router adds its
// live state (heartbeats, a job's progress) on top, and ChainService serves them alone.
//
// Where an api type mirrors a ledger type field for field (api/chain_test.go keeps them
// in step) the ledger's JSON decodes straight into it.
type ChainViews struct {
	Chain ChainReader
	jobs  *jobReads // a router's: job records read once a block; nil reads each time
}

// apiStatus maps a chain job status to the API's.
var apiStatus = map[string]string{
	ledger.JobCreated: api.StatusQueued, ledger.JobAssigned: api.StatusAssigned,
	ledger.JobComputed: api.StatusComputed, ledger.JobSettled: api.StatusSettled,
	ledger.JobFailed: api.StatusFailed, ledger.JobCancelled: api.StatusCancelled,
	ledger.JobExpired: api.StatusExpired,
}

// Job returns a job as the chain records it: status, node, result digest and payment.
func (v ChainViews) Job(ctx context.Context, id string) (api.Job, error) {
	cj, err := v.chainJob(ctx, id)
	if err != nil {
		return api.Job{}, err
	}
	j := api.Job{ID: cj.ID, Consumer: string(cj.Consumer), Node: string(cj.Node), ResultDigest: cj.ResultDigest, Verification: cj.Verification}
	j.Status = apiStatus[cj.Status]
	for _, rp := range cj.Replicas {
		v := api.Replica{Node: string(rp.Node), ResultDigest: rp.ResultDigest}
		if s := cj.Settlement; s != nil {
			for _, sh := range s.Shares {
				if sh.Node == rp.Node {
					v.Paid, v.Reward = sh.Paid, sh.Reward
				}
			}
		}
		j.Replicas = append(j.Replicas, v)
	}
	j.Verified, j.Audited = verified(cj), cj.Audited
	if s := cj.Settlement; s != nil {
		j.Payment = &api.Payment{
			Budget: cj.Budget, Cost: s.Cost, PaidToNode: s.Paid, Burned: s.Burned,
			ProtocolFee: s.Fee, Refunded: s.Refunded, BilledMillis: s.BilledMillis, NetworkReward: s.Reward,
		}
	}
	return j, nil
}

// verified reports whether the chain settled the job on a check: every settled job but an
// audit job the draw passed over, which settled on its node's word.
func verified(cj ledger.Job) bool {
	return cj.Status == ledger.JobSettled && (cj.Verification != ledger.VerifyAudit || cj.Audited)
}

// chainJob reads a job's ledger record; the caller must not change it (it may be shared,
// see jobReads).
func (v ChainViews) chainJob(ctx context.Context, id string) (ledger.Job, error) {
	if v.jobs != nil {
		return v.jobs.job(ctx, id)
	}
	var cj ledger.Job
	if err := v.Chain.Query(ctx, "job/"+id, &cj); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return ledger.Job{}, fmt.Errorf("%w: job %s", api.ErrNotFound, id)
		}
		return ledger.Job{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return cj, nil
}

// Nodes lists registered nodes as the chain records them, in id order, all offline: only
// a router hears heartbeats.
func (v ChainViews) Nodes(ctx context.Context) ([]api.Node, error) {
	var chainNodes []ledger.Node
	if err := v.Chain.Query(ctx, "nodes", &chainNodes); err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	out := make([]api.Node, 0, len(chainNodes))
	for _, n := range chainNodes {
		out = append(out, api.Node{
			ID: string(n.Address), GPUModel: n.Hardware.GPUModel, GPUs: n.Hardware.GPUs, VRAMMiB: n.Hardware.VRAMMiB,
			TFLOPS: float64(n.Hardware.TFLOPSMilli) / 1000, Region: n.Hardware.Region, PricePerHour: n.PricePerHour,
			LatE6: n.Hardware.LatE6, LonE6: n.Hardware.LonE6,
			Stake: n.Stake, Status: n.Status, JobsVerified: n.JobsVerified, JobsFailed: n.JobsFailed,
		})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// Account returns an account's balance and sequence.
func (v ChainViews) Account(ctx context.Context, address string) (api.Account, error) {
	var acc ledger.Account
	if err := v.Chain.Query(ctx, "account/"+address, &acc); err != nil {
		if errors.Is(err, ledger.ErrInvalidMsg) {
			return api.Account{}, &api.FieldError{Field: "address", Msg: err.Error()}
		}
		return api.Account{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return api.Account{Address: string(acc.Address), Balance: acc.Balance, Seq: acc.Seq}, nil
}

// Supply returns the chain's supply breakdown.
func (v ChainViews) Supply(ctx context.Context) (api.Supply, error) {
	var sp ledger.SupplyView
	if err := v.Chain.Query(ctx, "supply", &sp); err != nil {
		return api.Supply{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return api.Supply(sp), nil
}

// ChainAccount returns an account with its spendable, vesting-locked and bonded amounts.
func (v ChainViews) ChainAccount(ctx context.Context, address string) (api.ChainAccount, error) {
	var acc api.ChainAccount
	return acc, v.query(ctx, "account/"+address, &acc)
}

// Params returns the chain's governable parameters.
func (v ChainViews) Params(ctx context.Context) (api.Params, error) {
	var p api.Params
	return p, v.query(ctx, "params", &p)
}

// Validators lists the validator set in address order, with voting power.
func (v ChainViews) Validators(ctx context.Context) ([]api.Validator, error) {
	var vals []ledger.Validator
	if err := v.query(ctx, "validators", &vals); err != nil {
		return nil, err
	}
	out := make([]api.Validator, len(vals))
	for i, val := range vals {
		out[i] = api.Validator{Address: string(val.Address), PubKey: val.PubKey, Stake: val.Stake, Power: val.Power(), Jailed: val.Jailed}
	}
	return out, nil
}

// Proposals lists governance proposals by id.
func (v ChainViews) Proposals(ctx context.Context) ([]api.Proposal, error) {
	var props []api.Proposal
	return props, v.query(ctx, "proposals", &props)
}

// Proposal returns one governance proposal.
func (v ChainViews) Proposal(ctx context.Context, id uint64) (api.Proposal, error) {
	var prop api.Proposal
	return prop, v.query(ctx, "proposal/"+strconv.FormatUint(id, 10), &prop)
}

// Unbonding lists an account's stake on its way back to its balance.
func (v ChainViews) Unbonding(ctx context.Context, address string) ([]api.Unbonding, error) {
	if err := keys.Address(address).Validate(); err != nil {
		return nil, &api.FieldError{Field: "address", Msg: err.Error()}
	}
	var list []api.Unbonding
	return list, v.query(ctx, "unbonding/"+address, &list)
}

// BroadcastTx relays a transaction someone else signed and waits for it to commit. The
// ledger's rejections are returned as they are (the REST layer maps their codes); any other
// failure means the chain could not be reached.
func (v ChainViews) BroadcastTx(ctx context.Context, tx []byte) (api.BroadcastTxResponse, error) {
	return broadcastResult(v.Chain.BroadcastTx(ctx, tx))
}

// broadcastResult maps a relayed tx's outcome to the API's: the ledger's rejections as
// they are, a tx the mempool already holds as a conflict, anything else as unavailable.
func broadcastResult(hash string, height int64, err error) (api.BroadcastTxResponse, error) {
	switch {
	case err == nil:
		return api.BroadcastTxResponse{Hash: hash, Height: height}, nil
	case ledger.CodeFor(err) != ledger.CodeInternal:
		return api.BroadcastTxResponse{}, err
	case strings.Contains(err.Error(), "tx already exists in cache"): // CometBFT's mempool, flattened to text over RPC
		return api.BroadcastTxResponse{}, fmt.Errorf("%w: transaction already submitted: %v", api.ErrConflict, err)
	}
	return api.BroadcastTxResponse{}, fmt.Errorf("%w: broadcast: %v", api.ErrUnavailable, err)
}

// query reads a ledger query into out, mapping the ledger's errors to the API's.
func (v ChainViews) query(ctx context.Context, path string, out any) error {
	err := v.Chain.Query(ctx, path, out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, ledger.ErrInvalidMsg): // a malformed address
		return &api.FieldError{Field: "address", Msg: err.Error()}
	}
	return fmt.Errorf("%w: %v", api.ErrUnavailable, err)
}

// The router serves the same chain views, from its own chain connection.

func (r *Router) views() ChainViews { return ChainViews{Chain: r.opts.Chain, jobs: r.jobReads} }

// ChainAccount returns an account with its spendable, vesting-locked and bonded amounts.
func (r *Router) ChainAccount(ctx context.Context, address string) (api.ChainAccount, error) {
	return r.views().ChainAccount(ctx, address)
}

// Params returns the chain's governable parameters.
func (r *Router) Params(ctx context.Context) (api.Params, error) { return r.views().Params(ctx) }

// Validators lists the validator set in address order, with voting power.
func (r *Router) Validators(ctx context.Context) ([]api.Validator, error) {
	return r.views().Validators(ctx)
}

// Proposals lists governance proposals by id.
func (r *Router) Proposals(ctx context.Context) ([]api.Proposal, error) {
	return r.views().Proposals(ctx)
}

// Proposal returns one governance proposal.
func (r *Router) Proposal(ctx context.Context, id uint64) (api.Proposal, error) {
	return r.views().Proposal(ctx, id)
}

// Unbonding lists an account's stake on its way back to its balance.
func (r *Router) Unbonding(ctx context.Context, address string) ([]api.Unbonding, error) {
	return r.views().Unbonding(ctx, address)
}

// BroadcastTx relays a transaction someone else signed and waits for it to commit.
func (r *Router) BroadcastTx(ctx context.Context, tx []byte) (api.BroadcastTxResponse, error) {
	return r.views().BroadcastTx(ctx, tx)
}

// Account returns an account's balance and sequence.
func (r *Router) Account(ctx context.Context, address string) (api.Account, error) {
	return r.views().Account(ctx, address)
}

// Supply returns the chain's supply breakdown.
func (r *Router) Supply(ctx context.Context) (api.Supply, error) { return r.views().Supply(ctx) }
