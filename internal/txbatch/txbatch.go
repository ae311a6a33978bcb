// Package txbatch gathers the single ledger messages a daemon sends close together into
// one batch transaction (ledger/batch.go). The router assigns, a validator attests and a
// node commits one message per job; one tx each made their keys the network's
// bottleneck, since a key gets only so many txs into a block.
//
// Each sender waits as it would for its own tx and hears its own item's outcome: the hash
// of the tx that carried it and the error the single message would have met there. The
// package holds no rules of its own: which messages batch is the ledger's (ledger.Batch),
// and the chain applies each item as it would the single message.
package txbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// Chain is what a Batcher sends through (chain.Wallet implements it).
type Chain interface {
	Send(ctx context.Context, msg ledger.Msg) (txHash string, err error)
	// SendBatch sends a batch message and returns each item's outcome (nil: applied).
	SendBatch(ctx context.Context, msg ledger.Msg) (txHash string, items []error, err error)
}

// DefaultWindow is how long the first message of a batch waits for others: short
// against a block, long against the gap between a busy daemon's messages.
const DefaultWindow = 10 * time.Millisecond

// ErrStopped is Send's answer once Run has returned.
var ErrStopped = errors.New("txbatch: batcher stopped")

// Batcher collects the messages sent within a window of the first (up to a maximum) and
// sends them as one batch tx; a lone message, or one the ledger does not batch, goes as
// itself. Run owns the batch being collected.
type Batcher struct {
	chain   Chain
	window  time.Duration
	max     int
	queue   chan request
	stopped chan struct{} // closed when Run returns
}

// request is one message waiting for its batch.
type request struct {
	msg  ledger.Msg
	done chan result // buffered: a batch never waits for its sender
}

type result struct {
	tx  string
	err error
}

// New is a batcher over chain. A negative window sends every message alone at once, and
// needs no Run; zero means DefaultWindow. limit, the most a batch holds, outside
// 1..ledger.MaxBatchItems means ledger.MaxBatchItems.
func New(chain Chain, window time.Duration, limit int) *Batcher {
	if window == 0 {
		window = DefaultWindow
	}
	if limit <= 0 || limit > ledger.MaxBatchItems {
		limit = ledger.MaxBatchItems
	}
	return &Batcher{chain: chain, window: window, max: limit, queue: make(chan request), stopped: make(chan struct{})}
}

// Send sends msg, alone or in a batch with others, waits for it to commit and returns the
// hash of the tx that carried it and its own outcome. The message is sent on Run's
// context: a sender that stops waiting does not take it out of its batch.
func (b *Batcher) Send(ctx context.Context, msg ledger.Msg) (string, error) {
	if _, ok := ledger.Batch([]ledger.Msg{msg}); !ok || b.window < 0 {
		return b.chain.Send(ctx, msg)
	}
	req := request{msg: msg, done: make(chan result, 1)}
	select {
	case b.queue <- req:
	case <-b.stopped:
		return "", ErrStopped
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.tx, res.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Run collects batches and sends them until ctx ends, then waits for the batches in
// flight; it is called once. Each batch is sent from its own goroutine: the signer
// pipelines, so the next batch need not wait for a block.
func (b *Batcher) Run(ctx context.Context) {
	var sending sync.WaitGroup
	defer sending.Wait()
	defer close(b.stopped)
	for {
		var batch []request
		select {
		case <-ctx.Done():
			return
		case req := <-b.queue:
			batch = append(batch, req)
		}
		window := time.NewTimer(b.window)
	collect:
		for len(batch) < b.max {
			select {
			case req := <-b.queue:
				batch = append(batch, req)
			case <-window.C:
				break collect
			case <-ctx.Done():
				break collect
			}
		}
		window.Stop()
		for _, group := range byKind(batch) {
			sending.Add(1)
			go func() {
				defer sending.Done()
				b.send(ctx, group)
			}()
		}
	}
}

// byKind splits a batch into runs of one kind of message, each of which the ledger takes
// as one batch; a Batcher used for one kind, as each daemon's is, has one.
func byKind(batch []request) [][]request {
	var groups [][]request
	at := map[string]int{}
	for _, req := range batch {
		k := req.msg.Kind()
		i, ok := at[k]
		if !ok {
			i, at[k] = len(groups), len(groups)
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], req)
	}
	return groups
}

// send sends one batch of one kind and tells each sender its item's outcome.
func (b *Batcher) send(ctx context.Context, batch []request) {
	if len(batch) == 1 {
		tx, err := b.chain.Send(ctx, batch[0].msg)
		batch[0].done <- result{tx, err}
		return
	}
	msgs := make([]ledger.Msg, len(batch))
	for i, req := range batch {
		msgs[i] = req.msg
	}
	m, _ := ledger.Batch(msgs) // one batchable kind: Send and byKind saw to it
	tx, items, err := b.chain.SendBatch(ctx, m)
	for i, req := range batch {
		res := result{tx: tx, err: err}
		switch {
		case err != nil:
		case i >= len(items):
			res.err = fmt.Errorf("%s tx %s: no outcome for item %d of %d", m.Kind(), tx, i, len(batch))
		case items[i] != nil:
			res.err = fmt.Errorf("%s item %d: %w", m.Kind(), i, items[i])
		}
		req.done <- res
	}
}
