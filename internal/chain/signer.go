package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/cometbft/cometbft/mempool"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Signer signs and submits transactions for one key, keeping the account's sequence in
// step with the chain. It pipelines: Submit assigns the next sequence and hands the tx to
// the mempool under a short lock, then waits for the block outside it, so many txs of one
// key share a block (the ledger admits up to ledger.MaxPending beyond the committed
// sequence). One watcher goroutine per signer, running only while txs are in flight,
// confirms their commits (see watch).
type Signer struct {
	client  *Client
	key     ed25519.PrivateKey
	addr    keys.Address
	chainID string
	opts    SignerOptions
	slots   chan struct{} // one per tx in flight: the ledger's window

	mu     sync.Mutex
	next   uint64 // the sequence the next tx gets
	synced bool
	// epoch counts resyncs: a tx that fails in its block takes with it exactly the txs
	// sent after it in the same epoch (see watch).
	epoch    uint64
	inflight map[*inflight]struct{}
	watching bool
	height   int64 // the latest height the watcher has seen committed
}

// SignerOptions tune a Signer; the zero value pipelines.
type SignerOptions struct {
	// Strict sends one tx at a time and waits for its block before signing the next: one
	// tx per key per block, the behaviour before pipelining, kept as a baseline.
	Strict bool
	// PollInterval is how often the watcher asks for a new block while txs are in flight
	// (default 20ms).
	PollInterval time.Duration
	// RebroadcastAfter is how long the tx the chain waits for (the one at the account's
	// committed sequence) may stay in flight, uncarried, before the watcher sends its
	// bytes again (default 3s; see rebroadcast).
	RebroadcastAfter time.Duration
}

// NewSigner returns a pipelining signer for key on the chain behind client.
func NewSigner(client *Client, key ed25519.PrivateKey, chainID string) *Signer {
	return NewSignerWith(client, key, chainID, SignerOptions{})
}

// NewSignerWith is NewSigner with options.
func NewSignerWith(client *Client, key ed25519.PrivateKey, chainID string, opts SignerOptions) *Signer {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.RebroadcastAfter <= 0 {
		opts.RebroadcastAfter = 3 * time.Second
	}
	return &Signer{
		client: client, key: key, addr: keys.AddressOfKey(key), chainID: chainID, opts: opts,
		slots: make(chan struct{}, ledger.MaxPending), inflight: map[*inflight]struct{}{},
	}
}

// Address is the signer's account.
func (s *Signer) Address() keys.Address { return s.addr }

// maxResends bounds how often Submit signs one message again with a new sequence: after a
// rejection for a wrong sequence (someone else used the key, or an earlier tx of this
// signer failed and left a gap) or because its tx was dropped for such a gap.
const maxResends = 3

// Submit signs msg with the next sequence and waits for it to commit, returning its hash
// and height. A rejection, by the mempool or in the block, wraps the ledger's sentinel.
func (s *Signer) Submit(ctx context.Context, msg ledger.Msg) (Committed, error) {
	if s.opts.Strict {
		return s.submitStrict(ctx, msg)
	}
	for attempt := 0; ; attempt++ {
		var out outcome
		p, err := s.send(ctx, msg)
		if err == nil {
			out = s.await(ctx, p)
		} else {
			out.err = err
		}
		if out.resend || errors.Is(out.err, ledger.ErrWrongSequence) {
			if attempt < maxResends {
				continue
			}
			if out.err == nil {
				out.err = fmt.Errorf("%w: dropped for a gap %d times", ledger.ErrWrongSequence, attempt+1)
			}
		}
		if out.err == nil {
			return out.c, nil
		}
		return Committed{}, fmt.Errorf("%s: %w", msg.Kind(), out.err)
	}
}

