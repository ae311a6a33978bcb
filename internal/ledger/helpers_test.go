package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

const testChain = "omnisync-test"

func key(n byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return ed25519.NewKeyFromSeed(seed)
}

func addr(k ed25519.PrivateKey) keys.Address { return keys.AddressOfKey(k) }

func pub(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }

const omni = UomniPerOMNI

// harness drives an App block by block, signing with tracked sequences.
type harness struct {
	t      testing.TB
	app    *App
	store  *memStore
	height int64
	now    time.Time
	seqs   map[keys.Address]uint64
}

var (
	consumerKey  = key(1)
	node1Key     = key(2)
	node2Key     = key(3)
	routerKey    = key(4)
	validatorKey = key(5)
	strangerKey  = key(6)
)

func testGenesis() Genesis {
	p := DefaultParams()
	p.Routers = []keys.Address{addr(routerKey)}
	g := Genesis{
		Params: p,
		Accounts: []GenesisAccount{
			{Address: addr(consumerKey), Balance: 10_000 * omni},
			{Address: addr(node1Key), Balance: 1_000 * omni},
			{Address: addr(node2Key), Balance: 1_000 * omni},
		},
		Validators: []Validator{{Address: addr(validatorKey), PubKey: pub(validatorKey), Stake: 10_000 * omni}},
		Pools:      map[string]uint64{PoolRewards: 1_000_000 * omni},
	}
	for _, a := range g.Accounts {
		g.Supply += a.Balance
	}
	g.Supply += 10_000*omni + 1_000_000*omni
	return g
}

func newHarness(t testing.TB, g Genesis) *harness {
	t.Helper()
	st := newMemStore()
	app, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(g)
	if _, _, err := app.InitChain(testChain, gj); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: app, store: st, now: time.Unix(1_700_000_000, 0), seqs: map[keys.Address]uint64{}}
	h.block() // commit genesis as height 1
	return h
}

func (h *harness) sign(k ed25519.PrivateKey, m Msg) []byte {
	h.t.Helper()
	tx, err := SignTx(k, testChain, h.seqs[addr(k)], m)
	if err != nil {
		h.t.Fatal(err)
	}
	return tx
}

// block finalizes and commits txs; sequences advance for txs that succeeded.
func (h *harness) block(txs ...[]byte) []TxResult {
	h.t.Helper()
	h.height++
	h.now = h.now.Add(time.Second)
	res, err := h.app.FinalizeBlock(Block{Height: h.height, Time: h.now, Hash: []byte(fmt.Sprintf("block-%d", h.height)), Txs: txs})
	if err != nil {
		h.t.Fatal(err)
	}
	for i, r := range res.TxResults {
		if r.Code == CodeOK {
			tx, _ := DecodeTx(txs[i])
			h.seqs[tx.Signer]++
		}
	}
	if _, _, err := h.app.Commit(); err != nil {
		h.t.Fatal(err)
	}
	return res.TxResults
}

// do runs one tx in its own block and returns its result.
func (h *harness) do(k ed25519.PrivateKey, m Msg) TxResult {
	h.t.Helper()
	return h.block(h.sign(k, m))[0]
}

func (h *harness) mustDo(k ed25519.PrivateKey, m Msg) {
	h.t.Helper()
	if r := h.do(k, m); r.Code != CodeOK {
		h.t.Fatalf("tx failed: code %d: %s", r.Code, r.Log)
	}
}

func query[T any](h *harness, path string) T {
	h.t.Helper()
	b, err := h.app.Query(path)
	if err != nil {
		h.t.Fatalf("query %s: %v", path, err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *harness) balance(k ed25519.PrivateKey) uint64 {
	return query[Account](h, "account/"+string(addr(k))).Balance
}

// supply reads the raw tracked supply (Liquid includes vesting-locked balances).
func (h *harness) supply() Supply {
	h.t.Helper()
	view, _ := h.store.Committed()
	sp, _, err := getJSON[Supply](view, keySupply)
	if err != nil {
		h.t.Fatal(err)
	}
	return sp
}

// stateHash hashes the committed state except the block time, which every block writes:
// "a rejected tx changes nothing" compares these.
func (h *harness) stateHash() []byte {
	h.t.Helper()
	sum := sha256.New()
	view, _ := h.store.Committed()
	_ = view.Iterate(nil, func(k, v []byte) bool {
		if string(k) != string(keyBlockTime) {
			sum.Write(k)
			sum.Write(v)
		}
		return true
	})
	return sum.Sum(nil)
}

// checkBooks recomputes every bucket from the stored records and compares them with the
// tracked supply and with the genesis total.
func (h *harness) checkBooks() {
	h.t.Helper()
	view, _ := h.store.Committed()
	var liquid, staked, unbonding, escrowed uint64
	iter := func(prefix []byte, fn func(b []byte)) {
		_ = view.Iterate(prefix, func(_, v []byte) bool { fn(v); return true })
	}
	iter(prefixAcct, func(b []byte) {
		var a Account
		_ = json.Unmarshal(b, &a)
		liquid += a.Balance
	})
	iter(prefixNode, func(b []byte) {
		var n Node
		_ = json.Unmarshal(b, &n)
		staked += n.Stake
	})
	iter(prefixVal, func(b []byte) {
		var v Validator
		_ = json.Unmarshal(b, &v)
		staked += v.Stake
	})
	iter([]byte("unbondacct/"), func(b []byte) {
		var u Unbonding
		_ = json.Unmarshal(b, &u)
		unbonding += u.Amount
	})
	iter(prefixJob, func(b []byte) {
		var j Job
		_ = json.Unmarshal(b, &j)
		if j.Open() {
			escrowed += j.Budget
		}
	})
	sp := h.supply()
	if sp.Liquid != liquid || sp.Staked != staked || sp.Unbonding != unbonding || sp.Escrowed != escrowed {
		h.t.Fatalf("tracked supply %+v disagrees with records: liquid %d staked %d unbonding %d escrowed %d", sp, liquid, staked, unbonding, escrowed)
	}
	total, err := sp.Total()
	if err != nil || total != sp.Genesis {
		h.t.Fatalf("supply identity broken: buckets add to %d, genesis %d (%v)", total, sp.Genesis, err)
	}
}

var registerMsg = Msg{RegisterNode: &MsgRegisterNode{
	Stake: 500 * omni, PricePerHour: 2 * omni,
	Hardware: Hardware{GPUModel: "RTX 4090", GPUs: 1, VRAMMiB: 24576, TFLOPSMilli: 82_600, Region: "eu"},
}}

func createMsg(budget uint64) Msg {
	return Msg{CreateJob: &MsgCreateJob{
		SpecHash: "sha256:" + fmt.Sprintf("%064x", budget), Budget: budget,
		MaxPricePerHour: 3 * omni, Verification: VerifyFreivalds, TimeoutSeconds: 600,
	}}
}

const digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
