package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

const benchChainID = "omnisync-bench"

func benchAccountKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	seed[31] = 0xc4
	return ed25519.NewKeyFromSeed(seed)
}

// BenchmarkChainCommittedTransfers runs a single-validator chain with 1 s blocks (the
// whole node: CometBFT consensus, mempool, block store, tx indexer, the ledger on the Merkle store over
// goleveldb) and feeds it signed transfers from many accounts through the in-process
// client, measuring the transactions committed per second over the blocks that carried
// them. The baseline, measured in the same run, is the CheckTx-only rate: a ledger on an
// in-memory store admitting the same kind of txs on one goroutine. Every tx passes CheckTx
// once on its way in (that is where its signature is verified), under the same lock as
// FinalizeBlock and Commit, so that rate is the ceiling the chain approaches.
func BenchmarkChainCommittedTransfers(b *testing.B) {
	const accounts, perAccount, senders = 16_000, 3, 4
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	keysOf := make([]ed25519.PrivateKey, accounts)
	g := ledger.Genesis{Params: ledger.DefaultParams()}
	for i := range keysOf {
		keysOf[i] = benchAccountKey(i)
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: keys.AddressOfKey(keysOf[i]), Balance: 1_000_000 * ledger.UomniPerOMNI})
		g.Supply += 1_000_000 * ledger.UomniPerOMNI
	}
	home := b.TempDir()
	vk, err := InitHome(home)
	if err != nil {
		b.Fatal(err)
	}
	g.Validators = []ledger.Validator{{Address: keys.AddressOfKey(testKey(9)), PubKey: vk.PubKey, Stake: 10_000 * ledger.UomniPerOMNI}}
	g.Supply += 10_000 * ledger.UomniPerOMNI
	if err := WriteGenesis([]string{home}, benchChainID, time.Now(), []ValidatorKey{vk}, g); err != nil {
		b.Fatal(err)
	}

	seqs := make([]uint64, accounts)
	batch := func() [][][]byte { // per sender, in the order it sends
		out := make([][][]byte, senders)
		for r := 0; r < perAccount; r++ {
			for i, k := range keysOf {
				to := keys.AddressOfKey(keysOf[(i+1)%accounts])
				tx, err := ledger.SignTx(k, benchChainID, seqs[i], ledger.Msg{Transfer: &ledger.MsgTransfer{To: to, Amount: ledger.UomniPerOMNI}})
				if err != nil {
					b.Fatal(err)
				}
				seqs[i]++
				out[i%senders] = append(out[i%senders], tx)
			}
		}
		return out
	}
	checkRate := checkTxRate(b, g, batch()[0])
	for i := range seqs {
		seqs[i] = 0
	}

	n, err := New(Options{Home: home, BlockTime: time.Second, EmptyBlockInterval: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c := n.Client()

	var committed, blocks int
	var span time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		txs := batch()
		total := 0
		for _, s := range txs {
			total += len(s)
		}
		h0, err := c.Height(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		var rejected sync.Map
		for _, s := range txs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, tx := range s {
					for {
						err := c.BroadcastAsync(ctx, tx)
						if err != nil && strings.Contains(err.Error(), "mempool is full") && ctx.Err() == nil {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						if err != nil {
							rejected.Store(err.Error(), true)
						}
						break
					}
				}
			}()
		}
		r := followBlocks(ctx, b, c, h0, total)
		wg.Wait()
		b.StopTimer()
		rejected.Range(func(k, _ any) bool { b.Errorf("rejected: %v", k); return false })
		committed, blocks, span = committed+r.steadyTxs, blocks+r.steadyBlocks, span+r.steadySpan
	}
	// Every tx succeeded: each account's sequence counts all of its transfers.
	for i, k := range keysOf {
		acc, err := c.Account(ctx, keys.AddressOfKey(k))
		if err != nil || acc.Seq != seqs[i] {
			b.Fatalf("account %d at sequence %d, sent %d (%v)", i, acc.Seq, seqs[i], err)
		}
	}
	rate := float64(committed) / span.Seconds()
	b.ReportMetric(rate, "committed-tx/s")
	b.ReportMetric(checkRate, "checktx/s")
	b.ReportMetric(rate/checkRate, "x-checktx")
	b.ReportMetric(float64(committed)/float64(blocks), "tx/block")
	b.ReportMetric(span.Seconds()/float64(blocks), "s/block")
}