// submitStrict holds the lock across the whole round trip to the block.
func (s *Signer) submitStrict(ctx context.Context, msg ledger.Msg) (Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.synced {
			acc, err := s.client.Account(ctx, s.addr)
			if err != nil {
				return Committed{}, err
			}
			s.next, s.synced = acc.Seq, true
		}
		tx, err := ledger.SignTx(s.key, s.chainID, s.next, msg)
		if err != nil {
			return Committed{}, err
		}
		c, err := s.client.Broadcast(ctx, tx)
		if err == nil {
			s.next++
			return c, nil
		}
		if errors.Is(err, ledger.ErrWrongSequence) && attempt == 0 {
			s.synced = false // someone else used this key; resync once
			continue
		}
		return Committed{}, fmt.Errorf("%s: %w", msg.Kind(), err)
	}
}

// inflight is a tx the mempool admitted and no block has been seen to carry yet.
type inflight struct {
	seq, epoch uint64
	hash       []byte
	tx         []byte    // the signed bytes, for rebroadcast
	sent       time.Time // when they last went to the mempool
	// after is the latest height the watcher had seen when the mempool admitted the tx:
	// an index entry at or below it is for identical bytes sent before (a resent message
	// can be signed into the very bytes of an earlier tx that failed), not for this tx.
	after int64
	done  chan outcome // written once, by resolve
	// missing is when the watcher first saw the account's sequence pass seq without
	// finding the tx (the index may lag a block; longer means another tx took the seq).
	missing time.Time
}

// outcome is how a tx in flight ended: committed, rejected in its block, or dropped
// before any block carried it (resend: sign the message again).
type outcome struct {
	c      Committed
	err    error
	resend bool
}

// send signs msg with the next sequence and waits only for the mempool to admit it. The
// lock is held across CheckTx so that this signer's txs reach the mempool in order.
func (s *Signer) send(ctx context.Context, msg ledger.Msg) (*inflight, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.sendLocked(ctx, msg)
	if err != nil {
		<-s.slots
		return nil, err
	}
	s.inflight[p] = struct{}{}
	if !s.watching {
		s.watching = true
		go s.watch()
	}
	return p, nil
}

func (s *Signer) sendLocked(ctx context.Context, msg ledger.Msg) (*inflight, error) {
	if !s.synced {
		// The mempool's next sequence, not the committed one: txs this key sent before
		// (a restarted daemon's) may still be waiting for a block.
		next, err := s.client.NextSequence(ctx, s.addr)
		if err != nil {
			return nil, err
		}
		s.next, s.synced = next, true
	}
	tx, err := ledger.SignTx(s.key, s.chainID, s.next, msg)
	if err != nil {
		return nil, err
	}
	p := &inflight{seq: s.next, epoch: s.epoch, after: s.height, tx: tx, sent: time.Now(), done: make(chan outcome, 1)}
	p.hash, err = s.client.BroadcastSync(ctx, tx)
	if errors.Is(err, mempool.ErrTxInCache) {
		// The very same bytes (this message at this sequence) are already in the mempool
		// or a block: following them is following this tx, whenever they were sent.
		p.hash, p.after, err = cmttypes.Tx(tx).Hash(), 0, nil
	}
	if err != nil {
		if errors.Is(err, ledger.ErrWrongSequence) {
			s.resyncLocked(err)
		}
		return nil, err
	}
	s.next++
	return p, nil
}

// expectedSeq reads the sequence the mempool expected from its rejection (the ledger's
// "account … expects sequence N, tx has M").
var expectedSeq = regexp.MustCompile(`expects sequence (\d+), tx has \d+`)

// resyncLocked follows the mempool after it rejected a tx for its sequence. Its log names
// the sequence it expects next, e, as of that CheckTx (which never runs while the mempool
// is re-checked after a block), so this signer's txs from e on are in no mempool and no
// block: they are sent again. Without a readable log the signer asks again next time.
func (s *Signer) resyncLocked(rejection error) {
	m := expectedSeq.FindStringSubmatch(rejection.Error())
	e, err := uint64(0), error(nil)
	if m != nil {
		e, err = strconv.ParseUint(m[1], 10, 64)
	}
	if m == nil || err != nil {
		s.synced = false
		return
	}
	s.next, s.epoch = e, s.epoch+1
	for p := range s.inflight {
		if p.seq >= e {
			s.resolveLocked(p, outcome{resend: true})
		}
	}
}

