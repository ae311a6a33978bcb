package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// The chain views below serve the ledger's query results. Where an api type mirrors a
// ledger type field for field (api/chain_test.go keeps them in step) the ledger's JSON
// decodes straight into it.

// ChainAccount returns an account with its spendable, vesting-locked and bonded amounts.
func (r *Router) ChainAccount(ctx context.Context, address string) (api.ChainAccount, error) {
	var acc api.ChainAccount
	return acc, r.chainQuery(ctx, "account/"+address, &acc)
}

// Params returns the chain's governable parameters.
func (r *Router) Params(ctx context.Context) (api.Params, error) {
	var p api.Params
	return p, r.chainQuery(ctx, "params", &p)
}

// Validators lists the validator set in address order, with voting power.
func (r *Router) Validators(ctx context.Context) ([]api.Validator, error) {
	var vals []ledger.Validator
	if err := r.chainQuery(ctx, "validators", &vals); err != nil {
		return nil, err
	}
	out := make([]api.Validator, len(vals))
	for i, v := range vals {
		out[i] = api.Validator{Address: string(v.Address), PubKey: v.PubKey, Stake: v.Stake, Power: v.Power(), Jailed: v.Jailed}
	}
	return out, nil
}

// Proposals lists governance proposals by id.
func (r *Router) Proposals(ctx context.Context) ([]api.Proposal, error) {
	var props []api.Proposal
	return props, r.chainQuery(ctx, "proposals", &props)
}

// Proposal returns one governance proposal.
func (r *Router) Proposal(ctx context.Context, id uint64) (api.Proposal, error) {
	var prop api.Proposal
	return prop, r.chainQuery(ctx, "proposal/"+strconv.FormatUint(id, 10), &prop)
}

// Unbonding lists an account's stake on its way back to its balance.
func (r *Router) Unbonding(ctx context.Context, address string) ([]api.Unbonding, error) {
	if err := keys.Address(address).Validate(); err != nil {
		return nil, &api.FieldError{Field: "address", Msg: err.Error()}
	}
	var list []api.Unbonding
	return list, r.chainQuery(ctx, "unbonding/"+address, &list)
}

// BroadcastTx relays a transaction someone else signed and waits for it to commit. The
// ledger's rejections are returned as they are (the REST layer maps their codes); any other
// failure means the chain could not be reached.
func (r *Router) BroadcastTx(ctx context.Context, tx []byte) (api.BroadcastTxResponse, error) {
	hash, height, err := r.opts.Chain.BroadcastTx(ctx, tx)
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

// chainQuery reads a ledger query into v, mapping the ledger's errors to the API's.
func (r *Router) chainQuery(ctx context.Context, path string, v any) error {
	err := r.opts.Chain.Query(ctx, path, v)
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
