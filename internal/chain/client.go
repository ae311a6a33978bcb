package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	"github.com/cometbft/cometbft/mempool"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Client broadcasts transactions and queries ledger state through a CometBFT RPC client,
// in-process or over HTTP to one chain node or several (NewHTTPClient).
type Client struct {
	rpc     rpcAPI
	commits commitWatch // the txs Broadcast waits on
	heights heightWatch // the readers waiting for a block (NewBlocks)

	noRecords atomic.Bool // the chain node answers no record queries (Query): read JSON
}

// Committed is a transaction that made it into a block.
type Committed struct {
	Hash   string
	Height int64
	// Items are a batch's per-item outcomes, in item order: nil for an item that applied,
	// an error wrapping the ledger's sentinel for one that failed (ledger.BatchResults).
	// Nil for a tx that is not a batch.
	Items []error
}

// BroadcastSync submits a signed tx and returns its hash once the mempool has admitted it
// (CheckTx passed), without waiting for a block. A rejection wraps the ledger sentinel for
// its code.
func (c *Client) BroadcastSync(ctx context.Context, tx []byte) ([]byte, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, tx)
	if err != nil {
		return nil, broadcastError(err)
	}
	if res.Code != 0 {
		return nil, fmt.Errorf("rejected by mempool: %w", ledger.ErrorFor(ledger.Code(res.Code), res.Log))
	}
	return res.Hash, nil
}

// TxResult looks a tx up by hash in the chain's tx index: ok is false while no block has
// carried it (or while the index has not caught up with the latest block). A tx a block
// carried but the ledger rejected returns its block's height and an error wrapping the
// ledger sentinel. (Identical bytes sent twice share a hash: the index holds the latest.)
func (c *Client) TxResult(ctx context.Context, hash []byte) (_ Committed, ok bool, err error) {
	res, err := c.rpc.Tx(ctx, hash, false)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return Committed{}, false, nil
		}
		return Committed{}, false, fmt.Errorf("tx %X: %w", hash, err)
	}
	got, err := committed(res.Hash, res.Height, res.TxResult)
	got.Hash, got.Height = res.Hash.String(), res.Height
	return got, true, err
}

func committed(hash cmtbytes.HexBytes, height int64, r abci.ExecTxResult) (Committed, error) {
	if r.Code != 0 {
		return Committed{}, fmt.Errorf("rejected in block %d: %w", height, ledger.ErrorFor(ledger.Code(r.Code), r.Log))
	}
	items, err := ledger.BatchResults(batchEvents(r.Events))
	if err != nil {
		return Committed{}, fmt.Errorf("tx %s in block %d: %w", hash, height, err)
	}
	return Committed{Hash: hash.String(), Height: height, Items: items}, nil
}

// batchEvents are a tx's batch_item events as the ledger wrote them.
func batchEvents(events []abci.Event) []ledger.Event {
	var out []ledger.Event
	for _, e := range events {
		if e.Type != ledger.EventBatchItem {
			continue
		}
		le := ledger.Event{Type: e.Type}
		for _, a := range e.Attributes {
			le.Attrs = append(le.Attrs, ledger.Attr{Key: a.Key, Value: a.Value})
		}
		out = append(out, le)
	}
	return out
}

func broadcastError(err error) error {
	if !errors.Is(err, mempool.ErrTxInCache) && strings.Contains(err.Error(), mempool.ErrTxInCache.Error()) {
		return fmt.Errorf("broadcast: %w", mempool.ErrTxInCache) // flattened to text over HTTP
	}
	if code, log, ok := rejection(err); ok {
		return fmt.Errorf("rejected by mempool: %w", ledger.ErrorFor(code, log))
	}
	return fmt.Errorf("broadcast: %w", err)
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

// Query reads ledger state at the last committed height into v. A job read into a
// *ledger.Job (path job/<id>) or an account into a *ledger.Account (account/<addr>) is
// asked for as its stored record (job_record/<id>, account_record/<addr>), which costs a
// fraction of the JSON to make and to decode; a chain node that does not know those
// paths (an older one) is asked for JSON, from then on.
func (c *Client) Query(ctx context.Context, path string, v any) error {
	if !c.noRecords.Load() {
		switch v := v.(type) {
		case *ledger.Job:
			if id, ok := strings.CutPrefix(path, "job/"); ok {
				if b, ok, err := c.record(ctx, "job_record/"+id); ok {
					if err == nil {
						*v, err = ledger.DecodeJob(b)
					}
					return err
				}
			}
		case *ledger.Account:
			if a, ok := strings.CutPrefix(path, "account/"); ok {
				if b, ok, err := c.record(ctx, "account_record/"+a); ok {
					if err == nil {
						*v, err = ledger.DecodeAccount(keys.Address(a), b)
					}
					return err
				}
			}
		}
	}
	value, err := c.query(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(value, v); err != nil {
		return fmt.Errorf("query %s: decode: %w", path, err)
	}
	return nil
}

func (c *Client) query(ctx context.Context, path string) ([]byte, error) {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return nil, ledger.ErrorFor(ledger.Code(res.Response.Code), res.Response.Log)
	}
	return res.Response.Value, nil
}

// record reads a record query's answer; ok is false when the chain node does not know
// the path.
func (c *Client) record(ctx context.Context, path string) (_ []byte, ok bool, err error) {
	b, err := c.query(ctx, path)
	if errors.Is(err, ledger.ErrNotFound) && strings.Contains(err.Error(), "unknown query path") {
		c.noRecords.Store(true)
		return nil, false, nil
	}
	return b, true, err
}

// Account returns an account's balance and next sequence.
func (c *Client) Account(ctx context.Context, a keys.Address) (ledger.Account, error) {
	var acc ledger.Account
	return acc, c.Query(ctx, "account/"+string(a), &acc)
}

// NextSequence returns the sequence the chain node's mempool admits next for a: the
// committed sequence plus the txs it has admitted since the last block.
func (c *Client) NextSequence(ctx context.Context, a keys.Address) (uint64, error) {
	var seq uint64
	return seq, c.Query(ctx, "sequence/"+string(a), &seq)
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
