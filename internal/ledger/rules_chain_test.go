package ledger

import (
	"crypto/ed25519"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// The money rules of rules_test.go once more, through signed transactions in a running
// ledger, with the same hand-worked literals: a rule changed in a handler, not in the
// pure function, fails here.

// at finalizes and commits the next block at block time unix.
func at(h *harness, unix int64, txs ...[]byte) BlockResult {
	h.t.Helper()
	return h.finalize(h.next(time.Unix(unix, 0).Sub(h.now), txs...))
}

func TestTransferBurnRoundsUpOnChain(t *testing.T) {
	h := newHarness(t, testGenesis())
	for _, c := range []struct{ amount, burned, received uint64 }{
		{1, 1, 0}, {49, 1, 48}, {50, 1, 49}, {51, 2, 49}, {12_345, 247, 12_098},
	} {
		sender, recipient, burned := h.balance(consumerKey), h.balance(strangerKey), h.supply().Burned
		h.mustDo(consumerKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: c.amount}})
		if got := sender - h.balance(consumerKey); got != c.amount {
			t.Errorf("transfer of %d cost the sender %d", c.amount, got)
		}
		if got := h.balance(strangerKey) - recipient; got != c.received {
			t.Errorf("transfer of %d delivered %d, want %d", c.amount, got, c.received)
		}
		if got := h.supply().Burned - burned; got != c.burned {
			t.Errorf("transfer of %d burned %d, want %d", c.amount, got, c.burned)
		}
	}
	h.checkBooks()
}

// TestSettlementAndFeeSplitOnChain: a job that costs 555.5 uomni, settled by two
// validators staking 10,000 and 20,000 OMNI, beside a jailed one staking 30,000 that
// neither shares the fees nor dilutes them. Each rounding decides a number here.
func TestSettlementAndFeeSplitOnChain(t *testing.T) {
	g := testGenesis()
	g.Validators = append(g.Validators,
		Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 20_000 * omni},
		Validator{Address: addr(vesterKey), PubKey: pub(consVestKey), Stake: 30_000 * omni})
	h := newHarness(t, withSupply(g))
	b := h.next(time.Second)
	b.Misbehavior = []Misbehavior{{ConsensusAddress: consAddress(pub(consVestKey)), Height: h.height}}
	h.finalize(b)
	if v := query[Validator](h, "validator/"+string(addr(vesterKey))); !v.Jailed {
		t.Fatalf("evidence did not jail %+v", v)
	}
	h.mustDo(node1Key, registerMsg) // 2 OMNI/h
	for _, want := range []struct{ v1, v2, pool uint64 }{
		{0, 1, 1}, // the pool's 2 pays 2/3 → 0 and 4/3 → 1; 1 waits for the next block
		{1, 3, 0}, // 1 + 2 = 3 pays 1 and 2
	} {
		consumer0, node0, sp0 := h.balance(consumerKey), h.balance(node1Key), h.supply()
		id := runJob(t, h, omni, 1000)
		h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
		h.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})

		j := query[Job](h, "job/"+id)
		// 2 OMNI/h for 1 s is 555.5 → 556; burn 11.12 → 12; fee 27.8 → 27; the emission
		// of 1 OMNI per GPU-hour for 1 s is 277.7 → 277.
		s := Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: 999_444, Reward: 277, Height: h.height}
		if j.Status != JobSettled || j.Settlement == nil || !reflect.DeepEqual(*j.Settlement, s) {
			t.Fatalf("job %s settled %+v, want %+v", j.Status, j.Settlement, s)
		}
		sp := h.supply()
		checks := []struct {
			what      string
			got, want uint64
		}{
			{"node paid", h.balance(node1Key) - node0, 517 + 277},
			{"consumer charged", consumer0 - h.balance(consumerKey), 556},
			{"burned", sp.Burned - sp0.Burned, 12},
			{"to the buy-back fund (15% of 27)", sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback], 4},
			{"to the ecosystem treasury", sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem], 21},
			{"emitted from network rewards", sp0.Pools[PoolRewards] - sp.Pools[PoolRewards], 277},
			{"validator rewards left in the pool", sp.Pools[PoolValidatorRewards], want.pool},
			{"validator 1 (10,000 OMNI) paid in all", h.balance(validatorKey), want.v1},
			{"validator 2 (20,000 OMNI) paid in all", h.balance(validator2Key), want.v2},
			{"jailed validator paid", h.balance(vesterKey), 0},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
			}
		}
		h.checkBooks()
	}
}

