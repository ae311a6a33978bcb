package ledger

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The mempool sequence rule (see App.CheckTx): a tx must carry the account's next mempool
// sequence, at most MaxPending past the committed one; Commit restarts the window from
// committed state, and CometBFT re-checks what is left in the mempool, in order.

func seqTx(t testing.TB, seq uint64, amount uint64) []byte {
	t.Helper()
	tx, err := SignTx(consumerKey, testChain, seq, Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: amount}})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// recheck does what CometBFT's mempool does after a commit: CheckTx again every tx still
// in the mempool, in the order they were admitted, dropping the rejected ones.
func recheck(app *App, mempool [][]byte) (kept [][]byte) {
	for _, tx := range mempool {
		if app.CheckTx(tx).Code == CodeOK {
			kept = append(kept, tx)
		}
	}
	return kept
}

func TestCheckTxSequenceWindow(t *testing.T) {
	cases := []struct {
		name  string
		admit []uint64 // sent in this order, all accepted
		then  uint64   // the next tx's sequence
		code  Code
	}{
		{"first at the committed sequence", nil, 0, CodeOK},
		{"in order, several per block", []uint64{0, 1, 2}, 3, CodeOK},
		{"a gap", []uint64{0, 1}, 3, CodeWrongSequence},
		{"a gap before anything was admitted", nil, 1, CodeWrongSequence},
		{"a duplicate", []uint64{0, 1}, 1, CodeWrongSequence},
		{"an old sequence", []uint64{0, 1, 2}, 0, CodeWrongSequence},
		{"the last slot of the window", seqRange(0, MaxPending-1), MaxPending - 1, CodeOK},
		{"beyond the window", seqRange(0, MaxPending), MaxPending, CodeTooManyPending},
		{"a gap beyond the window is still a gap", seqRange(0, MaxPending), MaxPending + 1, CodeWrongSequence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testGenesis())
			for _, s := range c.admit {
				if r := h.app.CheckTx(seqTx(t, s, 1)); r.Code != CodeOK {
					t.Fatalf("seq %d: code %d (%s)", s, r.Code, r.Log)
				}
			}
			if r := h.app.CheckTx(seqTx(t, c.then, 1)); r.Code != c.code {
				t.Fatalf("seq %d: code %d (%s), want %d", c.then, r.Code, r.Log, c.code)
			}
		})
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

