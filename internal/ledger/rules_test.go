package ledger

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// The consensus money rules, pinned where they live. Every expected value below is a
// literal worked out by hand (or by an independent big-integer oracle in the property
// tests), never the production formula run again, and the amounts are chosen so that each
// rounding direction and each boundary changes the answer: flip a rounding, move a cliff
// by a second or swap two fee shares and one of these tests fails. rules_chain_test.go
// checks the same rules once more through signed transactions in a running ledger.

// TestDefaultParamsArePinned: the whitepaper's numbers and our defaults, as literals.
func TestDefaultParamsArePinned(t *testing.T) {
	p := DefaultParams()
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"burn_bp (2%)", p.BurnBP, 200},
		{"fee_bp (5%)", p.FeeBP, 500},
		{"validator_fee_share_bp (10%)", p.ValidatorFeeShareBP, 1000},
		{"buyback_fee_share_bp (15%)", p.BuybackFeeShareBP, 1500},
		{"min_node_stake (500 OMNI)", p.MinNodeStake, 500_000_000},
		{"min_validator_stake (10,000 OMNI)", p.MinValidatorStake, 10_000_000_000},
		{"min_billed_millis", p.MinBilledMillis, 1000},
		{"unbonding_seconds (21 days)", p.UnbondingSeconds, 1_814_400},
		{"fraud_slash_bp (10%)", p.FraudSlashBP, 1000},
		{"verifier_reward_bp (50%)", p.VerifierRewardBP, 5000},
		{"false_attest_slash_bp (5%)", p.FalseAttestSlashBP, 500},
		{"double_sign_slash_bp (5%)", p.DoubleSignSlashBP, 500},
		{"reward_per_gpu_hour (1 OMNI)", p.RewardPerGPUHour, 1_000_000},
		{"reward_decay_bp (20%)", p.RewardDecayBP, 2000},
		{"reward_decay_blocks (a year of 1 s blocks)", p.RewardDecayBlocks, 31_536_000},
		{"quarter_blocks (90 days of 1 s blocks)", p.QuarterBlocks, 7_776_000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !p.BuybackBurn {
		t.Error("buyback_burn defaults to moving the fund, want burning it")
	}
	if UomniPerOMNI != 1_000_000 || BasisPoints != 10_000 || Month != 2_629_800 {
		t.Errorf("units changed: uomni/OMNI %d, basis points %d, month %d s", UomniPerOMNI, BasisPoints, Month)
	}
}

func TestMulDivRoundsAsAsked(t *testing.T) {
	const max64 = ^uint64(0)
	for _, c := range []struct {
		a, b, d uint64
		ceil    bool
		want    uint64
		err     error
	}{
		{1, 200, 10_000, false, 0, nil},
		{1, 200, 10_000, true, 1, nil},
		{50, 200, 10_000, false, 1, nil}, // exact: no rounding either way
		{50, 200, 10_000, true, 1, nil},
		{51, 200, 10_000, false, 1, nil},
		{51, 200, 10_000, true, 2, nil},
		{max64, max64, max64, false, max64, nil},                       // the 128-bit product fits the quotient
		{max64, 3, 4, false, 13_835_058_055_282_163_711, nil},          // remainder 1
		{max64, 3, 4, true, 13_835_058_055_282_163_712, nil},           // ... rounded up
		{max64, 2, 1, false, 0, ErrOverflow},                           // quotient needs 65 bits
		{253_921, 145_295_143_558_111, 2, false, max64, nil},           // (2^65-1)/2, remainder 1
		{253_921, 145_295_143_558_111, 2, true, 0, ErrOverflow},        // rounding up overflows
		{7, 7, 0, false, 0, ErrOverflow},                               // division by zero
		{1_000_000, 1000, 3_600_000, false, 277, nil},                  // an emission: 277.7
		{2_000_000, 1000, 3_600_000, true, 556, nil},                   // a cost: 555.5
		{40_000_000_000, 1, 3000, false, 13_333_333, nil},              // a vesting second
		{150_000_000_000_000, 1, 94_672_800, true, 1_584_405, nil},     // ceil(team grant / 36 months)
		{150_000_000_000_000, 1, 94_672_800, false, 1_584_404, nil},    // floor of the same
		{120_000_000_000_000, 1, 31_557_600, false, 3_802_570, nil},    // seed grant / 12 months
		{max64 / 2, 1000, 3_600_000, true, 2_562_047_788_015_216, nil}, // an absurd price still fits
	} {
		got, err := mulDiv(c.a, c.b, c.d, c.ceil)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("mulDiv(%d, %d, %d, ceil=%v) = %d, %v; want %d, %v", c.a, c.b, c.d, c.ceil, got, err, c.want, c.err)
		}
	}
}