// fraudHarness has three validators (validatorKey with 10,000 OMNI and 19 uomni, so that
// its slash rounds) and node1 with 500,000,026 uomni staked and 100,000,011 unbonding.
// False attestations and double signs are slashed at different rates so neither can
// stand in for the other.
func fraudHarness(t *testing.T) *harness {
	t.Helper()
	g := testGenesis()
	g.Params.FalseAttestSlashBP, g.Params.DoubleSignSlashBP = 300, 700
	g.Validators = []Validator{
		{Address: addr(validatorKey), PubKey: pub(validatorKey), Stake: 10_000_000_019},
		{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 10_000 * omni},
		{Address: addr(vesterKey), PubKey: pub(consVestKey), Stake: 10_000 * omni},
	}
	h := newHarness(t, withSupply(g))
	reg := *registerMsg.RegisterNode
	reg.Stake = 600_000_037
	h.mustDo(node1Key, Msg{RegisterNode: &reg})
	h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 100_000_011}})
	return h
}

// TestFraudSlashOnChain: a node's wrong result is caught by two of three validators. The
// node loses 10% of its stake and of its unbonding stake (each rounded down); half of
// that (rounded down) is split evenly between the two catchers, and the rest, the odd
// uomni of the even split included, burns; the validator that passed the wrong result
// loses 3% of its stake (rounded down), burned; the consumer gets the budget back.
func TestFraudSlashOnChain(t *testing.T) {
	h := fraudHarness(t)
	consumer0, burned0 := h.balance(consumerKey), h.supply().Burned
	id := runJob(t, h, omni, 1000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
	h.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: false}})
	if j := query[Job](h, "job/"+id); j.Status != JobComputed {
		t.Fatalf("one fail in three decided the job: %s", j.Status)
	}
	h.mustDo(vesterKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: false}})
	if j := query[Job](h, "job/"+id); j.Status != JobFailed {
		t.Fatalf("two fails in three: job %s", j.Status)
	}
	// Slashed: 50,000,002 (of 500,000,026) + 10,000,001 (of 100,000,011) = 60,000,003;
	// verifiers' half 30,000,001 → 15,000,000 each; burned 60,000,003 - 30,000,000.
	n := query[Node](h, "node/"+string(addr(node1Key)))
	ub := query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))
	v1 := query[Validator](h, "validator/"+string(addr(validatorKey)))
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"node stake", n.Stake, 450_000_024},
		{"node unbonding", ub[0].Amount, 90_000_010},
		{"catcher 1 reward", h.balance(validator2Key), 15_000_000},
		{"catcher 2 reward", h.balance(vesterKey), 15_000_000},
		{"liar stake (3% of 10,000,000,019 is 300,000,000.57)", v1.Stake, 9_700_000_019},
		{"liar balance", h.balance(validatorKey), 0},
		{"burned", h.supply().Burned - burned0, 30_000_003 + 300_000_000},
		{"consumer balance", h.balance(consumerKey), consumer0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	if n.Status != NodeInactive {
		t.Errorf("node left under the minimum stake is %s", n.Status)
	}
	h.checkBooks()
}

// TestDoubleSignSlashRoundsDownOnChain: double_sign_slash_bp (7% here) of the bonded and of
// the unbonding stake, each rounded down, burns.
func TestDoubleSignSlashRoundsDownOnChain(t *testing.T) {
	g := testGenesis()
	g.Params.FalseAttestSlashBP, g.Params.DoubleSignSlashBP = 300, 700
	g.Validators = append(g.Validators, Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 12_000_000_013})
	h := newHarness(t, withSupply(g))
	h.mustDo(validator2Key, Msg{Unstake: &MsgUnstake{Role: RoleValidator, Amount: 2_000_000_001}})
	burned := h.supply().Burned
	b := h.next(time.Second)
	b.Misbehavior = []Misbehavior{{ConsensusAddress: consAddress(pub(cons2Key)), Height: h.height}}
	h.finalize(b)
	// 7% of 10,000,000,012 is 700,000,000.84; of 2,000,000,001 it is 140,000,000.07.
	v := query[Validator](h, "validator/"+string(addr(validator2Key)))
	ub := query[[]Unbonding](h, "unbonding/"+string(addr(validator2Key)))
	if v.Stake != 9_300_000_012 || !v.Jailed || len(ub) != 1 || ub[0].Amount != 1_860_000_001 {
		t.Fatalf("after double sign: %+v, unbonding %+v", v, ub)
	}
	if got := h.supply().Burned - burned; got != 840_000_000 {
		t.Fatalf("burned %d, want 840000000", got)
	}
	h.checkBooks()
}