// After a commit the window restarts from the committed sequence: the txs the block did
// not carry pass the re-check in order, and new ones follow them.
func TestCheckTxWindowRestartsAfterCommit(t *testing.T) {
	h := newHarness(t, testGenesis())
	var mempool [][]byte
	for s := range uint64(MaxPending) {
		tx := seqTx(t, s, 1)
		if r := h.app.CheckTx(tx); r.Code != CodeOK {
			t.Fatalf("seq %d: %s", s, r.Log)
		}
		mempool = append(mempool, tx)
	}
	if r := h.app.CheckTx(seqTx(t, MaxPending, 1)); r.Code != CodeTooManyPending {
		t.Fatalf("window full: code %d (%s)", r.Code, r.Log)
	}
	for _, r := range h.block(mempool[:10]...) {
		if r.Code != CodeOK {
			t.Fatal(r.Log)
		}
	}
	if next, _ := h.app.NextSequence(addr(consumerKey)); next != 10 {
		t.Fatalf("before the re-check the next sequence is %d, want the committed 10", next)
	}
	if kept := recheck(h.app, mempool[10:]); len(kept) != MaxPending-10 {
		t.Fatalf("re-check kept %d of %d", len(kept), MaxPending-10)
	}
	for s := uint64(MaxPending); s < MaxPending+10; s++ { // ten slots freed
		if r := h.app.CheckTx(seqTx(t, s, 1)); r.Code != CodeOK {
			t.Fatalf("seq %d after the commit: %s", s, r.Log)
		}
	}
	if r := h.app.CheckTx(seqTx(t, MaxPending+10, 1)); r.Code != CodeTooManyPending {
		t.Fatalf("window full again: code %d (%s)", r.Code, r.Log)
	}
	var seq uint64
	if err := json.Unmarshal(must(h.app.Query("sequence/"+string(addr(consumerKey)))), &seq); err != nil || seq != MaxPending+10 {
		t.Fatalf("sequence query: %d %v", seq, err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// A tx that fails in its block does not use up its sequence, as before pipelining: the
// block's later txs of the same account fail with a wrong sequence, and the account goes
// on from the failed tx's sequence, not wedged. This node's mempool refuses a tx the
// account cannot pay after the ones it admitted, but a proposer may put in its block txs
// this node never checked.
func TestFailedTxInBlockDoesNotWedgeLaterOnes(t *testing.T) {
	h := newHarness(t, testGenesis())
	// Each transfer alone is affordable; the second cannot be paid after the first.
	big := 6_000 * omni
	tx0, tx1, tx2 := seqTx(t, 0, big), seqTx(t, 1, big), seqTx(t, 2, 1)
	if r := h.app.CheckTx(tx0); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	if r := h.app.CheckTx(tx1); r.Code != CodeInsufficientFunds {
		t.Fatalf("the second transfer, unaffordable after the first: code %d (%s), want insufficient funds", r.Code, r.Log)
	}
	res := h.block(tx0, tx1, tx2)
	for i, want := range []Code{CodeOK, CodeInsufficientFunds, CodeWrongSequence} {
		if res[i].Code != want {
			t.Fatalf("tx %d: code %d (%s), want %d", i, res[i].Code, res[i].Log, want)
		}
	}
	if acc := query[AccountView](h, "account/"+string(addr(consumerKey))); acc.Seq != 1 {
		t.Fatalf("after the failed tx the account is at sequence %d, want 1 (a failed tx keeps its sequence)", acc.Seq)
	}
	// The signer re-sequences what it still wants sent: from 1 on.
	retry1, retry2 := seqTx(t, 1, 1), seqTx(t, 2, 2)
	for _, tx := range [][]byte{retry1, retry2} {
		if r := h.app.CheckTx(tx); r.Code != CodeOK {
			t.Fatalf("re-sequenced tx: %s", r.Log)
		}
	}
	for _, r := range h.block(retry1, retry2) {
		if r.Code != CodeOK {
			t.Fatal(r.Log)
		}
	}
}

// Property: over random sends (right, duplicate, gapped or beyond the window) and random
// blocks that carry a prefix of the mempool, CheckTx accepts exactly what the model says
// (seq == committed + admitted, and fewer than MaxPending admitted), the re-check keeps the
// whole remaining mempool, and every block's txs all succeed.
func TestCheckTxSequenceModel(t *testing.T) {
	seen := map[Code]int{}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 12))
		h := newHarness(t, testGenesis())
		var committed uint64
		var mempool [][]byte
		for step := 0; step < 400; step++ {
			next := committed + uint64(len(mempool))
			if rng.IntN(8+4*int(seed%5)) == 0 { // a block carries a prefix of the mempool
				n := rng.IntN(len(mempool) + 1)
				for i, r := range h.block(mempool[:n]...) {
					if r.Code != CodeOK {
						t.Fatalf("seed %d step %d: block tx %d: %s", seed, step, i, r.Log)
					}
				}
				committed += uint64(n)
				if kept := recheck(h.app, mempool[n:]); len(kept) != len(mempool)-n {
					t.Fatalf("seed %d step %d: re-check kept %d of %d", seed, step, len(kept), len(mempool)-n)
				}
				mempool = mempool[n:]
				continue
			}
			seq := next
			switch rng.IntN(4) {
			case 0:
				seq = committed + rng.Uint64N(uint64(len(mempool))+1) // may duplicate
			case 1:
				seq = next + 1 + rng.Uint64N(3) // a gap
			}
			want := CodeOK
			switch {
			case seq != next:
				want = CodeWrongSequence
			case next-committed >= MaxPending:
				want = CodeTooManyPending
			}
			tx := seqTx(t, seq, 1)
			if r := h.app.CheckTx(tx); r.Code != want {
				t.Fatalf("seed %d step %d: seq %d (committed %d, next %d): code %d (%s), want %d",
					seed, step, seq, committed, next, r.Code, r.Log, want)
			}
			seen[want]++
			if want == CodeOK {
				mempool = append(mempool, tx)
			}
		}
	}
	for _, c := range []Code{CodeOK, CodeWrongSequence, CodeTooManyPending} {
		if seen[c] == 0 {
			t.Errorf("no send got code %d: %v", c, seen)
		}
	}
}

