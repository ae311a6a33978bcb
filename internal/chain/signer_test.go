package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

const testChainID = "omnisync-chaintest"

func transfer(to keys.Address, omni uint64) ledger.Msg {
	return ledger.Msg{Transfer: &ledger.MsgTransfer{To: to, Amount: omni * ledger.UomniPerOMNI}}
}

// submitAll submits msgs concurrently through s, each Submit started a moment after the
// previous one so that they reach the signer in order, and returns what each returned.
func submitAll(ctx context.Context, s *Signer, msgs []ledger.Msg) ([]Committed, []error) {
	out, errs := make([]Committed, len(msgs)), make([]error, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.Submit(ctx, m)
		}()
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	return out, errs
}

func perHeight(cs []Committed) map[int64]int {
	n := map[int64]int{}
	for _, c := range cs {
		n[c.Height]++
	}
	return n
}

// aliceAndBob starts a one-validator chain on which alice is funded and bob is not, with
// a context good for a minute; both end with the test.
func aliceAndBob(t *testing.T) (n *Node, alice, bob ed25519.PrivateKey, ctx context.Context) {
	t.Helper()
	home := t.TempDir()
	alice, bob = testKey(1), testKey(2)
	initSingle(t, home, alice)
	n = startNode(t, home)
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return n, alice, bob, ctx
}

// One key's txs share blocks: Submit returns when its tx is committed, as before, but the
// next Submit does not wait for that.
func TestSignerPipelinesManyTxsPerBlock(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)

	const txs = 40
	msgs := make([]ledger.Msg, txs)
	for i := range msgs {
		msgs[i] = transfer(keys.AddressOfKey(bob), 1)
	}
	s := NewSigner(n.Client(), alice, testChainID)
	cs, errs := submitAll(ctx, s, msgs)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	blocks := perHeight(cs)
	if len(blocks) > txs/4 {
		t.Fatalf("%d txs took %d blocks: %v", txs, len(blocks), blocks)
	}
	acc, err := n.Client().Account(ctx, keys.AddressOfKey(alice))
	if err != nil || acc.Seq != txs {
		t.Fatalf("alice at sequence %d (%v), want %d", acc.Seq, err, txs)
	}
	for _, c := range cs {
		if c.Hash == "" || c.Height == 0 {
			t.Fatalf("committed without hash or height: %+v", c)
		}
	}
}

// A tx that passes CheckTx but fails in its block leaves its sequence unused: the txs the
// signer sent after it fail or are dropped, and are signed again; only the failed one
// reports an error, wrapping the ledger's sentinel.
func TestSignerResendsTxsBehindOneThatFailedInItsBlock(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)

	// Alice has 1,000 OMNI: either 600 alone passes CheckTx (committed balances), but
	// the second cannot be paid once the first has been.
	msgs := []ledger.Msg{transfer(keys.AddressOfKey(bob), 600), transfer(keys.AddressOfKey(bob), 600)}
	for range 8 {
		msgs = append(msgs, transfer(keys.AddressOfKey(bob), 1))
	}
	s := NewSigner(n.Client(), alice, testChainID)
	_, errs := submitAll(ctx, s, msgs)
	if errs[0] != nil {
		t.Fatalf("first transfer: %v", errs[0])
	}
	if !errors.Is(errs[1], ledger.ErrInsufficientFunds) {
		t.Fatalf("second transfer: %v, want ErrInsufficientFunds", errs[1])
	}
	// Almost always the block carried it (rarely a block fell between the first two).
	t.Logf("second transfer: %v", errs[1])
	for i, err := range errs[2:] {
		if err != nil {
			t.Fatalf("transfer %d behind the failed one: %v", i+2, err)
		}
	}
	acc, err := n.Client().Account(ctx, keys.AddressOfKey(alice))
	if err != nil || acc.Seq != uint64(len(msgs)-1) {
		t.Fatalf("alice at sequence %d (%v), want %d", acc.Seq, err, len(msgs)-1)
	}
	// The signer is in step afterwards.
	if _, err := s.Submit(ctx, transfer(keys.AddressOfKey(bob), 1)); err != nil {
		t.Fatal(err)
	}
}

