package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// NodeHistoryEntry is one outcome in a node's record (kind settled, failed or slashed):
// a settled job with what the node was paid from its escrow and rewarded from the
// network-rewards pool, a redundant replica that lost the vote, or a slash.
type NodeHistoryEntry struct {
	Height int64  `json:"height"`
	Time   int64  `json:"time_unix"`
	Kind   string `json:"kind"`
	JobID  string `json:"job_id,omitempty"`
	Paid   uint64 `json:"paid,omitempty"`
	Reward uint64 `json:"reward,omitempty"`
	Amount uint64 `json:"amount,omitempty"` // slashed stake
	Reason string `json:"reason,omitempty"`
}

// NodeRecord sums a node's whole history: jobs settled and failed (slashes included),
// what it earned (paid plus rewards) and what was slashed.
type NodeRecord struct {
	Settled  uint64 `json:"settled"`
	Failed   uint64 `json:"failed"`
	Slashes  uint64 `json:"slashes"`
	Earned   uint64 `json:"earned"`
	Slashed  uint64 `json:"slashed"`
	LastUnix int64  `json:"last_unix,omitempty"`
}

// NodeHistory is GET /v1/nodes/{id}/history: the node's totals and a page of its entries,
// newest first. NextBefore, when set, is the before= that reads the next page.
type NodeHistory struct {
	Node       string             `json:"node"`
	Record     NodeRecord         `json:"record"`
	Entries    []NodeHistoryEntry `json:"entries"`
	NextBefore int64              `json:"next_before,omitempty"`
}

// RewardWindow is GET /v1/chain/validator-rewards: what the validator reward pool paid
// from FromHeight (at FromUnix) to ToHeight (at ToUnix), about the last thousand blocks,
// against the stake active validators have bonded now. The realised yield is
// Paid/Bonded annualised over ToUnix-FromUnix seconds.
type RewardWindow struct {
	FromHeight int64  `json:"from_height"`
	FromUnix   int64  `json:"from_unix"`
	ToHeight   int64  `json:"to_height"`
	ToUnix     int64  `json:"to_unix"`
	Paid       uint64 `json:"paid"`
	Bonded     uint64 `json:"bonded"`
}

// NodeHistory is GET /v1/nodes/{id}/history; before 0 reads the newest entries and limit
// 0 the server's default page.
func (c *Client) NodeHistory(ctx context.Context, node string, before int64, limit int) (NodeHistory, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", fmt.Sprint(before))
	}
	if limit > 0 {
		q.Set("limit", fmt.Sprint(limit))
	}
	path := "/v1/nodes/" + url.PathEscape(node) + "/history"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var h NodeHistory
	return h, c.call(ctx, http.MethodGet, path, nil, &h)
}

// ValidatorRewards is GET /v1/chain/validator-rewards.
func (c *Client) ValidatorRewards(ctx context.Context) (RewardWindow, error) {
	var w RewardWindow
	return w, c.call(ctx, http.MethodGet, "/v1/chain/validator-rewards", nil, &w)
}
