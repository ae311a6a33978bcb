package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

const testChain = "omnisync-test"

// aTranscript stands for a check's transcript (MsgAttest.Transcript) where a test's pass
// needs one and nothing reads it.
const aTranscript = "sha256:7777777777777777777777777777777777777777777777777777777777777777"

func key(n byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return ed25519.NewKeyFromSeed(seed)
}

func addr(k ed25519.PrivateKey) keys.Address { return keys.AddressOfKey(k) }

func pub(k ed25519.PrivateKey) []byte { return k.Public().(ed25519.PublicKey) }

const omni = UomniPerOMNI

// genesisUnix is the harness's genesis time; every block is at least a second later.
const genesisUnix = 1_700_000_000

// harness drives an App block by block, signing with tracked sequences.
type harness struct {
	t      testing.TB
	app    *App
	store  Store
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
	node3Key     = key(10) // a third node, for redundant jobs' replicas
	node4Key     = key(11) // and a fourth, one too many
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

// Accounts richGenesis adds: a second validator (genesis or joining later, each with its
// own consensus key) and a team member whose grant vests after a cliff.
var (
	validator2Key = key(7)
	vesterKey     = key(8)
	cons2Key      = key(17) // validator2's consensus key
	consVestKey   = key(18) // the vester's consensus key, should it stake as a validator
)

// Vesting in richGenesis: 40,000 OMNI locked until ten minutes after genesis, then
// released linearly over the next fifty (the team's 6-month cliff and 36-month vest,
// scaled down so a test sees every phase).
var vesterGrant = Vesting{Total: 40_000 * omni, CliffUnix: genesisUnix + 600, EndUnix: genesisUnix + 3600}

// richGenesis is testGenesis plus the second validator's, the vester's and a third node's
// funds, a funded treasury, and short periods (unbonding, voting, quarters) so that random runs see them
// end.
func richGenesis() Genesis {
	g := testGenesis()
	g.Params.UnbondingSeconds = 30
	g.Params.GovVotingBlocks = 6
	g.Params.QuarterBlocks = 25
	g.Accounts = append(g.Accounts,
		GenesisAccount{Address: addr(validator2Key), Balance: 30_000 * omni},
		GenesisAccount{Address: addr(vesterKey), Balance: 50_000 * omni, Vesting: &vesterGrant},
		GenesisAccount{Address: addr(node3Key), Balance: 1_000 * omni},
	)
	g.Pools[PoolEcosystem] = 100_000 * omni
	return withSupply(g)
}

// withSupply sets a genesis's declared supply to what it allocates.
func withSupply(g Genesis) Genesis {
	g.Supply = 0
	for _, a := range g.Accounts {
		g.Supply += a.Balance
	}
	for _, v := range g.Validators {
		g.Supply += v.Stake
	}
	for _, v := range g.Pools {
		g.Supply += v
	}
	return g
}

func newHarness(t testing.TB, g Genesis) *harness {
	t.Helper()
	return newHarnessOn(t, g, newMemStore())
}

// newHarnessOn runs the ledger over st (the real IAVL store in package ledger_test).
func newHarnessOn(t testing.TB, g Genesis, st Store) *harness {
	t.Helper()
	app, err := New(st)
	if err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(g)
	if _, _, err := app.InitChain(testChain, gj); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, app: app, store: st, now: time.Unix(genesisUnix, 0), seqs: map[keys.Address]uint64{}}
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

// block finalizes and commits txs one second after the last block; sequences advance for
// txs that succeeded.
func (h *harness) block(txs ...[]byte) []TxResult {
	h.t.Helper()
	return h.finalize(h.next(time.Second, txs...)).TxResults
}

// next is the block after the last one, dt later.
func (h *harness) next(dt time.Duration, txs ...[]byte) Block {
	return Block{Height: h.height + 1, Time: h.now.Add(dt), Hash: []byte(fmt.Sprintf("block-%d", h.height+1)), Txs: txs}
}

// finalize runs and commits b (which must be the next height) and checks that the hash
// FinalizeBlock reports is the one Commit persists.
func (h *harness) finalize(b Block) BlockResult {
	h.t.Helper()
	res, err := h.app.FinalizeBlock(b)
	if err != nil {
		h.t.Fatal(err)
	}
	h.height, h.now = b.Height, b.Time
	for i, r := range res.TxResults {
		if r.Code == CodeOK {
			tx, _ := DecodeTx(b.Txs[i])
			h.seqs[tx.Signer]++
		}
	}
	height, hash, err := h.app.Commit()
	if err != nil {
		h.t.Fatal(err)
	}
	if height != b.Height || !bytes.Equal(hash, res.AppHash) {
		h.t.Fatalf("commit at %d: height %d, hash %x, FinalizeBlock said %x", b.Height, height, hash, res.AppHash)
	}
	return res
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
	sp, _, err := getRecord[Supply](view, keySupply)
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
// tracked supply and with the genesis total. It also checks that every index agrees with
// the records it indexes (unbonding queue and per-account entries, job expiry queue and
// open jobs, consensus keys and validators), that no amount wrapped below zero (none
// exceeds the whole supply) and that the supply queries report adds up.
func (h *harness) checkBooks() {
	h.t.Helper()
	view, _ := h.store.Committed()
	sp := h.supply()
	var liquid, staked, unbonding, queued, escrowed uint64
	sane := func(what string, v uint64) uint64 {
		h.t.Helper()
		if v > sp.Genesis {
			h.t.Fatalf("%s is %d, more than the whole supply: an amount wrapped below zero", what, v)
		}
		return v
	}
	each := func(prefix []byte, fn func(k string, b []byte) error) {
		h.t.Helper()
		var bad error
		err := view.Iterate(prefix, func(k, v []byte) bool {
			if err := fn(string(k), v); err != nil {
				bad = fmt.Errorf("record %q: %w", k, err)
				return false
			}
			return true
		})
		if err == nil {
			err = bad
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	get := func(key []byte, v any) error {
		b, err := view.Get(key)
		if err != nil || b == nil {
			return fmt.Errorf("missing %q (%v)", key, err)
		}
		switch v := v.(type) {
		case *Unbonding:
			return decodeRecord(b, v)
		case *Job:
			return decodeRecord(b, v)
		}
		return fmt.Errorf("cannot decode %T", v)
	}
	each(prefixAcct, func(k string, b []byte) error {
		var a Account
		err := decodeRecord(b, &a)
		liquid += sane("balance of "+k, a.Balance)
		return err
	})
	each(prefixNode, func(k string, b []byte) error {
		var n Node
		err := decodeRecord(b, &n)
		staked += sane("stake of "+k, n.Stake)
		return err
	})
	each(prefixVal, func(k string, b []byte) error {
		var v Validator
		if err := decodeRecord(b, &v); err != nil {
			return err
		}
		staked += sane("stake of "+k, v.Stake)
		if owner, err := view.Get(valConsKey(consAddress(v.PubKey))); err != nil || string(owner) != string(v.Address) {
			return fmt.Errorf("consensus key indexed to %q, want %s (%v)", owner, v.Address, err)
		}
		return nil
	})
	each([]byte("unbondacct/"), func(k string, b []byte) error {
		var u, q Unbonding
		if err := decodeRecord(b, &u); err != nil {
			return err
		}
		unbonding += sane("unbonding "+k, u.Amount)
		if err := get(unbondKey(u.MatureUnix, u.ID), &q); err != nil || q != u {
			return fmt.Errorf("queue entry %+v disagrees with %+v (%v)", q, u, err)
		}
		return nil
	})
	each(prefixUnbond, func(k string, b []byte) error {
		var u Unbonding
		err := decodeRecord(b, &u)
		queued += sane("queued "+k, u.Amount)
		return err
	})
	open := 0
	each(prefixJob, func(k string, b []byte) error {
		var j Job
		if err := decodeRecord(b, &j); err != nil {
			return err
		}
		if w := j.FoundWrong; w != nil && (j.Settlement == nil || w.Compensated > w.Slashed || w.Compensated > j.Settlement.Cost) {
			return fmt.Errorf("found wrong %+v gives back more than the node lost or the consumer paid (settlement %+v)", w, j.Settlement)
		}
		if j.Open() {
			open++
			escrowed += sane("budget of "+k, j.Budget)
			if v, err := view.Get(jobExpKey(j.DeadlineUnix, j.ID)); err != nil || v == nil {
				return fmt.Errorf("open job has no expiry entry (%v)", err)
			}
		}
		return nil
	})
	expiring := 0
	each(prefixJobExp, func(k string, _ []byte) error {
		var j Job
		expiring++
		if err := get(jobKey(k[len(prefixJobExp)+17:]), &j); err != nil || !j.Open() {
			return fmt.Errorf("expiry entry for a job that is not open: %s (%v)", j.Status, err)
		}
		return nil
	})
	for name, v := range sp.Pools {
		sane("pool "+name, v)
	}
	if sp.Liquid != liquid || sp.Staked != staked || sp.Unbonding != unbonding || sp.Escrowed != escrowed {
		h.t.Fatalf("tracked supply %+v disagrees with records: liquid %d staked %d unbonding %d escrowed %d", sp, liquid, staked, unbonding, escrowed)
	}
	if queued != unbonding || expiring != open {
		h.t.Fatalf("indexes disagree: unbonding queue holds %d, accounts %d; %d expiry entries for %d open jobs", queued, unbonding, expiring, open)
	}
	total, err := sp.Total()
	if err != nil || total != sp.Genesis {
		h.t.Fatalf("supply identity broken: buckets add to %d, genesis %d (%v)", total, sp.Genesis, err)
	}
	if sum, err := query[SupplyView](h, "supply").Sum(); err != nil || sum != sp.Genesis {
		h.t.Fatalf("supply query adds up to %d, genesis %d (%v)", sum, sp.Genesis, err)
	}
}

var registerMsg = Msg{RegisterNode: &MsgRegisterNode{
	Stake: 500 * omni, PricePerHour: 2 * omni,
	Hardware: Hardware{GPUModel: "RTX 4090", GPUs: 1, VRAMMiB: 24576, TFLOPSMilli: 82_600, Region: "eu"},
}}

// ampleOps is an operation count that bounds the billing of no test job that does not mean
// it to: 2^60 operations take 3.9 hours at registerMsg's 82.6 TFLOPS, past any test
// job's timeout.
const ampleOps = 1 << 60

func createMsg(budget uint64) Msg {
	return Msg{CreateJob: &MsgCreateJob{
		SpecHash: "sha256:" + fmt.Sprintf("%064x", budget), Budget: budget,
		MaxPricePerHour: 3 * omni, Verification: VerifyFreivalds, TimeoutSeconds: 600,
	}}
}

// redundantMsg is createMsg for a job verified by redundant execution.
func redundantMsg(budget uint64) Msg {
	m := createMsg(budget)
	m.CreateJob.Verification = VerifyRedundant
	return m
}

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)
