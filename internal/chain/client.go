package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/cometbft/cometbft/mempool"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Client broadcasts transactions and queries ledger state through a CometBFT RPC client,
// in-process or over HTTP.
type Client struct {
	rpc rpcclient.Client
}

// NewHTTPClient connects to a CometBFT RPC endpoint such as "http://127.0.0.1:26657".
func NewHTTPClient(url string) (*Client, error) {
	c, err := rpchttp.New(url)
	if err != nil {
		return nil, fmt.Errorf("chain rpc %s: %w", url, err)
	}
	return &Client{rpc: c}, nil
}

// Committed is a transaction that made it into a block.
type Committed struct {
	Hash   string
	Height int64
}

// Broadcast submits a signed tx and waits until it is committed. A tx the ledger rejects
// returns an error wrapping the ledger sentinel for its code (errors.Is works).
func (c *Client) Broadcast(ctx context.Context, tx []byte) (Committed, error) {
	res, err := c.rpc.BroadcastTxCommit(ctx, tx)
	if err != nil {
		if code, log, ok := rejection(err); ok {
			return Committed{}, fmt.Errorf("rejected by mempool: %w", ledger.ErrorFor(code, log))
		}
		return Committed{}, fmt.Errorf("broadcast: %w", err)
	}
	if res.CheckTx.Code != 0 {
		return Committed{}, fmt.Errorf("rejected by mempool: %w", ledger.ErrorFor(ledger.Code(res.CheckTx.Code), res.CheckTx.Log))
	}
	if res.TxResult.Code != 0 {
		return Committed{}, fmt.Errorf("rejected in block %d: %w", res.Height, ledger.ErrorFor(ledger.Code(res.TxResult.Code), res.TxResult.Log))
	}
	return Committed{Hash: res.Hash.String(), Height: res.Height}, nil
}

var invalidTxText = regexp.MustCompile(`code=(\d+), data=[0-9A-Fa-f]*, log='(.*)', codespace=`)

// rejection recovers the ledger's code from a CheckTx rejection: CometBFT v1 returns it as
// an error, typed in-process and flattened to text over HTTP.
func rejection(err error) (ledger.Code, string, bool) {
	var inv mempool.ErrInvalidTx
	if errors.As(err, &inv) {
		return ledger.Code(inv.Code), inv.Log, true
	}
	m := invalidTxText.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, "", false
	}
	code, perr := strconv.ParseUint(m[1], 10, 32)
	if perr != nil {
		return 0, "", false
	}
	return ledger.Code(code), m[2], true
}

// Query reads ledger state at the last committed height into v.
func (c *Client) Query(ctx context.Context, path string, v any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return ledger.ErrorFor(ledger.Code(res.Response.Code), res.Response.Log)
	}
	if err := json.Unmarshal(res.Response.Value, v); err != nil {
		return fmt.Errorf("query %s: decode: %w", path, err)
	}
	return nil
}

// Account returns an account's balance and next sequence.
func (c *Client) Account(ctx context.Context, a keys.Address) (ledger.Account, error) {
	var acc ledger.Account
	return acc, c.Query(ctx, "account/"+string(a), &acc)
}

// Job returns a job's on-chain record.
func (c *Client) Job(ctx context.Context, id string) (ledger.Job, error) {
	var j ledger.Job
	return j, c.Query(ctx, "job/"+id, &j)
}

// ChainID returns the chain id of the connected network.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	var id string
	return id, c.Query(ctx, "chain_id", &id)
}

// Height returns the last height the ledger has committed. (The block store's height,
// which /status reports, runs a moment ahead of the ledger: a query or a CheckTx in that
// moment would see the state before the block.)
func (c *Client) Height(ctx context.Context) (int64, error) {
	info, err := c.rpc.ABCIInfo(ctx)
	if err != nil {
		return 0, fmt.Errorf("abci info: %w", err)
	}
	return info.Response.LastBlockHeight, nil
}

// WaitForHeight blocks until the ledger has committed height h or ctx ends.
func (c *Client) WaitForHeight(ctx context.Context, h int64) error {
	for {
		cur, err := c.Height(ctx)
		if err == nil && cur >= h {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for height %d: %w", h, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Status is where the chain stands, as its RPC node sees it.
type Status struct {
	ChainID    string        `json:"chain_id"`
	Height     int64         `json:"height"`
	Time       time.Time     `json:"time"`       // of the latest block
	BlockTime  time.Duration `json:"block_time"` // average interval over the last blocks
	CatchingUp bool          `json:"catching_up"`
	Node       string        `json:"node"` // the RPC node's moniker
}

// blockTimeWindow is how many recent blocks Status averages the block interval over.
const blockTimeWindow = 20

// Status reads the chain's height and latest block time, and the average interval of the
// last blockTimeWindow blocks.
func (c *Client) Status(ctx context.Context) (Status, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("chain status: %w", err)
	}
	s := Status{
		ChainID: st.NodeInfo.Network, Height: st.SyncInfo.LatestBlockHeight, Time: st.SyncInfo.LatestBlockTime,
		CatchingUp: st.SyncInfo.CatchingUp, Node: st.NodeInfo.Moniker,
	}
	if back := min(s.Height-1, blockTimeWindow); back > 0 {
		h := s.Height - back
		if b, err := c.rpc.Block(ctx, &h); err == nil {
			s.BlockTime = s.Time.Sub(b.Block.Time) / time.Duration(back)
		}
	}
	return s, nil
}