// TestVestingBoundariesOnChain: the vester holds 50,000 OMNI of which 40,000 vest linearly
// over [genesis+600 s, genesis+3600 s). What it may transfer, at block times around the
// cliff and the end, to the uomni.
func TestVestingBoundariesOnChain(t *testing.T) {
	cliff, end := vesterGrant.CliffUnix, vesterGrant.EndUnix
	if cliff != genesisUnix+600 || end != genesisUnix+3600 {
		t.Fatalf("vesterGrant changed: %+v", vesterGrant)
	}
	for _, c := range []struct {
		name   string
		now    int64
		amount uint64
		code   Code
	}{
		{"a second before the cliff, all 40,000 locked", cliff - 1, 10_000*omni + 1, CodeLocked},
		{"a second before the cliff, the unlocked 10,000", cliff - 1, 10_000 * omni, CodeOK},
		{"at the cliff nothing has vested yet", cliff, 10_000*omni + 1, CodeLocked},
		{"a second after the cliff, 13,333,333 vested", cliff + 1, 10_013_333_333, CodeOK},
		{"a second after the cliff, not a uomni more", cliff + 1, 10_013_333_334, CodeLocked},
		{"a second before the end, 13,333,334 locked", end - 1, 49_986_666_666, CodeOK},
		{"a second before the end, not a uomni more", end - 1, 49_986_666_667, CodeLocked},
		{"at the end everything is free", end, 50_000 * omni, CodeOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, richGenesis())
			tx := h.sign(vesterKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: c.amount}})
			if r := at(h, c.now, tx).TxResults[0]; r.Code != c.code {
				t.Fatalf("transfer of %d at cliff%+d: code %d (%s), want %d", c.amount, c.now-cliff, r.Code, r.Log, c.code)
			}
		})
	}
}

// TestTeamVestingOnChain runs the whitepaper's genesis and reads the team's locked tokens
// at the block times its schedule turns on.
func TestTeamVestingOnChain(t *testing.T) {
	team := addr(key(40))
	g, err := Tokenomics(genesisUnix, DefaultParams(), Beneficiaries{
		Team: []keys.Address{team}, Investors: []keys.Address{addr(key(41))},
		PublicSale: []keys.Address{addr(key(43))}, Liquidity: []keys.Address{addr(key(44))},
		Validators: testGenesis().Validators,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, g)
	const total = 150_000_000_000_000
	cliff, end := int64(genesisUnix+15_778_800), int64(genesisUnix+110_451_600)
	for _, c := range []struct {
		now    int64
		locked uint64
	}{
		{cliff - 1, total}, {cliff, total}, {cliff + 1, total - 1_584_404}, {end - 1, 1_584_405}, {end, 0},
	} {
		at(h, c.now)
		if v := query[AccountView](h, "account/"+string(team)); v.Locked != c.locked || v.Spendable != total-c.locked {
			t.Errorf("team at genesis%+d: locked %d, spendable %d; want %d locked", c.now-genesisUnix, v.Locked, v.Spendable, c.locked)
		}
	}
	h.checkBooks()
}

// TestUnbondingMaturesExactlyOnChain: unstaked tokens come back in the first block whose
// time is at least 21 days (1,814,400 s) after the unstake's block, not a second earlier.
func TestUnbondingMaturesExactlyOnChain(t *testing.T) {
	h := newHarness(t, testGenesis())
	reg := *registerMsg.RegisterNode
	reg.Stake = 600 * omni
	h.mustDo(node1Key, Msg{RegisterNode: &reg})
	h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 100 * omni}})
	unstaked, balance := h.now.Unix(), h.balance(node1Key)
	ub := query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))
	if len(ub) != 1 || ub[0].MatureUnix != unstaked+1_814_400 {
		t.Fatalf("unbonding %+v, want one maturing at %d", ub, unstaked+1_814_400)
	}
	at(h, unstaked+1_814_399)
	if len(query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))) != 1 || h.balance(node1Key) != balance {
		t.Fatal("unbonding released a second early")
	}
	at(h, unstaked+1_814_400)
	if len(query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))) != 0 || h.balance(node1Key) != balance+100*omni {
		t.Fatal("unbonding not released at maturity")
	}
	h.checkBooks()
}