// Property (the balance rule of App.CheckTx): over random transfers out of an account
// (some larger than what is left), transfers into it, and random blocks that carry a
// prefix of each mempool, CheckTx admits a transfer out exactly when it fits the committed
// balance less what the account's admitted transfers spend (income waits for its block),
// the re-check keeps the whole remaining mempool, and every block's txs all succeed: the
// mempool never promises more than the account holds.
func TestCheckTxSpendModel(t *testing.T) {
	seen := map[Code]int{}
	for seed := range uint64(16) {
		rng := rand.New(rand.NewPCG(seed, 13))
		h := newHarness(t, testGenesis())
		spender := addr(consumerKey)
		balance := func() uint64 { return query[AccountView](h, "account/"+string(spender)).Balance }
		var committedSeq, incomeSeq uint64
		var out, in [][]byte // the spender's mempool, and the payer's
		var pending uint64   // what out spends
		for step := 0; step < 300; step++ {
			if rng.IntN(6) == 0 { // a block carries a prefix of each mempool, its income first
				ni, no := rng.IntN(len(in)+1), rng.IntN(len(out)+1)
				for i, r := range h.block(append(append([][]byte{}, in[:ni]...), out[:no]...)...) {
					if r.Code != CodeOK {
						t.Fatalf("seed %d step %d: block tx %d: %s", seed, step, i, r.Log)
					}
				}
				committedSeq += uint64(no)
				in, out = in[ni:], out[no:]
				if kept := recheck(h.app, append(append([][]byte{}, in...), out...)); len(kept) != len(in)+len(out) {
					t.Fatalf("seed %d step %d: re-check kept %d of %d", seed, step, len(kept), len(in)+len(out))
				}
				pending = 0
				for _, tx := range out {
					d, _ := DecodeTx(tx)
					pending += d.Body.Transfer.Amount
				}
				continue
			}
			if rng.IntN(4) == 0 { // income, from node1 to the spender
				tx, err := SignTx(node1Key, testChain, incomeSeq, Msg{Transfer: &MsgTransfer{To: spender, Amount: 1 + rng.Uint64N(50*omni)}})
				if err != nil {
					t.Fatal(err)
				}
				if r := h.app.CheckTx(tx); r.Code != CodeOK {
					t.Fatalf("seed %d step %d: income: %s", seed, step, r.Log)
				}
				in, incomeSeq = append(in, tx), incomeSeq+1
				continue
			}
			if len(out) >= MaxPending {
				continue
			}
			left := balance() - pending
			amount := 1 + rng.Uint64N(2*left/max(1, uint64(8-rng.IntN(8)))+1) // often more than is left
			want := CodeOK
			if amount > left {
				want = CodeInsufficientFunds
			}
			tx := seqTx(t, committedSeq+uint64(len(out)), amount)
			if r := h.app.CheckTx(tx); r.Code != want {
				t.Fatalf("seed %d step %d: %d uomni with %d left (balance %d, %d pending): code %d (%s), want %d",
					seed, step, amount, left, balance(), pending, r.Code, r.Log, want)
			}
			seen[want]++
			if want == CodeOK {
				out, pending = append(out, tx), pending+amount
			}
		}
	}
	for _, c := range []Code{CodeOK, CodeInsufficientFunds} {
		if seen[c] < 20 {
			t.Errorf("only %d sends got code %d: %v", seen[c], c, seen)
		}
	}
}
