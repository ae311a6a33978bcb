package chain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	cmttypes "github.com/cometbft/cometbft/types"
)

const (
	// commitTimeout bounds Broadcast's wait for a block once the mempool admitted the tx,
	// as the chain node's TimeoutBroadcastTxCommit bounded BroadcastTxCommit's.
	commitTimeout = 30 * time.Second
	// commitPoll is how often the watch asks for a new block while txs are waited on.
	commitPoll = 20 * time.Millisecond
)

// commitWatch follows the chain's blocks for every tx Broadcast waits on: one goroutine,
// running only while some tx is waited on, reads each new block and its results once and
// hands each waiter its tx's outcome. CometBFT's BroadcastTxCommit makes an event-bus
// subscription for every tx, whose query the bus matches against every tx event of every
// block: with a few hundred escrows waiting at once that was 2–4% of a router's CPU, and
// it grows with their number. The zero value is ready.
type commitWatch struct {
	mu      sync.Mutex
	waiting map[string][]chan commitOutcome // by tx hash
	height  int64                           // the last height read
	running bool
}

type commitOutcome struct {
	c   Committed
	err error
}

// Broadcast submits a signed tx and waits until it is committed. A tx the ledger rejects
// returns an error wrapping the ledger sentinel for its code (errors.Is works): in the
// mempool ("rejected by mempool") or in its block ("rejected in block N").
func (c *Client) Broadcast(ctx context.Context, tx []byte) (Committed, error) {
	return c.BroadcastNotify(ctx, tx, nil)
}

// BroadcastNotify is Broadcast, calling admitted (unless nil) once the mempool has
// admitted the tx, before it waits for the block.
func (c *Client) BroadcastNotify(ctx context.Context, tx []byte, admitted func()) (Committed, error) {
	hash := cmttypes.Tx(tx).Hash()
	done, stop, err := c.commits.add(ctx, c, hash)
	if err != nil {
		return Committed{}, fmt.Errorf("broadcast: %w", err)
	}
	defer stop()
	if _, err := c.BroadcastSync(ctx, tx); err != nil {
		return Committed{}, err
	}
	if admitted != nil {
		admitted()
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	select {
	case out := <-done:
		return out.c, out.err
	case <-ctx.Done():
		return Committed{}, fmt.Errorf("broadcast: waiting for tx %X to commit: %w", hash, ctx.Err())
	}
}

// add registers a wait for the tx with this hash, before it is broadcast, so that no
// block can carry it unread; stop ends the wait.
func (w *commitWatch) add(ctx context.Context, c *Client, hash []byte) (done <-chan commitOutcome, stop func(), err error) {
	key := string(hash)
	ch := make(chan commitOutcome, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		// Every block from here on may carry the tx; none before can.
		h, err := c.Height(ctx)
		if err != nil {
			return nil, nil, err
		}
		w.height, w.running = h, true
		go w.run(c)
	}
	if w.waiting == nil {
		w.waiting = map[string][]chan commitOutcome{}
	}
	w.waiting[key] = append(w.waiting[key], ch)
	return ch, func() { w.remove(key, ch) }, nil
}

func (w *commitWatch) remove(key string, ch chan commitOutcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := slices.DeleteFunc(w.waiting[key], func(c chan commitOutcome) bool { return c == ch })
	if len(rest) == 0 {
		delete(w.waiting, key)
	} else {
		w.waiting[key] = rest
	}
}

// run reads each block after the last one read while any tx is waited on; a block it
// could not read is read again at the next tick.
func (w *commitWatch) run(c *Client) {
	tick := time.NewTicker(commitPoll)
	defer tick.Stop()
	for range tick.C {
		w.mu.Lock()
		if len(w.waiting) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		next := w.height + 1
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		top, err := c.Height(ctx)
		for h := next; err == nil && h <= top; h++ {
			err = w.read(ctx, c, h)
		}
		cancel()
	}
}

// read hands the waiters of every tx in block h its outcome.
func (w *commitWatch) read(ctx context.Context, c *Client, h int64) error {
	block, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return err
	}
	results, err := c.rpc.BlockResults(ctx, &h)
	if err != nil {
		return err
	}
	txs := block.Block.Txs
	if len(results.TxResults) != len(txs) {
		return errors.New("block results do not match the block's txs")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, tx := range txs {
		hash := tx.Hash()
		chans := w.waiting[string(hash)]
		if len(chans) == 0 {
			continue
		}
		delete(w.waiting, string(hash))
		var out commitOutcome
		out.c, out.err = committed(cmtbytes.HexBytes(hash), h, *results.TxResults[i])
		for _, ch := range chans {
			ch <- out
		}
	}
	w.height = h
	return nil
}
