package router

import (
	"context"
	"fmt"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// NodeHistory reads a page of a node's settled jobs, failures and slashes, newest first,
// below height before (0: the newest), at most limit of them (0: the ledger's default).
func (v ChainViews) NodeHistory(ctx context.Context, node string, before int64, limit int) (api.NodeHistory, error) {
	if err := keys.Address(node).Validate(); err != nil {
		return api.NodeHistory{}, &api.FieldError{Field: "id", Msg: err.Error()}
	}
	path := fmt.Sprintf("node_history/%s/%d", node, before)
	if limit > 0 {
		path += fmt.Sprintf("/%d", limit)
	}
	var h api.NodeHistory
	return h, v.query(ctx, path, &h)
}

// ValidatorRewards reads what the validator reward pool paid over the ledger's recent
// window, and the stake it was paid on.
func (v ChainViews) ValidatorRewards(ctx context.Context) (api.RewardWindow, error) {
	var w api.RewardWindow
	return w, v.query(ctx, "validator_rewards", &w)
}

// NodeHistory reads a page of a node's history from the router's chain connection.
func (r *Router) NodeHistory(ctx context.Context, node string, before int64, limit int) (api.NodeHistory, error) {
	return r.views().NodeHistory(ctx, node, before, limit)
}

// ValidatorRewards reads the validators' recent rewards from the router's chain connection.
func (r *Router) ValidatorRewards(ctx context.Context) (api.RewardWindow, error) {
	return r.views().ValidatorRewards(ctx)
}