// TestSettlementConservesOnChainRandom settles jobs of random budgets and GPU times on two
// nodes with different prices and checks that every settlement divides its escrow exactly
// as the oracle says, that the tokens land where the settlement says, and that the books
// balance after each.
func TestSettlementConservesOnChainRandom(t *testing.T) {
	g := testGenesis()
	g.Validators = append(g.Validators, Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 20_000 * omni})
	h := newHarness(t, withSupply(g))
	h.mustDo(node1Key, registerMsg)
	reg := *registerMsg.RegisterNode
	reg.PricePerHour = 1_234_567
	h.mustDo(node2Key, Msg{RegisterNode: &reg})
	rng := rand.New(rand.NewPCG(5, 4))
	for range 20 {
		nodeKey := []ed25519.PrivateKey{node1Key, node2Key}[rng.IntN(2)]
		budget, millis := 1+rng.Uint64N(3*omni), rng.Uint64N(700_000)
		consumer0, node0, sp0 := h.balance(consumerKey), h.balance(nodeKey), h.supply()
		vals0 := h.balance(validatorKey) + h.balance(validator2Key)
		id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
		h.mustDo(consumerKey, createMsg(budget))
		h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(nodeKey)}})
		h.mustDo(nodeKey, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: millis}})
		h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
		h.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})

		s := *query[Job](h, "job/"+id).Settlement
		price := query[Node](h, "node/"+string(addr(nodeKey))).PricePerHour
		billed := min(max(millis, 1000), 600_000)
		cost := min(ratio(price, billed, 3_600_000, true), budget)
		burn, fee := ratio(cost, 200, BasisPoints, true), ratio(cost, 500, BasisPoints, false)
		want := Settlement{BilledMillis: billed, Cost: cost, Burned: burn, Fee: fee, Paid: cost - burn - fee,
			Refunded: budget - cost, Reward: ratio(omni, billed, 3_600_000, false), Height: s.Height}
		if !reflect.DeepEqual(s, want) || s.Paid+s.Burned+s.Fee+s.Refunded != budget {
			t.Fatalf("budget %d, %d ms on %d/h: settled %+v, want %+v", budget, millis, price, s, want)
		}
		sp := h.supply()
		vals := h.balance(validatorKey) + h.balance(validator2Key)
		feeLanded := sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback] + sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem] +
			(vals - vals0) + sp.Pools[PoolValidatorRewards] - sp0.Pools[PoolValidatorRewards]
		switch {
		case h.balance(nodeKey)-node0 != s.Paid+s.Reward:
			t.Fatalf("node received %d, settlement %+v", h.balance(nodeKey)-node0, s)
		case consumer0-h.balance(consumerKey) != s.Cost:
			t.Fatalf("consumer paid %d, settlement %+v", consumer0-h.balance(consumerKey), s)
		case sp.Burned-sp0.Burned != s.Burned:
			t.Fatalf("burned %d, settlement %+v", sp.Burned-sp0.Burned, s)
		case feeLanded != s.Fee:
			t.Fatalf("fee pools and validators got %d, settlement %+v", feeLanded, s)
		case sp0.Pools[PoolRewards]-sp.Pools[PoolRewards] != s.Reward || sp.Escrowed != 0:
			t.Fatalf("reward pool paid %d, escrow %d, settlement %+v", sp0.Pools[PoolRewards]-sp.Pools[PoolRewards], sp.Escrowed, s)
		}
		h.checkBooks()
	}
}