// TestBurnRoundsUpSharesRoundDown: the burn is rounded up, so splitting a payment into
// dust cannot avoid it (a 1 uomni transfer burns 1 uomni); every share is rounded down.
func TestBurnRoundsUpSharesRoundDown(t *testing.T) {
	for _, c := range []struct{ amount, burn uint64 }{
		{0, 0}, {1, 1}, {49, 1}, {50, 1}, {51, 2}, {99, 2}, {100, 2}, {101, 3},
		{12_345, 247}, {1_000_000_000, 20_000_000},
	} {
		if got := burnOf(c.amount, 200); got != c.burn {
			t.Errorf("burnOf(%d, 2%%) = %d, want %d (rounded up)", c.amount, got, c.burn)
		}
	}
	for _, c := range []struct{ amount, bp, share uint64 }{
		{0, 1000, 0}, {9, 1000, 0}, {10, 1000, 1}, {19, 1000, 1}, {27, 1000, 2},
		{6, 1500, 0}, {7, 1500, 1}, {27, 1500, 4}, {556, 500, 27}, {333_334, 500, 16_666},
		{500_000_037, 1000, 50_000_003}, {10_000_000_019, 300, 300_000_000},
	} {
		if got := shareOf(c.amount, c.bp); got != c.share {
			t.Errorf("shareOf(%d, %d bp) = %d, want %d (rounded down)", c.amount, c.bp, got, c.share)
		}
	}
}

// TestSettlementForPinsEveryRule: cost is price × billed GPU time rounded up, billed time
// is at least MinBilledMillis and at most the timeout, cost is capped at the budget; 2% of
// the cost burns (rounded up), 5% is the fee (rounded down), the node gets the rest and
// the consumer gets back what the cost did not use. The jobs here are verified to have
// done more work than they report (TestSettlementBillsVerifiedWork bounds the report).
func TestSettlementForPinsEveryRule(t *testing.T) {
	p := DefaultParams()
	for _, c := range []struct {
		name                           string
		price, millis, budget, timeout uint64
		want                           Settlement
	}{
		{"cost 555.5 rounds up; burn 11.12 up, fee 27.8 down", 2_000_000, 1000, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: 999_444}},
		{"no GPU time is billed the minimum", 2_000_000, 0, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: 999_444}},
		{"one millisecond under the minimum", 2_000_000, 999, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: 999_444}},
		{"one millisecond over the minimum", 2_000_000, 1001, 1_000_000, 600,
			Settlement{BilledMillis: 1001, Cost: 557, Burned: 12, Fee: 27, Paid: 518, Refunded: 999_443}},
		{"exactly the timeout", 2_000_000, 600_000, 1_000_000, 600,
			Settlement{BilledMillis: 600_000, Cost: 333_334, Burned: 6667, Fee: 16_666, Paid: 310_001, Refunded: 666_666}},
		{"past the timeout is billed the timeout", 2_000_000, 10_000_000, 1_000_000, 600,
			Settlement{BilledMillis: 600_000, Cost: 333_334, Burned: 6667, Fee: 16_666, Paid: 310_001, Refunded: 666_666}},
		{"cost capped at the budget", 2_000_000, 1000, 500, 600,
			Settlement{BilledMillis: 1000, Cost: 500, Burned: 10, Fee: 25, Paid: 465, Refunded: 0}},
		{"a cost of 1 uomni is all burned", 1, 1000, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 1, Burned: 1, Fee: 0, Paid: 0, Refunded: 999_999}},
		{"cost 49: burn 0.98 up, fee 2.45 down", 176_400, 1000, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 49, Burned: 1, Fee: 2, Paid: 46, Refunded: 999_951}},
		{"cost 20: burn 0.4 up, fee exactly 1", 72_000, 1000, 1_000_000, 600,
			Settlement{BilledMillis: 1000, Cost: 20, Burned: 1, Fee: 1, Paid: 18, Refunded: 999_980}},
		{"no rounding at all", 3_600_000, 50_000, 1_000_000, 600,
			Settlement{BilledMillis: 50_000, Cost: 50_000, Burned: 1000, Fee: 2500, Paid: 46_500, Refunded: 950_000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := SettlementFor(p, Job{PricePerHour: c.price, GPUMillis: c.millis, Budget: c.budget, TimeoutSeconds: c.timeout,
				TFLOPSMilli: 1, Attestations: []Attestation{{Pass: true, Ops: ampleOps, Transcript: aTranscript}}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("settlement %+v\n                  want %+v", got, c.want)
			}
		})
	}
	// A timeout shorter than the minimum billed time wins: the node cannot be paid for
	// time the job never allowed it.
	p.MinBilledMillis = 5000
	got, err := SettlementFor(p, Job{PricePerHour: 3_600_000, GPUMillis: 0, Budget: 10_000, TimeoutSeconds: 2})
	if err != nil || got.BilledMillis != 2000 || got.Cost != 2000 {
		t.Fatalf("timeout under the minimum: %+v, %v; want 2000 ms billed, cost 2000", got, err)
	}
}

