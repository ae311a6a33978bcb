package chain

import (
	"context"
	"fmt"
	"strings"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// MaxRecentBlocks bounds RecentBlocks.
const MaxRecentBlocks = 100

// RecentBlocks reads the last limit blocks (at most MaxRecentBlocks), newest first, each
// with its transactions: hash, kind, signer and the ledger's result code. Empty blocks are
// included. A transaction that does not decode is listed by hash with kind "undecodable".
func (c *Client) RecentBlocks(ctx context.Context, limit int) ([]api.Block, error) {
	limit = min(max(limit, 1), MaxRecentBlocks)
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain status: %w", err)
	}
	top := st.SyncInfo.LatestBlockHeight
	out := make([]api.Block, 0, limit)
	for h := top; h > 0 && len(out) < limit; h-- {
		height := h
		b, err := c.rpc.Block(ctx, &height)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", h, err)
		}
		blk := api.Block{
			Height: h, Time: b.Block.Time, Hash: strings.ToUpper(b.BlockID.Hash.String()),
			Proposer: b.Block.ProposerAddress.String(), Txs: make([]api.BlockTx, 0, len(b.Block.Txs)),
		}
		var codes []uint32
		if len(b.Block.Txs) > 0 {
			if res, err := c.rpc.BlockResults(ctx, &height); err == nil {
				for _, r := range res.TxResults {
					codes = append(codes, r.Code)
				}
			}
		}
		for i, raw := range b.Block.Txs {
			tx := api.BlockTx{Hash: ledger.HashHex(raw), Kind: "undecodable"}
			if d, err := ledger.DecodeTx(raw); err == nil {
				tx.Kind, tx.Signer = d.Body.Kind(), string(d.Signer)
			}
			if i < len(codes) {
				tx.Code = codes[i]
			}
			blk.Txs = append(blk.Txs, tx)
		}
		out = append(out, blk)
	}
	return out, nil
}
