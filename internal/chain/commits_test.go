package chain

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Broadcast returns each tx's own outcome from its own block, for many txs waited on at
// once through the one watch, and leaves nothing waiting behind it.
func TestBroadcastWaitsForEachTxsBlock(t *testing.T) {
	n, alice, bob, ctx := aliceAndBob(t)
	c := n.Client()
	to := keys.AddressOfKey(bob)

	// Alice has 1,000 OMNI: 30 transfers of 1, then two of 600, either of which passes
	// CheckTx (committed balances) but not both in one block; then one whose sequence is
	// taken.
	var txs [][]byte
	for seq := range uint64(32) {
		amount := uint64(1)
		if seq >= 30 {
			amount = 600
		}
		tx, err := ledger.SignTx(alice, testChainID, seq, transfer(to, amount))
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	stale, err := ledger.SignTx(alice, testChainID, 0, transfer(to, 2))
	if err != nil {
		t.Fatal(err)
	}
	txs = append(txs, stale)

	// All in flight at once, and to the mempool in sequence order: each is sent once the
	// one before it was admitted (or refused). Sleeps between the sends kept the order only
	// on a quiet machine.
	out, errs := make([]Committed, len(txs)), make([]error, len(txs))
	sent := make([]chan struct{}, len(txs))
	for i := range sent {
		sent[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for i, tx := range txs {
		wg.Go(func() {
			if i > 0 {
				<-sent[i-1]
			}
			var once sync.Once
			next := func() { once.Do(func() { close(sent[i]) }) }
			defer next()
			out[i], errs[i] = c.BroadcastNotify(ctx, tx, next)
		})
	}
	wg.Wait()

	for i := range 31 {
		if errs[i] != nil {
			t.Fatalf("transfer %d: %v", i, errs[i])
		}
		if want := strings.ToUpper(hex.EncodeToString(cmttypes.Tx(txs[i]).Hash())); out[i].Hash != want || out[i].Height == 0 {
			t.Fatalf("transfer %d: committed as %+v, want hash %s and a height", i, out[i], want)
		}
		// The tx index catches up with the block a moment after its results are saved.
		var res Committed
		var found bool
		for wait := time.Now().Add(5 * time.Second); !found && err == nil && time.Now().Before(wait); {
			if res, found, err = c.TxResult(ctx, cmttypes.Tx(txs[i]).Hash()); !found {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err != nil || !found || res.Height != out[i].Height {
			t.Fatalf("transfer %d: Broadcast says height %d, the tx index %d (%v, found %v)", i, out[i].Height, res.Height, err, found)
		}
	}
	if !errors.Is(errs[31], ledger.ErrInsufficientFunds) {
		t.Fatalf("the second 600: %v, want ErrInsufficientFunds (in its block, or by the mempool)", errs[31])
	}
	t.Logf("the second 600: %v", errs[31])
	if !errors.Is(errs[32], ledger.ErrWrongSequence) || !strings.Contains(errs[32].Error(), "rejected by mempool") {
		t.Fatalf("a taken sequence: %v, want a mempool rejection for the sequence", errs[32])
	}
	c.commits.mu.Lock()
	left := len(c.commits.waiting)
	c.commits.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d txs still waited on after every Broadcast returned", left)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.commits.mu.Lock()
		running := c.commits.running
		c.commits.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch still runs with nothing to wait for")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