// TestFeeSplitSharesRoundDown: of a fee, 10% (rounded down) goes to the validators' reward
// pool, 15% (rounded down) to the buy-back fund and the rest, rounding dust included, to
// the ecosystem treasury.
func TestFeeSplitSharesRoundDown(t *testing.T) {
	for _, c := range []struct{ fee, validators, buyback, ecosystem uint64 }{
		{0, 0, 0, 0}, {1, 0, 0, 1}, {7, 0, 1, 6}, {9, 0, 1, 8}, {10, 1, 1, 8}, {20, 2, 3, 15},
		{27, 2, 4, 21}, {99, 9, 14, 76}, {2500, 250, 375, 1875},
	} {
		c0 := &execCtx{blk: &blockCtx{}, sp: Supply{Pools: map[string]uint64{}}}
		if err := c0.splitFee(DefaultParams(), c.fee); err != nil {
			t.Fatal(err)
		}
		pools := c0.sp.Pools
		if pools[PoolValidatorRewards] != c.validators || pools[PoolBuyback] != c.buyback || pools[PoolEcosystem] != c.ecosystem {
			t.Errorf("fee %d split validators %d, buy-back %d, ecosystem %d; want %d, %d, %d", c.fee,
				pools[PoolValidatorRewards], pools[PoolBuyback], pools[PoolEcosystem], c.validators, c.buyback, c.ecosystem)
		}
	}
}

