package ledger_test

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

const (
	benchChain = "omnisync-bench"
	// benchTranscript stands for a check's transcript in the benchmarks' passes.
	benchTranscript = "sha256:7777777777777777777777777777777777777777777777777777777777777777"
	omni            = ledger.UomniPerOMNI
)

// benchKey derives a deterministic key from an index.
func benchKey(i int) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	seed[31] = 0xbe
	return ed25519.NewKeyFromSeed(seed)
}

// chainBench is a ledger on the real Merkle store with many funded accounts, a router, one
// validator and some registered nodes; it tracks sequences itself (every tx it makes
// succeeds).
type chainBench struct {
	tb        testing.TB
	app       *ledger.App
	st        *timedStore
	accounts  []ed25519.PrivateKey
	addrs     []keys.Address
	seqs      map[keys.Address]uint64
	router    ed25519.PrivateKey
	validator ed25519.PrivateKey
	nodes     []ed25519.PrivateKey
	height    int64
	now       time.Time
	cursor    int
}

func newChainBench(tb testing.TB, nAccounts, nNodes int, onDisk bool) *chainBench {
	tb.Helper()
	c := &chainBench{tb: tb, seqs: map[keys.Address]uint64{}, now: time.Unix(1_700_000_000, 0)}
	c.router, c.validator = benchKey(1<<30), benchKey(1<<30+1)
	p := ledger.DefaultParams()
	p.Routers = []keys.Address{keys.AddressOfKey(c.router)}
	g := ledger.Genesis{Params: p, Pools: map[string]uint64{ledger.PoolRewards: 100_000_000 * omni}}
	fund := func(k ed25519.PrivateKey, amt uint64) {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: keys.AddressOfKey(k), Balance: amt})
	}
	for i := range nAccounts {
		k := benchKey(i)
		c.accounts, c.addrs = append(c.accounts, k), append(c.addrs, keys.AddressOfKey(k))
		fund(k, 1_000_000*omni)
	}
	for i := range nNodes {
		k := benchKey(1<<29 + i)
		c.nodes = append(c.nodes, k)
		fund(k, 1_000*omni)
	}
	fund(c.router, omni)
	g.Validators = []ledger.Validator{{Address: keys.AddressOfKey(c.validator), PubKey: c.validator.Public().(ed25519.PublicKey), Stake: 10_000 * omni}}
	for _, a := range g.Accounts {
		g.Supply += a.Balance
	}
	g.Supply += 10_000*omni + g.Pools[ledger.PoolRewards]
	if onDisk {
		st, err := store.Open(tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = st.Close() })
		c.st = &timedStore{Store: st}
	} else {
		c.st = &timedStore{Store: store.OpenMemory()}
	}
	app, err := ledger.New(c.st)
	if err != nil {
		tb.Fatal(err)
	}
	c.app = app
	gj, err := json.Marshal(g)
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := app.InitChain(benchChain, gj); err != nil {
		tb.Fatal(err)
	}
	c.commit(nil)
	var reg [][]byte
	for _, n := range c.nodes {
		reg = append(reg, c.sign(n, ledger.Msg{RegisterNode: &ledger.MsgRegisterNode{
			Stake: 500 * omni, PricePerHour: 2 * omni,
			Hardware: ledger.Hardware{GPUModel: "RTX 4090", GPUs: 1, VRAMMiB: 24576, TFLOPSMilli: 82_600, Region: "eu"},
		}}))
	}
	c.commit(reg)
	return c
}

// sign makes the signer's next tx.
func (c *chainBench) sign(k ed25519.PrivateKey, m ledger.Msg) []byte {
	a := keys.AddressOfKey(k)
	tx, err := ledger.SignTx(k, benchChain, c.seqs[a], m)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.seqs[a]++
	return tx
}

// checkAll runs every tx through CheckTx, as the mempool does before a block.
func (c *chainBench) checkAll(txs [][]byte) {
	for _, tx := range txs {
		if r := c.app.CheckTx(tx); r.Code != ledger.CodeOK {
			c.tb.Fatalf("CheckTx: %d %s", r.Code, r.Log)
		}
	}
}

// commit finalizes and commits one block, fails on any rejected tx and returns how long
// FinalizeBlock and Commit took.
func (c *chainBench) commit(txs [][]byte) (finalize, commit time.Duration) {
	c.height++
	c.now = c.now.Add(time.Second)
	start := time.Now()
	res, err := c.app.FinalizeBlock(ledger.Block{Height: c.height, Time: c.now, Hash: []byte(fmt.Sprint(c.height)), Txs: txs})
	finalize = time.Since(start)
	if err != nil {
		c.tb.Fatal(err)
	}
	for i, r := range res.TxResults {
		if r.Code != ledger.CodeOK {
			c.tb.Fatalf("tx %d: %d %s", i, r.Code, r.Log)
		}
	}
	start = time.Now()
	if _, _, err := c.app.Commit(); err != nil {
		c.tb.Fatal(err)
	}
	return finalize, time.Since(start)
}