// resolveLocked ends p's flight; the first outcome wins.
func (s *Signer) resolveLocked(p *inflight, out outcome) {
	if _, ok := s.inflight[p]; !ok {
		return
	}
	delete(s.inflight, p)
	<-s.slots
	p.done <- out
}

// await waits for p's outcome or for ctx to end; in the latter case p stays in flight (its
// sequence is used) and the watcher still follows it.
func (s *Signer) await(ctx context.Context, p *inflight) outcome {
	select {
	case out := <-p.done:
		return out
	case <-ctx.Done():
		return outcome{err: fmt.Errorf("waiting for tx %X: %w", p.hash, ctx.Err())}
	}
}

// SignNext signs msg with the next sequence without submitting it, for callers that hand
// the tx to someone else (a consumer's job creation goes through the router).
func SignNext(ctx context.Context, client *Client, key ed25519.PrivateKey, chainID string, msg ledger.Msg) ([]byte, uint64, error) {
	acc, err := client.Account(ctx, keys.AddressOfKey(key))
	if err != nil {
		return nil, 0, err
	}
	tx, err := ledger.SignTx(key, chainID, acc.Seq, msg)
	return tx, acc.Seq, err
}

// Wallet is a signer plus read access: what a daemon holds to act on the chain. Its
// methods use only ledger types, so daemons can declare the interface they need without
// importing CometBFT.
type Wallet struct {
	signer *Signer
	client *Client
}

// NewWallet binds key to the chain behind client, with a pipelining signer.
func NewWallet(client *Client, key ed25519.PrivateKey, chainID string) *Wallet {
	return NewWalletWith(client, key, chainID, SignerOptions{})
}

// NewWalletWith is NewWallet with signer options.
func NewWalletWith(client *Client, key ed25519.PrivateKey, chainID string, opts SignerOptions) *Wallet {
	return &Wallet{signer: NewSignerWith(client, key, chainID, opts), client: client}
}

// Address is the wallet's account.
func (w *Wallet) Address() keys.Address { return w.signer.Address() }

// Send signs msg, submits it and waits for it to commit; it returns the tx hash.
func (w *Wallet) Send(ctx context.Context, msg ledger.Msg) (string, error) {
	c, err := w.signer.Submit(ctx, msg)
	return c.Hash, err
}

// SendBatch signs a batch message (ledger.MsgAssignJobs, …), submits it and waits for it
// to commit; it returns the tx hash and each item's outcome (see Committed.Items). An
// error means no item applied.
func (w *Wallet) SendBatch(ctx context.Context, msg ledger.Msg) (string, []error, error) {
	c, err := w.signer.Submit(ctx, msg)
	return c.Hash, c.Items, err
}

// BroadcastTx submits a tx someone else signed and waits for it to commit; it returns the
// tx hash and the height of the block that committed it.
func (w *Wallet) BroadcastTx(ctx context.Context, tx []byte) (string, int64, error) {
	return w.BroadcastTxAdmitted(ctx, tx, nil)
}

// BroadcastTxAdmitted is BroadcastTx, calling admitted (unless nil) once the mempool has
// admitted the tx, before the wait for its block.
func (w *Wallet) BroadcastTxAdmitted(ctx context.Context, tx []byte, admitted func()) (string, int64, error) {
	c, err := w.client.BroadcastNotify(ctx, tx, admitted)
	return c.Hash, c.Height, err
}

// Height returns the last height the ledger has committed (Client.Height): a router
// answers status polls from one read of each job per height.
func (w *Wallet) Height(ctx context.Context) (int64, error) { return w.client.Height(ctx) }

// NewBlocks sends the height of each block the ledger commits on the channel it returns,
// until ctx ends (Client.NewBlocks): a daemon waiting for the chain to show a change reads
// it again only after a block.
func (w *Wallet) NewBlocks(ctx context.Context) (<-chan int64, error) {
	return w.client.NewBlocks(ctx)
}

// Query reads ledger state (see ledger.App.Query for paths) into v.
func (w *Wallet) Query(ctx context.Context, path string, v any) error {
	return w.client.Query(ctx, path, v)
}