// TestValidatorsPaidProRataRoundingDown: at the end of a block the validators' pool is paid
// to the validators with voting power, pro rata to stake and rounded down; what rounding
// leaves stays in the pool for the next block. Jailed validators and ones with less than 1
// OMNI (no power) get nothing and do not dilute the others.
func TestValidatorsPaidProRataRoundingDown(t *testing.T) {
	a, b, jailed, dust := addr(key(50)), addr(key(51)), addr(key(52)), addr(key(53))
	for _, c := range []struct{ pot, toA, toB, left uint64 }{
		{1, 0, 0, 1},
		{2, 0, 1, 1},
		{3, 1, 2, 0},
		{100, 33, 66, 1},
	} {
		st := state{kv: newMemStore()}
		for _, v := range []Validator{
			{Address: a, Stake: 10_000 * omni}, {Address: b, Stake: 20_000 * omni},
			{Address: jailed, Stake: 30_000 * omni, Jailed: true}, {Address: dust, Stake: 999_999},
		} {
			if err := st.put(valKey(v.Address), v); err != nil {
				t.Fatal(err)
			}
		}
		blk := &blockCtx{supply: Supply{Pools: map[string]uint64{PoolValidatorRewards: c.pot}}}
		if _, err := payValidators(st, blk); err != nil {
			t.Fatal(err)
		}
		bal := func(x keys.Address) uint64 {
			acc, err := st.account(x)
			if err != nil {
				t.Fatal(err)
			}
			return acc.Balance
		}
		if bal(a) != c.toA || bal(b) != c.toB || blk.supply.Pools[PoolValidatorRewards] != c.left || bal(jailed) != 0 || bal(dust) != 0 {
			t.Errorf("pot %d paid %d and %d (jailed %d, dust %d), %d left; want %d and %d, %d left",
				c.pot, bal(a), bal(b), bal(jailed), bal(dust), blk.supply.Pools[PoolValidatorRewards], c.toA, c.toB, c.left)
		}
		if blk.supply.Liquid != c.toA+c.toB {
			t.Errorf("pot %d: liquid grew by %d, want %d", c.pot, blk.supply.Liquid, c.toA+c.toB)
		}
	}
}