// checkTxRate is the baseline: CheckTx on a fresh ledger (in-memory store, same genesis)
// for txs it has never seen, one goroutine.
func checkTxRate(b *testing.B, g ledger.Genesis, txs [][]byte) float64 {
	st := store.OpenMemory()
	app, err := ledger.New(st)
	if err != nil {
		b.Fatal(err)
	}
	gj, _ := json.Marshal(g)
	if _, _, err := app.InitChain(benchChainID, gj); err != nil {
		b.Fatal(err)
	}
	if _, err := app.FinalizeBlock(ledger.Block{Height: 1, Time: time.Unix(1, 0)}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := app.Commit(); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, tx := range txs {
		if r := app.CheckTx(tx); r.Code != ledger.CodeOK {
			b.Fatalf("CheckTx: %s", r.Log)
		}
	}
	return float64(len(txs)) / time.Since(start).Seconds()
}

// blockRun is what followBlocks saw: the txs of the blocks after the first that carried
// any (which filled while the previous block was built, so their count over the time
// between the blocks' headers is the steady rate).
type blockRun struct {
	steadyTxs, steadyBlocks int
	steadySpan              time.Duration
}

// followBlocks reads block headers after h0 until want txs have been committed. It reads
// only headers (BlockchainInfo): loading whole blocks would take CPU from the chain.
func followBlocks(ctx context.Context, b *testing.B, c *Client, h0 int64, want int) blockRun {
	var r blockRun
	var first time.Time
	seen := 0
	for h := h0 + 1; seen < want; {
		cur, err := c.Height(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if cur < h {
			select {
			case <-ctx.Done():
				b.Fatalf("%d of %d txs committed: %v", seen, want, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		info, err := c.rpc.(rpcclient.Client).BlockchainInfo(ctx, h, cur)
		if err != nil {
			b.Fatal(err)
		}
		for i := len(info.BlockMetas) - 1; i >= 0; i-- { // newest first
			m := info.BlockMetas[i]
			n := m.NumTxs
			seen += n
			switch {
			case n > 0 && first.IsZero():
				first = m.Header.Time
			case n > 0:
				r.steadyTxs, r.steadyBlocks = r.steadyTxs+n, r.steadyBlocks+1
				r.steadySpan = m.Header.Time.Sub(first)
			}
			h = m.Header.Height + 1
		}
	}
	if r.steadyBlocks == 0 {
		b.Fatal("all txs fit in one block: send more")
	}
	return r
}

// BenchmarkSignerOneKey sends txs from one key, each through its own Submit call at once
// (as the router's jobs do), on a single-validator chain with 250 ms blocks, and reports
// how many blocks they took and how many shared a block. The baseline, in the same run, is
// the strict signer: one tx per key per block.
//
//	go test ./internal/chain -run '^$' -bench SignerOneKey -benchtime 1x
func BenchmarkSignerOneKey(b *testing.B) {
	const txs = 48
	for _, mode := range []struct {
		name   string
		strict bool
	}{{"strict", true}, {"pipelined", false}} {
		b.Run(mode.name, func(b *testing.B) {
			alice, bob := testKey(1), testKey(2)
			home := b.TempDir()
			vk, err := InitHome(home)
			if err != nil {
				b.Fatal(err)
			}
			g := ledger.Genesis{
				Supply:     11_000 * ledger.UomniPerOMNI,
				Params:     ledger.DefaultParams(),
				Accounts:   []ledger.GenesisAccount{{Address: keys.AddressOfKey(alice), Balance: 1_000 * ledger.UomniPerOMNI}},
				Validators: []ledger.Validator{{Address: keys.AddressOfKey(testKey(9)), PubKey: vk.PubKey, Stake: 10_000 * ledger.UomniPerOMNI}},
			}
			if err := WriteGenesis([]string{home}, benchChainID, time.Now(), []ValidatorKey{vk}, g); err != nil {
				b.Fatal(err)
			}
			n, err := New(Options{Home: home, BlockTime: 250 * time.Millisecond, EmptyBlockInterval: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := n.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			s := NewSignerWith(n.Client(), alice, benchChainID, SignerOptions{Strict: mode.strict})
			heights := map[int64]int{}
			var took time.Duration
			b.ResetTimer()
			for range b.N {
				out := make([]Committed, txs)
				errs := make([]error, txs)
				var wg sync.WaitGroup
				start := time.Now()
				for i := range txs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						out[i], errs[i] = s.Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(bob), Amount: uint64(i + 1)}})
					}()
				}
				wg.Wait()
				took += time.Since(start)
				for i, err := range errs {
					if err != nil {
						b.Fatalf("tx %d: %v", i, err)
					}
					heights[out[i].Height]++
				}
			}
			b.StopTimer()
			most := 0
			for _, c := range heights {
				most = max(most, c)
			}
			b.ReportMetric(float64(txs*b.N)/float64(len(heights)), "tx/block")
			b.ReportMetric(float64(most), "max-tx/block")
			b.ReportMetric(float64(txs*b.N)/took.Seconds(), "committed-tx/s")
		})
	}
}