// transfers signs n transfers, each from a different account to another.
func (c *chainBench) transfers(n int) [][]byte {
	txs := make([][]byte, n)
	for i := range txs {
		from := (c.cursor + i) % len(c.accounts)
		to := (from + len(c.accounts)/2 + 1) % len(c.accounts)
		txs[i] = c.sign(c.accounts[from], ledger.Msg{Transfer: &ledger.MsgTransfer{To: c.addrs[to], Amount: omni}})
	}
	c.cursor += n
	return txs
}

const specHash = "sha256:5555555555555555555555555555555555555555555555555555555555555555"
const digest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// computedJobs takes n jobs from many consumers through creation, assignment and result
// commitment (three committed blocks) and returns the attest txs that settle them.
func (c *chainBench) computedJobs(n int) [][]byte {
	ids := make([]string, n)
	var create, assign, result, attest [][]byte
	for i := range n {
		k := c.accounts[(c.cursor+i)%len(c.accounts)]
		a := keys.AddressOfKey(k)
		ids[i] = ledger.JobID(a, c.seqs[a])
		create = append(create, c.sign(k, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
			SpecHash: specHash, Budget: 5 * omni, MaxPricePerHour: 3 * omni, Verification: ledger.VerifyFreivalds, TimeoutSeconds: 3600,
		}}))
	}
	c.cursor += n
	for i, id := range ids {
		node := c.nodes[i%len(c.nodes)]
		assign = append(assign, c.sign(c.router, ledger.Msg{AssignJob: &ledger.MsgAssignJob{JobID: id, Node: keys.AddressOfKey(node), ScoreBP: 8000}}))
		result = append(result, c.sign(node, ledger.Msg{CommitResult: &ledger.MsgCommitResult{JobID: id, ResultDigest: digest, GPUMillis: 90_000}}))
		attest = append(attest, c.sign(c.validator, ledger.Msg{Attest: &ledger.MsgAttest{JobID: id, ResultDigest: digest, Pass: true, Ops: 1 << 60, Transcript: benchTranscript}}))
	}
	c.commit(create)
	c.commit(assign)
	c.commit(result)
	return attest
}

// verifyRate is the baseline: raw ed25519 verifications per second of transfer-sized
// messages on one core, measured in the same run.
func verifyRate(tb testing.TB) float64 {
	k := benchKey(0)
	msg := make([]byte, 160)
	sig := ed25519.Sign(k, msg)
	pub := k.Public().(ed25519.PublicKey)
	const n = 4000
	start := time.Now()
	for range n {
		if !ed25519.Verify(pub, msg, sig) {
			tb.Fatal("verify")
		}
	}
	return n / time.Since(start).Seconds()
}

// runBlocks times FinalizeBlock and Commit over b.N blocks of n txs each from gen; warm
// blocks pass CheckTx first (untimed), as every tx in a real block has. Besides tx/s it
// reports what bounds it: the share of the time spent inside the Merkle store, the keys
// each tx leaves for the tree to write, what that costs per key, and the share of
// FinalizeBlock spent waiting at its end for the background hashing to catch up.
func runBlocks(b *testing.B, c *chainBench, n int, warm bool, gen func(int) [][]byte) {
	baseline := verifyRate(b)
	var finalize, commit time.Duration
	var st storeTally
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		txs := gen(n)
		if warm {
			c.checkAll(txs)
		}
		c.st.tally = storeTally{}
		b.StartTimer()
		var f, cm time.Duration
		pprof.Do(context.Background(), timedLabel, func(context.Context) { f, cm = c.commit(txs) })
		finalize, commit = finalize+f, commit+cm
		st.add(c.st.tally)
	}
	b.StopTimer()
	txs := float64(n * b.N)
	rate := txs / (finalize + commit).Seconds()
	b.ReportMetric(rate, "tx/s")
	b.ReportMetric(txs/finalize.Seconds(), "finalize-tx/s")
	b.ReportMetric(rate/baseline, "x-verify")
	b.ReportMetric(100*st.spent.Seconds()/(finalize+commit).Seconds(), "%store")
	b.ReportMetric(float64(st.writes)/txs, "keys/tx")
	b.ReportMetric(float64(st.writeSpent.Microseconds())/float64(st.writes), "µs/key")
	b.ReportMetric(txs/(finalize+commit-st.spent).Seconds(), "ledger-only-tx/s")
	b.ReportMetric(100*st.hashWait.Seconds()/finalize.Seconds(), "%hash-wait")
}