// TestSlashTakesFloorOfStakeAndUnbonding: a slash takes bp of the stake in the role and
// of every unbonding entry in that role, each rounded down; entries of the other role
// are untouched and a node left under the minimum stake goes inactive.
func TestSlashTakesFloorOfStakeAndUnbonding(t *testing.T) {
	p := DefaultParams()
	n := addr(key(54))
	st := state{kv: newMemStore()}
	entries := []Unbonding{
		{ID: 1, Address: n, Role: RoleNode, Amount: 100_000_011, MatureUnix: 50},
		{ID: 2, Address: n, Role: RoleNode, Amount: 9, MatureUnix: 60}, // 10% is 0.9: nothing
		{ID: 3, Address: n, Role: RoleValidator, Amount: 1_000, MatureUnix: 70},
	}
	for _, u := range entries {
		for _, k := range [][]byte{unbondKey(u.MatureUnix, u.ID), unbondAcctKey(n, u.ID)} {
			if err := st.put(k, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.put(nodeKey(n), Node{Address: n, Stake: 500_000_026, Status: NodeActive}); err != nil {
		t.Fatal(err)
	}
	sp := Supply{Staked: 500_000_026, Unbonding: 100_001_020}
	taken, err := slash(st, &sp, n, RoleNode, 1000, p)
	if err != nil {
		t.Fatal(err)
	}
	// 10% of 500,000,026 is 50,000,002.6 and of 100,000,011 is 10,000,001.1.
	if taken != 60_000_003 {
		t.Fatalf("slash took %d, want 60000003", taken)
	}
	node, _, _ := st.node(n)
	if node.Stake != 450_000_024 || node.Status != NodeInactive {
		t.Fatalf("node after slash %+v, want stake 450000024 and inactive", node)
	}
	var left []uint64
	_ = st.unbondings(n, func(u Unbonding) bool { left = append(left, u.Amount); return true })
	if len(left) != 3 || left[0] != 90_000_010 || left[1] != 9 || left[2] != 1_000 {
		t.Fatalf("unbonding entries after slash %v, want [90000010 9 1000]", left)
	}
	if sp.Staked != 450_000_024 || sp.Unbonding != 90_001_019 {
		t.Fatalf("supply after slash: staked %d, unbonding %d", sp.Staked, sp.Unbonding)
	}
}

// TestRewardRateDecaysRoundingDown: the emission rate drops by 20% at every full decay
// period, each step rounded down.
func TestRewardRateDecaysRoundingDown(t *testing.T) {
	p := DefaultParams()
	p.RewardPerGPUHour, p.RewardDecayBlocks = 999, 10
	for _, c := range []struct {
		height int64
		rate   uint64
	}{{0, 999}, {9, 999}, {10, 799}, {19, 799}, {20, 639}, {30, 511}} {
		if got := RewardRate(p, c.height); got != c.rate {
			t.Errorf("rate at height %d = %d, want %d", c.height, got, c.rate)
		}
	}
	d := DefaultParams()
	if RewardRate(d, 31_535_999) != 1_000_000 || RewardRate(d, 31_536_000) != 800_000 {
		t.Errorf("default rate a block before and at one year: %d, %d; want 1000000, 800000",
			RewardRate(d, 31_535_999), RewardRate(d, 31_536_000))
	}
}

// TestVestingLockedAtBoundaries: nothing unlocks before or at the cliff; after it the
// vested part grows linearly and is rounded down (so the locked part is rounded up); at
// the end everything is free.
func TestVestingLockedAtBoundaries(t *testing.T) {
	v := &Vesting{Total: 10, CliffUnix: 100, EndUnix: 103}
	for _, c := range []struct {
		now    int64
		locked uint64
	}{{0, 10}, {99, 10}, {100, 10}, {101, 7}, {102, 4}, {103, 0}, {104, 0}} {
		if got := v.Locked(c.now); got != c.locked {
			t.Errorf("Locked(%d) of 10 over [100, 103) = %d, want %d", c.now, got, c.locked)
		}
	}
	if (*Vesting)(nil).Locked(0) != 0 {
		t.Error("no schedule locks something")
	}
}

// TestTokenomicsVestingSchedules pins the whitepaper's schedules to the second: the team's
// 15% is locked for 6 months, then vests linearly over 36 more; seed and private sale's
// 12% is locked for 3 months, then vests over 12 more.
func TestTokenomicsVestingSchedules(t *testing.T) {
	const start = genesisUnix
	team, seed := addr(key(40)), addr(key(41))
	g, err := Tokenomics(start, DefaultParams(), Beneficiaries{
		Team: []keys.Address{team}, Investors: []keys.Address{seed},
		PublicSale: []keys.Address{addr(key(43))}, Liquidity: []keys.Address{addr(key(44))},
		Validators: testGenesis().Validators,
	})
	if err != nil {
		t.Fatal(err)
	}
	grant := map[keys.Address]*Vesting{}
	for _, a := range g.Accounts {
		grant[a.Address] = a.Vesting
	}
	for _, c := range []struct {
		who         string
		v           *Vesting
		total       uint64
		cliff, end  int64
		afterCliff  uint64 // locked one second after the cliff
		beforeEnd   uint64 // locked one second before the end
		halfwayLock uint64
	}{
		{"team", grant[team], 150_000_000_000_000, start + 15_778_800, start + 110_451_600,
			150_000_000_000_000 - 1_584_404, 1_584_405, 75_000_000_000_000},
		{"seed", grant[seed], 120_000_000_000_000, start + 7_889_400, start + 39_447_000,
			120_000_000_000_000 - 3_802_570, 3_802_571, 60_000_000_000_000},
	} {
		if c.v == nil {
			t.Fatalf("%s grant has no vesting", c.who)
		}
		if c.v.Total != c.total || c.v.CliffUnix != c.cliff || c.v.EndUnix != c.end {
			t.Fatalf("%s vesting %+v, want total %d, cliff %d, end %d", c.who, *c.v, c.total, c.cliff, c.end)
		}
		for _, at := range []struct {
			now    int64
			locked uint64
		}{
			{start, c.total}, {c.cliff - 1, c.total}, {c.cliff, c.total}, {c.cliff + 1, c.afterCliff},
			{(c.cliff + c.end) / 2, c.halfwayLock}, {c.end - 1, c.beforeEnd}, {c.end, 0},
		} {
			if got := c.v.Locked(at.now); got != at.locked {
				t.Errorf("%s locked at start%+d = %d, want %d", c.who, at.now-start, got, at.locked)
			}
		}
	}
	if grant[addr(key(43))] != nil || grant[addr(key(44))] != nil {
		t.Error("public sale or liquidity is locked")
	}
}

// The property tests below check the money paths over random inputs against an oracle in
// math/big, written from the rules' words rather than from the code.

func ratio(a, b, d uint64, up bool) uint64 {
	n := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
	if up {
		n.Add(n, new(big.Int).SetUint64(d-1))
	}
	return n.Div(n, new(big.Int).SetUint64(d)).Uint64()
}

func TestSettlementPropertyRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 8))
	for i := range 20_000 {
		p := DefaultParams()
		p.BurnBP = rng.Uint64N(BasisPoints + 1)
		p.FeeBP = rng.Uint64N(BasisPoints - p.BurnBP + 1)
		p.MinBilledMillis = rng.Uint64N(5000)
		p.ValidatorFeeShareBP = rng.Uint64N(BasisPoints + 1)
		p.BuybackFeeShareBP = rng.Uint64N(BasisPoints - p.ValidatorFeeShareBP + 1)
		j := Job{
			PricePerHour: rng.Uint64N(1 << uint(rng.IntN(40))), GPUMillis: rng.Uint64N(1 << uint(rng.IntN(32))),
			Budget: 1 + rng.Uint64N(1<<uint(rng.IntN(50))), TimeoutSeconds: 1 + rng.Uint64N(100_000),
			TFLOPSMilli: rng.Uint64N(1 << uint(rng.IntN(64))), Attestations: randomAttestations(rng),
		}
		s, err := SettlementFor(p, j)
		if err != nil {
			t.Fatalf("%+v: %v", j, err)
		}
		work := verifiedWorkOracle(j)
		billed := min(max(min(j.GPUMillis, work), p.MinBilledMillis), j.TimeoutSeconds*1000)
		if s.BilledMillis > max(work, p.MinBilledMillis) || s.BilledMillis > max(j.GPUMillis, p.MinBilledMillis) {
			t.Fatalf("case %d, %+v: billed %d ms, more than the verified work %d ms or the report", i, j, s.BilledMillis, work)
		}
		cost := min(ratio(j.PricePerHour, billed, 3_600_000, true), j.Budget)
		burn := ratio(cost, p.BurnBP, BasisPoints, true)
		fee := ratio(cost, p.FeeBP, BasisPoints, false)
		want := Settlement{BilledMillis: billed, Cost: cost, Burned: burn, Fee: fee, Paid: cost - burn - fee, Refunded: j.Budget - cost}
		if !reflect.DeepEqual(s, want) || s.Paid+s.Burned+s.Fee+s.Refunded != j.Budget {
			t.Fatalf("case %d, %+v under burn %d fee %d: %+v, want %+v", i, j, p.BurnBP, p.FeeBP, s, want)
		}
		c := &execCtx{blk: &blockCtx{}, sp: Supply{Pools: map[string]uint64{}}}
		if err := c.splitFee(p, s.Fee); err != nil {
			t.Fatal(err)
		}
		toV, toB := ratio(s.Fee, p.ValidatorFeeShareBP, BasisPoints, false), ratio(s.Fee, p.BuybackFeeShareBP, BasisPoints, false)
		pools := c.sp.Pools
		if pools[PoolValidatorRewards] != toV || pools[PoolBuyback] != toB || pools[PoolEcosystem] != s.Fee-toV-toB {
			t.Fatalf("fee %d split %v, want validators %d buy-back %d", s.Fee, pools, toV, toB)
		}
	}
}

func TestVestingPropertyRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 6))
	for range 20_000 {
		cliff := rng.Int64N(1 << 40)
		v := &Vesting{Total: 1 + rng.Uint64N(GenesisSupply), CliffUnix: cliff, EndUnix: cliff + 1 + rng.Int64N(1<<30)}
		now := v.CliffUnix - 10 + rng.Int64N(v.EndUnix-v.CliffUnix+20)
		var want uint64
		switch {
		case now < v.CliffUnix:
			want = v.Total
		case now < v.EndUnix:
			want = v.Total - ratio(v.Total, uint64(now-v.CliffUnix), uint64(v.EndUnix-v.CliffUnix), false)
		}
		if got := v.Locked(now); got != want {
			t.Fatalf("%+v at %d: locked %d, want %d", *v, now, got, want)
		}
		if v.Locked(now+1) > v.Locked(now) {
			t.Fatalf("%+v: more locked at %d than at %d", *v, now+1, now)
		}
	}
}
