package chain

import "context"

// BroadcastAsync hands a signed tx to the mempool without waiting for a block, for clients
// that stream many transactions and learn the outcome from blocks or queries. In process,
// CheckTx has run by the time it returns, and a rejection is an error wrapping the ledger
// sentinel for its code; over HTTP, CometBFT replies before CheckTx, so only transport
// errors and a full mempool surface here.
func (c *Client) BroadcastAsync(ctx context.Context, tx []byte) error {
	if _, err := c.rpc.BroadcastTxAsync(ctx, tx); err != nil {
		return broadcastError(err)
	}
	return nil
}