// Two signers for one key (a daemon and the CLI, say) take sequences from each other;
// each resyncs from the mempool's rejection and every tx commits exactly once.
func TestSignersSharingAKeyResync(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)

	hc, err := NewHTTPClient(n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	signers := []*Signer{NewSigner(n.Client(), alice, testChainID), NewSigner(hc, alice, testChainID)}
	const each = 10
	var wg sync.WaitGroup
	errs := make([]error, len(signers))
	for i, s := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if _, err := s.Submit(ctx, transfer(keys.AddressOfKey(bob), uint64(1+i))); err != nil {
					errs[i] = fmt.Errorf("signer %d tx %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	acc, err := n.Client().Account(ctx, keys.AddressOfKey(bob))
	if want := uint64(each*(1+2)) * 98 * ledger.UomniPerOMNI / 100; err != nil || acc.Balance != want {
		t.Fatalf("bob has %d (%v), want %d: every transfer once", acc.Balance, err, want)
	}
}

// The strict signer, the baseline, still works: one tx per key per block.
func TestStrictSignerOneTxPerBlock(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)

	msgs := []ledger.Msg{transfer(keys.AddressOfKey(bob), 1), transfer(keys.AddressOfKey(bob), 1), transfer(keys.AddressOfKey(bob), 1)}
	cs, errs := submitAll(ctx, NewSignerWith(n.Client(), alice, testChainID, SignerOptions{Strict: true}), msgs)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if blocks := perHeight(cs); len(blocks) != len(msgs) {
		t.Fatalf("strict signer: %v", blocks)
	}
}

// The signer reads the expected sequence out of the ledger's rejection: this pins the
// ledger's wording.
func TestExpectedSequenceParsesTheLedgersRejection(t *testing.T) {
	log := fmt.Errorf("%w: account %s expects sequence %d, tx has %d", ledger.ErrWrongSequence, keys.AddressOfKey(testKey(1)), 7, 9).Error()
	m := expectedSeq.FindStringSubmatch(log)
	if m == nil || m[1] != "7" {
		t.Fatalf("parsed %q from %q", m, log)
	}
	if !leftGap(9, ledger.ErrorFor(ledger.CodeWrongSequence, log)) {
		t.Fatal("a tx after a gap should leave one")
	}
	displaced := fmt.Errorf("%w: account x expects sequence 9, tx has 7", ledger.ErrWrongSequence)
	if leftGap(7, displaced) {
		t.Fatal("a displaced tx leaves no gap")
	}
	if !leftGap(7, ledger.ErrInsufficientFunds) {
		t.Fatal("a failed tx leaves a gap")
	}
}

// losingMempool is a chain node's RPC whose mempool loses the first lose txs it admits,
// as one does when its node dies or the client fails over to another node: it answers
// that they were admitted and never passes them on.
type losingMempool struct {
	rpcAPI
	lose, sent atomic.Int32
}

func (l *losingMempool) BroadcastTxSync(ctx context.Context, tx cmttypes.Tx) (*ctypes.ResultBroadcastTx, error) {
	l.sent.Add(1)
	if l.lose.Add(-1) >= 0 {
		return &ctypes.ResultBroadcastTx{Hash: tx.Hash()}, nil
	}
	return l.rpcAPI.BroadcastTxSync(ctx, tx)
}

// A tx the mempool lost is sent again once it has gone uncarried for RebroadcastAfter,
// and commits; without that it would wait for its caller's deadline, and every later tx
// of the key behind it.
func TestSignerRebroadcastsATxTheMempoolLost(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)
	rpc := &losingMempool{rpcAPI: n.Client().rpc}
	rpc.lose.Store(1)
	s := NewSignerWith(&Client{rpc: rpc}, alice, testChainID, SignerOptions{RebroadcastAfter: 300 * time.Millisecond})
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Submit(sctx, transfer(keys.AddressOfKey(bob), 1)); err != nil {
		t.Fatalf("a lost tx never committed: %v", err)
	}
	if got := rpc.sent.Load(); got != 2 {
		t.Fatalf("sent %d times, want twice: lost, then once more", got)
	}
	// A tx carried at once is sent once.
	if _, err := s.Submit(sctx, transfer(keys.AddressOfKey(bob), 1)); err != nil {
		t.Fatal(err)
	}
	if got := rpc.sent.Load(); got != 3 {
		t.Fatalf("sent %d times in all, want 3: a tx carried at once is sent once", got)
	}
	// Sent again while the mempool still holds it (ErrTxInCache), as a slow chain's txs
	// are, it commits once, and the key's next tx after it.
	before, err := n.Client().Account(sctx, keys.AddressOfKey(bob))
	if err != nil {
		t.Fatal(err)
	}
	eager := &losingMempool{rpcAPI: n.Client().rpc}
	s = NewSignerWith(&Client{rpc: eager}, alice, testChainID, SignerOptions{RebroadcastAfter: time.Nanosecond})
	for range 2 {
		if _, err := s.Submit(sctx, transfer(keys.AddressOfKey(bob), 1)); err != nil {
			t.Fatalf("a tx sent again while held: %v", err)
		}
	}
	after, err := n.Client().Account(sctx, keys.AddressOfKey(bob))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := after.Balance-before.Balance, 2*ledger.UomniPerOMNI*98/100; got != want || eager.sent.Load() < 3 {
		t.Fatalf("bob gained %d uomni over %d sends, want %d over more than 2", got, eager.sent.Load(), want)
	}
}