// timedLabel marks the timed blocks in a CPU profile, apart from the setup blocks around
// them: go tool pprof -tagfocus=phase=timed.
var timedLabel = pprof.Labels("phase", "timed")

// storeTally is what the Merkle store did during timed blocks.
type storeTally struct {
	spent      time.Duration // every store call
	writeSpent time.Duration // Set, Delete, WorkingHash and Commit: the tree's write path
	hashWait   time.Duration // WorkingHash: waiting for the last writes to be hashed
	writes     int
}

func (t *storeTally) add(o storeTally) {
	t.spent, t.writeSpent, t.writes = t.spent+o.spent, t.writeSpent+o.writeSpent, t.writes+o.writes
	t.hashWait += o.hashWait
}

// timedStore wraps the Merkle store to measure the time the ledger spends in it.
type timedStore struct {
	*store.Store
	tally storeTally
}

func (s *timedStore) since(start time.Time, write bool) {
	d := time.Since(start)
	s.tally.spent += d
	if write {
		s.tally.writeSpent += d
	}
}

func (s *timedStore) Get(k []byte) ([]byte, error) {
	defer s.since(time.Now(), false)
	return s.Store.Get(k)
}

func (s *timedStore) Iterate(p []byte, fn func(k, v []byte) bool) error {
	defer s.since(time.Now(), false)
	return s.Store.Iterate(p, fn)
}

func (s *timedStore) Set(k, v []byte) error {
	defer s.since(time.Now(), true)
	s.tally.writes++
	return s.Store.Set(k, v)
}

func (s *timedStore) Stage(k string, v []byte) {
	defer s.since(time.Now(), true)
	s.tally.writes++
	s.Store.Stage(k, v)
}

func (s *timedStore) HashStaged() {
	defer s.since(time.Now(), true)
	s.Store.HashStaged()
}

func (s *timedStore) Delete(k []byte) error {
	defer s.since(time.Now(), true)
	s.tally.writes++
	return s.Store.Delete(k)
}

func (s *timedStore) WorkingHash() []byte {
	start := time.Now()
	defer func() {
		s.since(start, true)
		s.tally.hashWait += time.Since(start)
	}()
	return s.Store.WorkingHash()
}

func (s *timedStore) Commit() ([]byte, int64, error) {
	defer s.since(time.Now(), true)
	return s.Store.Commit()
}

// BenchmarkFinalizeBlock measures FinalizeBlock+Commit throughput on the real Merkle store
// (in memory and goleveldb) for blocks of transfers from many accounts and blocks of
// attestations that settle jobs, with the CheckTx signature cache warm (every tx passed
// CheckTx first, as in a real chain) and cold (FinalizeBlock verifies every signature).
// The baseline is the raw ed25519 verification rate on one core in the same run: a cold
// block cannot beat it, a warm one should.
func BenchmarkFinalizeBlock(b *testing.B) {
	const accounts, nodes, perBlock = 20_000, 100, 5_000
	for _, backend := range []string{"memdb", "goleveldb"} {
		for _, cache := range []string{"warm", "cold"} {
			b.Run(fmt.Sprintf("transfers/%s/%s", backend, cache), func(b *testing.B) {
				c := newChainBench(b, accounts, nodes, backend == "goleveldb")
				runBlocks(b, c, perBlock, cache == "warm", c.transfers)
			})
			b.Run(fmt.Sprintf("settlements/%s/%s", backend, cache), func(b *testing.B) {
				c := newChainBench(b, accounts, nodes, backend == "goleveldb")
				runBlocks(b, c, perBlock, cache == "warm", c.computedJobs)
			})
		}
	}
}

// BenchmarkCheckTx measures how fast the mempool can admit transfers it has never seen
// (every signature verified, the tx run against committed state). The baseline is the raw
// ed25519 verification rate in the same run: CheckTx costs a verification and a little.
func BenchmarkCheckTx(b *testing.B) {
	c := newChainBench(b, 20_000, 1, false)
	baseline := verifyRate(b)
	var elapsed time.Duration
	n := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		txs := c.transfers(5_000)
		b.StartTimer()
		start := time.Now()
		c.checkAll(txs)
		elapsed += time.Since(start)
		n += len(txs)
		b.StopTimer()
		c.commit(txs) // so the next round's sequences are the committed ones
		b.StartTimer()
	}
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "tx/s")
	b.ReportMetric(rate/baseline, "x-verify")
}
