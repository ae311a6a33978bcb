package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// Redundant verification: the rules of redundant.go, with hand-worked literals where the
// arithmetic is pinned and an oracle in math/big (ratio, in rules_test.go) where inputs
// are random.

// redundantHarness is testGenesis with two more nodes' funds, and four registered nodes:
// node1 bidding 2 OMNI/h, node2 1.234567, node3 2.999999 and node4 1.
func redundantHarness(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, redundantGenesis())
	for _, n := range []struct {
		k     ed25519.PrivateKey
		price uint64
	}{{node1Key, 2 * omni}, {node2Key, 1_234_567}, {node3Key, 2_999_999}, {node4Key, omni}} {
		reg := *registerMsg.RegisterNode
		reg.PricePerHour = n.price
		h.mustDo(n.k, Msg{RegisterNode: &reg})
	}
	return h
}

func redundantGenesis() Genesis {
	g := testGenesis()
	g.Accounts = append(g.Accounts,
		GenesisAccount{Address: addr(node3Key), Balance: 1_000 * omni},
		GenesisAccount{Address: addr(node4Key), Balance: 1_000 * omni})
	return withSupply(g)
}

// newRedundantJob creates a redundant job of budget uomni (ceiling 3 OMNI/h, 600 s).
func newRedundantJob(t *testing.T, h *harness, budget uint64) string {
	t.Helper()
	return newRedundantJobFor(t, h, budget, 600)
}

// newRedundantJobFor is newRedundantJob with a timeout of timeout seconds.
func newRedundantJobFor(t *testing.T, h *harness, budget, timeout uint64) string {
	t.Helper()
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	m := redundantMsg(budget)
	m.CreateJob.TimeoutSeconds = timeout
	h.mustDo(consumerKey, m)
	return id
}

func place(id string, node ed25519.PrivateKey) Msg {
	return Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node), ScoreBP: 8000}}
}

func replace(id string, node, old ed25519.PrivateKey) Msg {
	return Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node), Replaces: addr(old)}}
}

// seal is node's commit of digest to redundant job id: the seal, never the digest.
func seal(id string, node ed25519.PrivateKey, digest string, millis uint64) Msg {
	return Msg{CommitResult: &MsgCommitResult{JobID: id, Seal: ResultSeal(id, addr(node), digest), GPUMillis: millis}}
}

// reveal opens the signer's seal on job id with digest.
func reveal(id, digest string) Msg {
	return Msg{RevealResult: &MsgRevealResult{JobID: id, ResultDigest: digest}}
}

// atDeadline finalizes one empty block at job id's deadline, when expireJobs decides it,
// and returns the block's result.
func atDeadline(t *testing.T, h *harness, id string) BlockResult {
	t.Helper()
	return h.finalize(h.next(time.Unix(query[Job](h, "job/"+id).DeadlineUnix, 0).Sub(h.now)))
}

// refused runs a tx that must fail with code, saying log, and change nothing.
func refused(t *testing.T, h *harness, k ed25519.PrivateKey, m Msg, code Code, log string) {
	t.Helper()
	before := h.stateHash()
	r := h.do(k, m)
	if r.Code != code || !strings.Contains(r.Log, log) {
		t.Fatalf("code %d (%s), want %d saying %q", r.Code, r.Log, code, log)
	}
	if !bytes.Equal(before, h.stateHash()) {
		t.Fatal("a rejected tx changed state")
	}
}

func TestRedundantMessagesValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		msg  Msg
		err  error
	}{
		{"redundant job", redundantMsg(5), nil},
		{"freivalds job", createMsg(5), nil},
		{"unknown level", func() Msg { m := createMsg(5); m.CreateJob.Verification = "trust-me"; return m }(), ErrInvalidMsg},
		{"replacement", replace("job-0000000000000000", node1Key, node2Key), nil},
		{"a replica replacing itself", replace("job-0000000000000000", node1Key, node1Key), ErrInvalidMsg},
		{"replacing a malformed address", Msg{AssignJob: &MsgAssignJob{JobID: "job-0000000000000000", Node: addr(node1Key), Replaces: "nope"}}, ErrInvalidMsg},
		{"a sealed commit", seal("job-0000000000000000", node1Key, digestA, 1), nil},
		{"a digest commit", Msg{CommitResult: &MsgCommitResult{JobID: "job-0000000000000000", ResultDigest: digestA}}, nil},
		{"a commit with a seal and a digest", Msg{CommitResult: &MsgCommitResult{JobID: "job-0000000000000000", ResultDigest: digestA, Seal: digestB}}, ErrInvalidMsg},
		{"a commit with neither", Msg{CommitResult: &MsgCommitResult{JobID: "job-0000000000000000", GPUMillis: 1}}, ErrInvalidMsg},
		{"a malformed seal", Msg{CommitResult: &MsgCommitResult{JobID: "job-0000000000000000", Seal: "sha256:AB"}}, ErrInvalidMsg},
		{"an upper-case seal", Msg{CommitResult: &MsgCommitResult{JobID: "job-0000000000000000", Seal: strings.ToUpper(digestA)}}, ErrInvalidMsg},
		{"a reveal", reveal("job-0000000000000000", digestA), nil},
		{"a reveal of no digest", reveal("job-0000000000000000", ""), ErrInvalidMsg},
		{"a reveal of a malformed digest", reveal("job-0000000000000000", "sha256:xyz"), ErrInvalidMsg},
		{"a reveal for no job", reveal("nope", digestA), ErrInvalidMsg},
	} {
		if err := c.msg.ValidateBasic(); !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

// TestRedundantSettlementForPinsEveryRule: two agreeing replicas are billed the lower of
// their GPU times (at least MinBilledMillis, at most the timeout), each at its own price
// rounded up and capped at a third of the budget (rounded down); each cost is divided as
// SettlementFor divides one (2% burn rounded up, 5% fee rounded down, the rest paid); the
// totals are the sums and the consumer gets back the rest. A replica that revealed
// another digest, listed first, is not paid, nor is one that sealed and has not revealed.
func TestRedundantSettlementForPinsEveryRule(t *testing.T) {
	p := DefaultParams()
	n1, n2, n3 := addr(node1Key), addr(node2Key), addr(node3Key)
	for _, c := range []struct {
		name                     string
		millis1, millis2, budget uint64
		price1, price2           uint64
		share1, share2           Share
		billed, refunded         uint64
	}{
		// 2 OMNI/h × 45,005 ms = 25,002.78 → 25,003: burn 500.06 → 501, fee 1,250.15 →
		// 1,250. 1.234567 OMNI/h × 45,005 ms = 15,433.80 → 15,434: burn 308.68 → 309, fee
		// 771.7 → 771.
		{"the lower GPU time is billed; costs round up", 90_001, 45_005, omni, 2 * omni, 1_234_567,
			Share{Node: n1, Cost: 25_003, Burned: 501, Fee: 1_250, Paid: 23_252},
			Share{Node: n2, Cost: 15_434, Burned: 309, Fee: 771, Paid: 14_354}, 45_005, 959_563},
		// A third of 40,000 is 13,333 (rounded down): burn 266.66 → 267, fee 666.65 → 666.
		{"each cost is capped at a third of the budget", 90_001, 45_005, 40_000, 2 * omni, 1_234_567,
			Share{Node: n1, Cost: 13_333, Burned: 267, Fee: 666, Paid: 12_400},
			Share{Node: n2, Cost: 13_333, Burned: 267, Fee: 666, Paid: 12_400}, 45_005, 13_334},
		// 555.56 → 556 (burn 11.12 → 12, fee 27.8 → 27) and 342.94 → 343 (burn 6.86 → 7,
		// fee 17.15 → 17).
		{"no GPU time is billed the minimum", 0, 5, omni, 2 * omni, 1_234_567,
			Share{Node: n1, Cost: 556, Burned: 12, Fee: 27, Paid: 517},
			Share{Node: n2, Cost: 343, Burned: 7, Fee: 17, Paid: 319}, 1000, 999_101},
		// 333,333.33 → 333,334, capped at 333,333 (burn 6,666.66 → 6,667, fee 16,666.65 →
		// 16,666); 205,761.17 → 205,762 (burn 4,115.24 → 4,116, fee 10,288.1 → 10,288).
		{"past the timeout is billed the timeout", 10_000_000, 700_000, omni, 2 * omni, 1_234_567,
			Share{Node: n1, Cost: 333_333, Burned: 6_667, Fee: 16_666, Paid: 310_000},
			Share{Node: n2, Cost: 205_762, Burned: 4_116, Fee: 10_288, Paid: 191_358}, 600_000, 460_905},
		{"a cost of 1 uomni is all burned", 1000, 1000, omni, 1, 1,
			Share{Node: n1, Cost: 1, Burned: 1}, Share{Node: n2, Cost: 1, Burned: 1}, 1000, 999_998},
		{"a budget of 2 uomni pays no one", 90_001, 45_005, 2, 2 * omni, 1_234_567,
			Share{Node: n1}, Share{Node: n2}, 45_005, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			j := Job{ID: "job-0000000000000000", Budget: c.budget, TimeoutSeconds: 600, Verification: VerifyRedundant, Replicas: []Replica{
				{Node: n3, PricePerHour: 1, ResultDigest: digestB, GPUMillis: 1},
				{Node: n1, PricePerHour: c.price1, ResultDigest: digestA, GPUMillis: c.millis1},
				{Node: n2, PricePerHour: c.price2, ResultDigest: digestA, GPUMillis: c.millis2},
				{Node: addr(node4Key), PricePerHour: 1, Seal: ResultSeal("job-0000000000000000", addr(node4Key), digestA), GPUMillis: 1},
			}}
			got, err := RedundantSettlementFor(p, j, digestA)
			if err != nil {
				t.Fatal(err)
			}
			s1, s2 := c.share1, c.share2
			want := Settlement{
				BilledMillis: c.billed, Cost: s1.Cost + s2.Cost, Paid: s1.Paid + s2.Paid, Burned: s1.Burned + s2.Burned,
				Fee: s1.Fee + s2.Fee, Refunded: c.refunded, Shares: []Share{s1, s2},
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("settlement %+v\n                  want %+v", got, want)
			}
			if got.Paid+got.Burned+got.Fee+got.Refunded != c.budget {
				t.Fatalf("settlement %+v does not divide the budget %d", got, c.budget)
			}
		})
	}
	j := Job{Budget: omni, TimeoutSeconds: 600, Replicas: []Replica{{Node: n1, PricePerHour: 1}}}
	if _, err := RedundantSettlementFor(p, j, digestA); !errors.Is(err, ErrInvalidMsg) {
		t.Fatalf("settling a digest no replica revealed: %v", err)
	}
}

// TestRedundantSettlementForBillsTheMedian: three agreeing replicas are billed the median
// of their GPU times, wherever it sits among the replicas, so neither the one that claims
// the most nor the one that claims the least sets the bill; then clamped, and charged, as
// two are. All three are paid, each at its own price.
func TestRedundantSettlementForBillsTheMedian(t *testing.T) {
	p := DefaultParams()
	n1, n2, n3 := addr(node1Key), addr(node2Key), addr(node3Key)
	j := Job{ID: "job-0000000000000000", Budget: omni, TimeoutSeconds: 600, Verification: VerifyRedundant, Replicas: []Replica{
		{Node: n1, PricePerHour: 2 * omni, ResultDigest: digestA, GPUMillis: 90_001},
		{Node: n2, PricePerHour: 1_234_567, ResultDigest: digestA, GPUMillis: 45_005},
		{Node: n3, PricePerHour: 2_999_999, ResultDigest: digestA, GPUMillis: 60_000},
	}}
	got, err := RedundantSettlementFor(p, j, digestA)
	if err != nil {
		t.Fatal(err)
	}
	// 2 OMNI/h × 60,000 ms = 33,333.33 → 33,334: burn 666.68 → 667, fee 1,666.7 → 1,666.
	// 1.234567 OMNI/h: 20,576.12 → 20,577: burn 411.54 → 412, fee 1,028.85 → 1,028.
	// 2.999999 OMNI/h: 49,999.98 → 50,000: burn 1,000, fee 2,500.
	want := Settlement{
		BilledMillis: 60_000, Cost: 103_911, Paid: 96_638, Burned: 2_079, Fee: 5_194, Refunded: 896_089,
		Shares: []Share{
			{Node: n1, Cost: 33_334, Burned: 667, Fee: 1_666, Paid: 31_001},
			{Node: n2, Cost: 20_577, Burned: 412, Fee: 1_028, Paid: 19_137},
			{Node: n3, Cost: 50_000, Burned: 1_000, Fee: 2_500, Paid: 46_500},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("settlement %+v\n                  want %+v", got, want)
	}
	for _, c := range []struct {
		name   string
		millis [3]uint64
		billed uint64
	}{
		{"the median first", [3]uint64{50_000, 10, 9_000_000}, 50_000},
		{"two equal", [3]uint64{7_000, 3_000, 7_000}, 7_000},
		{"a median under the minimum is billed the minimum", [3]uint64{0, 5, 2_000_000}, 1000},
		{"a median past the timeout is billed the timeout", [3]uint64{700_000, 10, 800_000}, 600_000},
	} {
		for i := range j.Replicas {
			j.Replicas[i].GPUMillis = c.millis[i]
		}
		s, err := RedundantSettlementFor(p, j, digestA)
		if err != nil || s.BilledMillis != c.billed || len(s.Shares) != 3 {
			t.Errorf("%s: billed %d ms to %d replicas (%v), want %d to 3", c.name, s.BilledMillis, len(s.Shares), err, c.billed)
		}
	}
}

// TestRedundantJobSettlesWithExactSplit: the three replicas seal; node3 reveals first and
// disagrees; node1 then agrees with nobody yet; node2's agreeing reveal, the last, settles
// the job: node1 and node2 are paid, billed the lower of the GPU times they sealed with,
// and node3 is outvoted. The numbers are those
// of the first case of TestRedundantSettlementForPinsEveryRule, plus the network reward:
// 1 OMNI/h for 45,005 ms is 12,501.39 → 12,501, 6,250 to each agreeing replica and 1 left
// in the pool. The fee of 2,021 is split once: 202 to the validator, 303 to buy-backs,
// 1,516 to the treasury.
func TestRedundantJobSettlesWithExactSplit(t *testing.T) {
	h := redundantHarness(t)
	consumer0, val0, sp0 := h.balance(consumerKey), h.balance(validatorKey), h.supply()
	node1, node2, node3 := h.balance(node1Key), h.balance(node2Key), h.balance(node3Key)
	id := newRedundantJob(t, h, omni)
	if j := query[Job](h, "job/"+id); j.Status != JobCreated || j.Verification != VerifyRedundant {
		t.Fatalf("new job %s %s", j.Status, j.Verification)
	}
	for _, k := range []ed25519.PrivateKey{node3Key, node1Key, node2Key} {
		h.mustDo(routerKey, place(id, k))
	}
	h.mustDo(node3Key, seal(id, node3Key, digestB, 90_000))
	h.mustDo(node1Key, seal(id, node1Key, digestA, 90_001))
	h.mustDo(node2Key, seal(id, node2Key, digestA, 45_005))
	h.mustDo(node3Key, reveal(id, digestB))
	h.mustDo(node1Key, reveal(id, digestA))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned || j.Settlement != nil {
		t.Fatalf("job with one vote each for two digests is %s", j.Status)
	}
	r := h.do(node2Key, reveal(id, digestA))
	if r.Code != CodeOK {
		t.Fatal(r.Log)
	}

	j := query[Job](h, "job/"+id)
	n1, n2, n3 := addr(node1Key), addr(node2Key), addr(node3Key)
	want := Settlement{
		BilledMillis: 45_005, Cost: 40_437, Paid: 37_606, Burned: 810, Fee: 2_021, Refunded: 959_563, Reward: 12_500, Height: h.height,
		Shares: []Share{
			{Node: n1, Cost: 25_003, Paid: 23_252, Burned: 501, Fee: 1_250, Reward: 6_250},
			{Node: n2, Cost: 15_434, Paid: 14_354, Burned: 309, Fee: 771, Reward: 6_250},
		},
	}
	if j.Status != JobSettled || j.Settlement == nil || !reflect.DeepEqual(*j.Settlement, want) {
		t.Fatalf("job %s settled %+v\nwant %+v", j.Status, j.Settlement, want)
	}
	if j.Node != "" || j.ResultDigest != digestA || j.GPUMillis != 45_005 || len(j.Replicas) != 3 || j.Replicas[0].ResultDigest != digestB ||
		j.Replicas[0].Seal != ResultSeal(id, n3, digestB) || j.Replicas[2].Seal != ResultSeal(id, n2, digestA) {
		t.Fatalf("job record %+v", j)
	}
	sp := h.supply()
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"node1 paid", h.balance(node1Key) - node1, 23_252 + 6_250},
		{"node2 paid", h.balance(node2Key) - node2, 14_354 + 6_250},
		{"outvoted node3 paid", h.balance(node3Key) - node3, 0},
		{"consumer charged", consumer0 - h.balance(consumerKey), 40_437},
		{"burned", sp.Burned - sp0.Burned, 810},
		{"to the validator (10% of 2,021)", h.balance(validatorKey) - val0, 202},
		{"to the buy-back fund (15%)", sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback], 303},
		{"to the ecosystem treasury", sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem], 1_516},
		{"emitted from network rewards", sp0.Pools[PoolRewards] - sp.Pools[PoolRewards], 12_500},
		{"escrow left", sp.Escrowed, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	twoVerifiedOneFailedNoSlash(t, h)
	var types []string
	for _, e := range r.Events {
		types = append(types, e.Type)
		if e.Type == "job_settled" && attrOf(e, "node") != string(n1)+","+string(n2) || e.Type == "replica_outvoted" && attrOf(e, "node") != string(n3) {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(types, " ") != "result_revealed job_settled settlement_share settlement_share replica_outvoted" {
		t.Errorf("events %v", types)
	}
	raw, err := h.app.Query("job/" + id)
	if err != nil || !bytes.Contains(raw, []byte(`"replicas":[{"node":"`+string(n3))) || !bytes.Contains(raw, []byte(`"shares":[{"node":"`+string(n1))) ||
		!bytes.Contains(raw, []byte(`"seal":"`+ResultSeal(id, n3, digestB)+`","result_digest":"`+digestB)) {
		t.Fatalf("job query does not show replicas, their seals and digests, and shares: %s (%v)", raw, err)
	}
	h.checkBooks()
}

// TestRedundantAllThreeAgreePaysAll: three replicas seal the same digest; the first two
// reveals settle nothing, so no honest replica races another for its pay, and the third
// settles the job paying all three, each at its own price for the median of their GPU
// times. The numbers are those of TestRedundantSettlementForBillsTheMedian, plus the
// network reward: 1 OMNI/h for 60,000 ms is 16,666.67 → 16,666, 5,555 to each replica and
// 1 left in the pool. The fee of 5,194 is split once: 519 to the validator, 779 to
// buy-backs, 3,896 to the treasury.
func TestRedundantAllThreeAgreePaysAll(t *testing.T) {
	h := redundantHarness(t)
	consumer0, val0, sp0 := h.balance(consumerKey), h.balance(validatorKey), h.supply()
	nodes := []ed25519.PrivateKey{node3Key, node1Key, node2Key}
	balances := map[keys.Address]uint64{}
	for _, k := range nodes {
		balances[addr(k)] = h.balance(k)
	}
	id := newRedundantJob(t, h, omni)
	for _, k := range nodes {
		h.mustDo(routerKey, place(id, k))
	}
	h.mustDo(node3Key, seal(id, node3Key, digestA, 60_000))
	h.mustDo(node1Key, seal(id, node1Key, digestA, 90_001))
	h.mustDo(node2Key, seal(id, node2Key, digestA, 45_005))
	for _, k := range []ed25519.PrivateKey{node1Key, node2Key} {
		h.mustDo(k, reveal(id, digestA))
		if j := query[Job](h, "job/"+id); j.Status != JobAssigned || j.Settlement != nil {
			t.Fatalf("after %s's reveal the job is %s, want it waiting for every replica", addr(k), j.Status)
		}
	}
	r := h.do(node3Key, reveal(id, digestA))
	if r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	j := query[Job](h, "job/"+id)
	n1, n2, n3 := addr(node1Key), addr(node2Key), addr(node3Key)
	want := Settlement{
		BilledMillis: 60_000, Cost: 103_911, Paid: 96_638, Burned: 2_079, Fee: 5_194, Refunded: 896_089, Reward: 16_665, Height: h.height,
		Shares: []Share{ // in the order the replicas were placed
			{Node: n3, Cost: 50_000, Burned: 1_000, Fee: 2_500, Paid: 46_500, Reward: 5_555},
			{Node: n1, Cost: 33_334, Burned: 667, Fee: 1_666, Paid: 31_001, Reward: 5_555},
			{Node: n2, Cost: 20_577, Burned: 412, Fee: 1_028, Paid: 19_137, Reward: 5_555},
		},
	}
	if j.Status != JobSettled || j.Settlement == nil || !reflect.DeepEqual(*j.Settlement, want) {
		t.Fatalf("job %s settled %+v\nwant %+v", j.Status, j.Settlement, want)
	}
	if j.ResultDigest != digestA || j.GPUMillis != 60_000 {
		t.Fatalf("job record %+v", j)
	}
	sp := h.supply()
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"node3 paid", h.balance(node3Key) - balances[n3], 46_500 + 5_555},
		{"node1 paid", h.balance(node1Key) - balances[n1], 31_001 + 5_555},
		{"node2 paid", h.balance(node2Key) - balances[n2], 19_137 + 5_555},
		{"consumer charged", consumer0 - h.balance(consumerKey), 103_911},
		{"burned", sp.Burned - sp0.Burned, 2_079},
		{"to the validator (10% of 5,194)", h.balance(validatorKey) - val0, 519},
		{"to the buy-back fund (15%)", sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback], 779},
		{"to the ecosystem treasury", sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem], 3_896},
		{"emitted from network rewards", sp0.Pools[PoolRewards] - sp.Pools[PoolRewards], 16_665},
		{"escrow left", sp.Escrowed, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	for _, k := range nodes {
		if n := query[Node](h, "node/"+string(addr(k))); n.JobsVerified != 1 || n.JobsFailed != 0 {
			t.Errorf("node %s: verified %d failed %d, want 1 and 0", n.Address, n.JobsVerified, n.JobsFailed)
		}
	}
	var types []string
	for _, e := range r.Events {
		types = append(types, e.Type)
		if e.Type == "job_settled" && (attrOf(e, "node") != string(n3)+","+string(n1)+","+string(n2) || attrOf(e, "at") != "") {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(types, " ") != "result_revealed job_settled settlement_share settlement_share settlement_share" {
		t.Errorf("events %v", types)
	}
	h.checkBooks()
}

// TestRedundantDeadlineSettlesARevealedQuorum: node1 and node2 reveal the same digest and
// node3, which sealed, never reveals. The job waits for it until its deadline, and then
// settles on the two reveals exactly as a third reveal that disagreed would have settled
// it (the numbers of TestRedundantJobSettlesWithExactSplit: the lower GPU time billed,
// node3's claim of less counting for nothing). node3 is not paid and is marked failed for
// withholding its reveal, though its seal hides the agreed digest: the ledger cannot know
// that. The validators' part of the fee waits in their pool for the next block's payout.
func TestRedundantDeadlineSettlesARevealedQuorum(t *testing.T) {
	h := redundantHarness(t)
	consumer0, val0, sp0 := h.balance(consumerKey), h.balance(validatorKey), h.supply()
	nodes := []ed25519.PrivateKey{node3Key, node1Key, node2Key}
	balances := map[keys.Address]uint64{}
	for _, k := range nodes {
		balances[addr(k)] = h.balance(k)
	}
	id := newRedundantJob(t, h, omni)
	for _, k := range nodes {
		h.mustDo(routerKey, place(id, k))
	}
	h.mustDo(node3Key, seal(id, node3Key, digestA, 10_000))
	h.mustDo(node1Key, seal(id, node1Key, digestA, 90_001))
	h.mustDo(node2Key, seal(id, node2Key, digestA, 45_005))
	h.mustDo(node1Key, reveal(id, digestA))
	h.mustDo(node2Key, reveal(id, digestA))
	deadline := time.Unix(query[Job](h, "job/"+id).DeadlineUnix, 0)
	h.finalize(h.next(deadline.Add(-time.Second).Sub(h.now)))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned || j.Settlement != nil {
		t.Fatalf("two agreeing reveals, the third to come, a second before the deadline: job is %s, want it waiting", j.Status)
	}
	res := atDeadline(t, h, id)

	j := query[Job](h, "job/"+id)
	n1, n2, n3 := addr(node1Key), addr(node2Key), addr(node3Key)
	want := Settlement{
		BilledMillis: 45_005, Cost: 40_437, Paid: 37_606, Burned: 810, Fee: 2_021, Refunded: 959_563, Reward: 12_500, Height: h.height,
		Shares: []Share{
			{Node: n1, Cost: 25_003, Paid: 23_252, Burned: 501, Fee: 1_250, Reward: 6_250},
			{Node: n2, Cost: 15_434, Paid: 14_354, Burned: 309, Fee: 771, Reward: 6_250},
		},
	}
	if j.Status != JobSettled || j.Settlement == nil || !reflect.DeepEqual(*j.Settlement, want) {
		t.Fatalf("job %s settled %+v\nwant %+v", j.Status, j.Settlement, want)
	}
	if j.ResultDigest != digestA || j.GPUMillis != 45_005 || j.ResultHeight != h.height || j.Replicas[0].Revealed() {
		t.Fatalf("job record %+v", j)
	}
	sp := h.supply()
	for _, c := range []struct {
		what      string
		got, want uint64
	}{
		{"node1 paid", h.balance(node1Key) - balances[n1], 23_252 + 6_250},
		{"node2 paid", h.balance(node2Key) - balances[n2], 14_354 + 6_250},
		{"withholding node3 paid", h.balance(node3Key) - balances[n3], 0},
		{"consumer charged", consumer0 - h.balance(consumerKey), 40_437},
		{"burned", sp.Burned - sp0.Burned, 810},
		{"to the validators (10% of 2,021), in their pool", h.balance(validatorKey) - val0 + sp.Pools[PoolValidatorRewards] - sp0.Pools[PoolValidatorRewards], 202},
		{"to the buy-back fund (15%)", sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback], 303},
		{"to the ecosystem treasury", sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem], 1_516},
		{"emitted from network rewards", sp0.Pools[PoolRewards] - sp.Pools[PoolRewards], 12_500},
		{"escrow left", sp.Escrowed, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.what, c.got, c.want)
		}
	}
	twoVerifiedOneFailedNoSlash(t, h)
	var types []string
	for _, e := range res.Events {
		if attrOf(e, "job_id") != id {
			continue
		}
		types = append(types, e.Type)
		switch {
		case e.Type == "job_settled" && (attrOf(e, "node") != string(n1)+","+string(n2) || attrOf(e, "at") != "deadline"),
			e.Type == "replica_withheld" && (attrOf(e, "node") != string(n3) || attrOf(e, "agreed") != digestA):
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(types, " ") != "job_settled settlement_share settlement_share replica_withheld" {
		t.Errorf("events %v", types)
	}
	h.finalize(h.next(time.Second))
	if got := h.balance(validatorKey) - val0; got != 202 {
		t.Errorf("the validator got %d of the fee the block after, want 202", got)
	}
	refused(t, h, node3Key, reveal(id, digestA), CodeBadState, "is settled")
	h.checkBooks()
}

func attrOf(e Event, key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// TestRedundantAssignRules: the router places up to three distinct active nodes bidding
// under the ceiling, and may put a new node in the place of one that has not sealed; once
// all three have sealed, no replica can be replaced and no fourth added.
func TestRedundantAssignRules(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned || len(j.Replicas) != 1 ||
		j.Replicas[0] != (Replica{Node: addr(node1Key), PricePerHour: 2 * omni, ScoreBP: 8000, AssignedHeight: h.height}) {
		t.Fatalf("after the first placement: %s %+v", j.Status, j.Replicas)
	}
	refused(t, h, routerKey, place(id, node1Key), CodeDuplicate, "already a replica")
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(routerKey, place(id, node3Key))
	refused(t, h, routerKey, place(id, node4Key), CodeBadState, "already has 3 replicas")

	h.mustDo(routerKey, replace(id, node4Key, node3Key))
	j := query[Job](h, "job/"+id)
	if len(j.Replicas) != 3 || j.Replicas[2].Node != addr(node4Key) || j.Replicas[2].PricePerHour != omni || j.Replicas[2].AssignedHeight != h.height {
		t.Fatalf("after replacing node3 by node4: %+v", j.Replicas)
	}
	refused(t, h, routerKey, replace(id, node3Key, strangerKey), CodeNotFound, "is not a replica")
	refused(t, h, routerKey, replace(id, node1Key, node4Key), CodeDuplicate, "already a replica")
	refused(t, h, node3Key, seal(id, node3Key, digestA, 1000), CodeUnauthorized, "not a replica") // replaced out

	h.mustDo(node1Key, seal(id, node1Key, digestA, 1000))
	refused(t, h, routerKey, replace(id, node3Key, node1Key), CodeBadState, "has sealed its result")
	h.mustDo(routerKey, replace(id, node3Key, node2Key)) // others may still be replaced
	h.mustDo(node3Key, seal(id, node3Key, digestA, 1000))
	h.mustDo(node4Key, seal(id, node4Key, digestA, 1000))
	for _, k := range []ed25519.PrivateKey{node1Key, node3Key, node4Key} {
		refused(t, h, routerKey, replace(id, node2Key, k), CodeBadState, "has sealed its result")
	}
	refused(t, h, routerKey, place(id, node2Key), CodeBadState, "already has 3 replicas")

	refused(t, h, routerKey, place(id, strangerKey), CodeNotFound, "not an active node")
	low := redundantMsg(omni)
	low.CreateJob.MaxPricePerHour = 2_500_000
	lowID := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, low)
	refused(t, h, routerKey, place(lowID, node3Key), CodeInvalidMsg, "above the job's ceiling")

	freivalds := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	h.mustDo(routerKey, place(freivalds, node1Key))
	refused(t, h, routerKey, replace(freivalds, node2Key, node1Key), CodeInvalidMsg, "no replicas to replace")
	h.checkBooks()
}

// TestRedundantCommitRules: only a replica commits to an assigned redundant job, once, and
// what it commits is a seal, never the digest (the node of a freivalds job commits the
// digest, never a seal). Seals decide nothing, however well they match: the job waits for
// the reveals. It cannot be attested, nor cancelled once a replica has sealed, but can be
// before.
func TestRedundantCommitRules(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	refused(t, h, node1Key, seal(id, node1Key, digestA, 1000), CodeBadState, "not awaiting a result")
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	refused(t, h, node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: 2000}}, CodeInvalidMsg, "commit a seal of the result")
	h.mustDo(node1Key, seal(id, node1Key, digestA, 2000))
	if r := query[Job](h, "job/"+id).Replicas[0]; r.Seal != ResultSeal(id, addr(node1Key), digestA) || r.ResultDigest != "" ||
		r.GPUMillis != 2000 || r.ResultHeight != h.height || !r.Committed() || r.Revealed() {
		t.Fatalf("sealed replica %+v", r)
	}
	refused(t, h, node1Key, seal(id, node1Key, digestB, 2000), CodeDuplicate, "already committed")
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}, CodeBadState, "settle on agreement, not attestation")
	refused(t, h, consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled")
	refused(t, h, routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled")

	h.mustDo(routerKey, place(id, node3Key)) // a third replica after one has sealed
	h.mustDo(node2Key, seal(id, node2Key, digestA, 3000))
	h.mustDo(node3Key, seal(id, node3Key, digestA, 4000))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned || j.Settlement != nil || j.ResultDigest != "" {
		t.Fatalf("three matching seals, no reveal: job is %s, want it waiting", j.Status)
	}

	freivalds := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	h.mustDo(routerKey, place(freivalds, node4Key))
	refused(t, h, node4Key, seal(freivalds, node4Key, digestA, 1000), CodeInvalidMsg, "commit its result_digest, not a seal")
	refused(t, h, node4Key, reveal(freivalds, digestA), CodeBadState, "only a redundant job's replicas seal and reveal")

	// Before any replica seals, the consumer may still cancel.
	c0 := h.balance(consumerKey)
	id = newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}})
	if j := query[Job](h, "job/"+id); j.Status != JobCancelled || h.balance(consumerKey) != c0 {
		t.Fatalf("cancel before any seal: job %s, consumer %d of %d", j.Status, h.balance(consumerKey), c0)
	}
	h.checkBooks()
}

// TestRedundantInconclusiveRefundsInFull: three replicas seal three digests; after two
// reveals the job waits, since the third could agree with either, and the third reveal
// fails it. Disagreement does not say who was wrong: the consumer gets everything back, and
// no node is paid, slashed or marked.
func TestRedundantInconclusiveRefundsInFull(t *testing.T) {
	h := redundantHarness(t)
	c0, sp0 := h.balance(consumerKey), h.supply()
	id := newRedundantJob(t, h, omni)
	keys3 := []ed25519.PrivateKey{node1Key, node2Key, node3Key}
	var before []Node
	for _, k := range keys3 {
		h.mustDo(routerKey, place(id, k))
		before = append(before, query[Node](h, "node/"+string(addr(k))))
	}
	balances0 := []uint64{h.balance(node1Key), h.balance(node2Key), h.balance(node3Key)}
	for i, k := range keys3 {
		h.mustDo(k, seal(id, k, []string{digestA, digestB, digestC}[i], 1000))
	}
	h.mustDo(node1Key, reveal(id, digestA))
	h.mustDo(node2Key, reveal(id, digestB))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
		t.Fatalf("two of three disagreeing: job is %s, want it waiting for the third", j.Status)
	}
	r := h.do(node3Key, reveal(id, digestC))
	if r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	j := query[Job](h, "job/"+id)
	if j.Status != JobFailed || !reflect.DeepEqual(*j.Settlement, Settlement{Refunded: omni, Height: h.height}) {
		t.Fatalf("job %s, settlement %+v; want failed with a full refund", j.Status, j.Settlement)
	}
	if h.balance(consumerKey) != c0 {
		t.Fatalf("consumer has %d, had %d", h.balance(consumerKey), c0)
	}
	for i, k := range keys3 {
		if n := query[Node](h, "node/"+string(addr(k))); n != before[i] || h.balance(k) != balances0[i] {
			t.Errorf("node %s changed: %+v, was %+v", n.Address, n, before[i])
		}
	}
	if sp := h.supply(); sp.Burned != sp0.Burned || !reflect.DeepEqual(sp.Pools, sp0.Pools) || sp.Escrowed != 0 {
		t.Fatalf("supply moved: %+v, was %+v", sp, sp0)
	}
	last := r.Events[len(r.Events)-1]
	if last.Type != "job_failed" || !strings.HasPrefix(attrOf(last, "reason"), "inconclusive") || len(r.Events) != 2 {
		t.Fatalf("events %+v, want the reveal and an inconclusive failure, nothing slashed", r.Events)
	}
	h.checkBooks()
}

// TestRedundantExpiryRefunds: at its deadline an assigned redundant job whose revealed
// digests make no quorum (here one replica has revealed) is refunded in full, as any open
// job is; with no quorum no one can tell who was right, so the refund does nothing to
// nodes: not to the replica that revealed, nor to those that sealed and did not reveal.
func TestRedundantExpiryRefunds(t *testing.T) {
	h := redundantHarness(t)
	c0 := h.balance(consumerKey)
	id := newRedundantJobFor(t, h, 2*omni, 10)
	replicas := []ed25519.PrivateKey{node1Key, node2Key, node3Key}
	for _, k := range replicas {
		h.mustDo(routerKey, place(id, k))
	}
	for _, k := range replicas {
		h.mustDo(k, seal(id, k, digestA, 1000))
	}
	h.mustDo(node1Key, reveal(id, digestA))
	nodes, balances := map[keys.Address]Node{}, map[keys.Address]uint64{}
	for _, k := range replicas {
		nodes[addr(k)], balances[addr(k)] = query[Node](h, "node/"+string(addr(k))), h.balance(k)
	}
	for query[Job](h, "job/"+id).Status == JobAssigned {
		h.block()
	}
	if j := query[Job](h, "job/"+id); j.Status != JobExpired || j.Settlement.Refunded != 2*omni {
		t.Fatalf("job %s %+v after its deadline", j.Status, j.Settlement)
	}
	if h.balance(consumerKey) != c0 {
		t.Fatalf("consumer has %d, had %d: expiry did not refund it", h.balance(consumerKey), c0)
	}
	for _, k := range replicas {
		if n := query[Node](h, "node/"+string(addr(k))); n != nodes[addr(k)] || h.balance(k) != balances[addr(k)] {
			t.Errorf("expiry touched replica %s: %+v, balance %d", addr(k), n, h.balance(k))
		}
	}
	refused(t, h, node2Key, reveal(id, digestA), CodeBadState, "is expired")
	h.checkBooks()
}

// TestRedundantAttackersChangeNothing: participants who may not move a redundant job try
// to. A node that is not a replica, the consumer or a stranger commits or reveals; a
// replica commits twice, commits its digest in the open, or reveals before all three have
// sealed; a replica that has not sealed reveals; anyone but a router places or replaces a
// replica; the router replaces a replica whose result is sealed; a validator tries to
// settle by attestation; the consumer or the router cancels once work is sealed. Each is
// refused with its code and changes nothing, and the honest replicas' reveals then settle
// as if they had not tried, all three paid.
func TestRedundantAttackersChangeNothing(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(node1Key, seal(id, node1Key, digestA, 60_000))
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		msg  Msg
		code Code
		log  string
	}{
		{"a registered node that is not a replica commits", node3Key, seal(id, node3Key, digestB, 1), CodeUnauthorized, "not a replica"},
		{"the consumer commits", consumerKey, seal(id, consumerKey, digestB, 1), CodeUnauthorized, "not a replica"},
		{"a stranger commits", strangerKey, seal(id, strangerKey, digestA, 1), CodeUnauthorized, "not a replica"},
		{"a stranger reveals", strangerKey, reveal(id, digestA), CodeUnauthorized, "not a replica"},
		{"a replica commits again to change its vote", node1Key, seal(id, node1Key, digestB, 1), CodeDuplicate, "already committed"},
		{"a replica commits again to agree with itself", node1Key, seal(id, node1Key, digestA, 10_000_000), CodeDuplicate, "already committed"},
		{"a replica commits its digest in the open", node2Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: 1}}, CodeInvalidMsg, "commit a seal"},
		{"the only sealed replica reveals", node1Key, reveal(id, digestA), CodeBadState, notAllSealed(id, 1)},
		{"a replica that has not sealed reveals", node2Key, reveal(id, digestA), CodeUnauthorized, "sealed no result"},
		{"the consumer places a replica", consumerKey, place(id, node3Key), CodeUnauthorized, "not a router"},
		{"a node places itself", node3Key, place(id, node3Key), CodeUnauthorized, "not a router"},
		{"a node replaces a replica by itself", node3Key, replace(id, node3Key, node2Key), CodeUnauthorized, "not a router"},
		{"a replica replaces the other by a friend", node1Key, replace(id, node3Key, node2Key), CodeUnauthorized, "not a router"},
		{"the router replaces a replica whose result is sealed", routerKey, replace(id, node3Key, node1Key), CodeBadState, "has sealed its result"},
		{"a validator settles by attestation", validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}, CodeBadState, "not attestation"},
		{"the consumer cancels after a seal", consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled"},
		{"the router cancels after a seal", routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled"},
		{"a node cancels", node2Key, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeUnauthorized, "only the consumer or a router"},
	} {
		t.Run(c.name, func(t *testing.T) { refused(t, h, c.key, c.msg, c.code, c.log) })
	}
	h.mustDo(node2Key, seal(id, node2Key, digestA, 30_000))
	t.Run("a replica reveals with two of three sealed", func(t *testing.T) {
		refused(t, h, node2Key, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
	})
	h.mustDo(routerKey, place(id, node3Key))
	h.mustDo(node3Key, seal(id, node3Key, digestA, 45_000))
	for _, k := range []ed25519.PrivateKey{node1Key, node2Key, node3Key} {
		h.mustDo(k, reveal(id, digestA))
	}
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || j.GPUMillis != 45_000 || len(j.Replicas) != 3 || len(j.Settlement.Shares) != 3 {
		t.Fatalf("honest settlement after the attempts: %s, %d ms (want the median, 45,000), %+v", j.Status, j.GPUMillis, j.Settlement)
	}
	h.checkBooks()
}

// redundantOracle is the settlement the rules' words give, in math/big: the GPU time the
// agreeing replicas reported, the lower of two or the middle of three (their sum less the
// least and the most), clamped to [MinBilledMillis, timeout]; per replica price × billed /
// 3,600,000 rounded up, at most budget/3 rounded down, 'burn' of it rounded up, 'fee'
// rounded down (never more than the cost less the burn); the rest refunded.
func redundantOracle(p Params, budget, timeout uint64, agreed []Replica) Settlement {
	least, most, sum := agreed[0].GPUMillis, agreed[0].GPUMillis, new(big.Int)
	for _, r := range agreed {
		least, most = min(least, r.GPUMillis), max(most, r.GPUMillis)
		sum.Add(sum, new(big.Int).SetUint64(r.GPUMillis))
	}
	used := least
	if len(agreed) == 3 {
		used = sum.Sub(sum, new(big.Int).SetUint64(least)).Sub(sum, new(big.Int).SetUint64(most)).Uint64()
	}
	s := Settlement{BilledMillis: min(max(used, p.MinBilledMillis), timeout*1000)}
	for _, r := range agreed {
		cost := min(ratio(r.PricePerHour, s.BilledMillis, 3_600_000, true), budget/3)
		burn := ratio(cost, p.BurnBP, BasisPoints, true)
		fee := min(ratio(cost, p.FeeBP, BasisPoints, false), cost-burn)
		s.Shares = append(s.Shares, Share{Node: r.Node, Cost: cost, Burned: burn, Fee: fee, Paid: cost - burn - fee})
		s.Cost, s.Burned, s.Fee, s.Paid = s.Cost+cost, s.Burned+burn, s.Fee+fee, s.Paid+cost-burn-fee
	}
	s.Refunded = budget - s.Cost
	return s
}

func TestRedundantSettlementPropertyRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	nodes := []ed25519.PrivateKey{node1Key, node2Key, node3Key}
	for i := range 20_000 {
		p := DefaultParams()
		p.BurnBP = rng.Uint64N(BasisPoints + 1)
		p.FeeBP = rng.Uint64N(BasisPoints - p.BurnBP + 1)
		p.MinBilledMillis = rng.Uint64N(5000)
		j := Job{Budget: 1 + rng.Uint64N(1<<uint(rng.IntN(50))), TimeoutSeconds: 1 + rng.Uint64N(100_000)}
		var agreed []Replica
		out := rng.IntN(4) // the one that does not agree, anywhere, or none
		for k, n := range nodes {
			r := Replica{Node: addr(n), PricePerHour: rng.Uint64N(1 << uint(rng.IntN(40))), Seal: digestC, ResultDigest: digestA, GPUMillis: rng.Uint64N(1 << uint(rng.IntN(32)))}
			switch {
			case k != out:
				agreed = append(agreed, r)
			case rng.IntN(2) == 0:
				r.ResultDigest = digestB // outvoted
			default:
				r.ResultDigest = "" // withheld: sealed, never revealed
			}
			j.Replicas = append(j.Replicas, r)
		}
		s, err := RedundantSettlementFor(p, j, digestA)
		if err != nil {
			t.Fatalf("%+v: %v", j, err)
		}
		if want := redundantOracle(p, j.Budget, j.TimeoutSeconds, agreed); !reflect.DeepEqual(s, want) {
			t.Fatalf("case %d, %+v under burn %d fee %d:\n%+v\nwant %+v", i, j, p.BurnBP, p.FeeBP, s, want)
		}
		if s.Paid+s.Burned+s.Fee+s.Refunded != j.Budget {
			t.Fatalf("case %d: %+v does not divide the budget %d", i, s, j.Budget)
		}
		for _, sh := range s.Shares {
			if sh.Cost > j.Budget/RedundantReplicas || sh.Paid+sh.Burned+sh.Fee != sh.Cost {
				t.Fatalf("case %d: share %+v of budget %d", i, sh, j.Budget)
			}
		}
	}
}

// TestRedundantConservesOnChainRandom runs redundant jobs under random parameters (burn,
// fee, minimum billed time, reward rate, a rewards pool from empty to ample) with random
// prices, budgets, timeouts, GPU times and digests. Each job runs the whole flow: three of
// four nodes are placed, all three replicas seal in a random order (now and then one is
// replaced by the spare node before it seals), and they reveal in another, the job
// waiting until all have revealed; now and then one never reveals, and the job is decided
// at its deadline, its replica marked as withholding if the other two agree. After every
// block the books balance (checkBooks); after every job the tokens landed where the
// oracle says and
//
//	Σ paid + Σ burned + Σ fee + refunded + rewards taken == budget + rewards taken
//
// holds over the balances themselves: what the nodes, the burn, the fee's destinations
// and the consumer got adds up to the escrow plus what left the rewards pool.
func TestRedundantConservesOnChainRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	nodes := []ed25519.PrivateKey{node1Key, node2Key, node3Key, node4Key}
	outcomes := map[string]int{}
	for range 6 {
		g := redundantGenesis()
		g.Params.BurnBP = rng.Uint64N(1001)
		g.Params.FeeBP = rng.Uint64N(2001)
		g.Params.MinBilledMillis = rng.Uint64N(5000)
		g.Params.RewardPerGPUHour = rng.Uint64N(5 * omni)
		g.Pools[PoolRewards] = []uint64{0, 7, 5_000, 1_000 * omni}[rng.IntN(4)]
		h := newHarness(t, withSupply(g))
		p := h.params()
		stake := 500 * omni
		for range 8 {
			for _, k := range nodes { // a new price for each job; the stake is topped up by 1
				h.mustDo(k, Msg{RegisterNode: &MsgRegisterNode{Stake: stake, PricePerHour: 1 + rng.Uint64N(3*omni), Hardware: registerMsg.RegisterNode.Hardware}})
			}
			stake = 1
			budget, timeout := 1+rng.Uint64N(3*omni), 10+rng.Uint64N(600)
			type snap struct {
				balance uint64
				rec     Node
			}
			before := map[keys.Address]snap{}
			for _, k := range nodes {
				before[addr(k)] = snap{h.balance(k), query[Node](h, "node/"+string(addr(k)))}
			}
			consumer0, val0, sp0 := h.balance(consumerKey), h.balance(validatorKey), h.supply()

			id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
			m := redundantMsg(budget)
			m.CreateJob.TimeoutSeconds = timeout
			h.mustDo(consumerKey, m)
			h.checkBooks()
			order := rng.Perm(len(nodes))
			slots, spare := order[:RedundantReplicas], order[RedundantReplicas] // slots: the replicas' nodes, in placement order
			for _, i := range slots {
				h.mustDo(routerKey, place(id, nodes[i]))
				h.checkBooks()
			}
			var digests [4]string
			var millis [4]uint64
			for i := range nodes {
				digests[i], millis[i] = []string{digestA, digestA, digestB, digestC}[rng.IntN(4)], rng.Uint64N(2*timeout*1000+1)
			}
			for _, n := range rng.Perm(RedundantReplicas) { // all three seal, in random order
				if rng.IntN(5) == 0 { // its node failed: the spare takes its place before it seals
					h.mustDo(routerKey, replace(id, nodes[spare], nodes[slots[n]]))
					h.checkBooks()
					slots[n], spare = spare, slots[n]
					outcomes["replaced"]++
				}
				i := slots[n]
				h.mustDo(nodes[i], seal(id, nodes[i], digests[i], millis[i]))
				h.checkBooks()
			}
			withheld := -1 // a replica that never reveals
			if rng.IntN(4) == 0 {
				withheld = rng.IntN(RedundantReplicas)
			}
			var revealed []Replica
			for _, n := range rng.Perm(RedundantReplicas) { // and reveal in another
				if n == withheld {
					continue
				}
				i := slots[n]
				r := Replica{Node: addr(nodes[i]), ResultDigest: digests[i], GPUMillis: millis[i], PricePerHour: before[addr(nodes[i])].rec.PricePerHour}
				h.mustDo(nodes[i], reveal(id, r.ResultDigest))
				h.checkBooks()
				revealed = append(revealed, r)
				if st := query[Job](h, "job/"+id).Status; len(revealed) < RedundantReplicas && st != JobAssigned {
					t.Fatalf("%d of %d replicas revealed: job is %s, want it waiting", len(revealed), RedundantReplicas, st)
				}
			}
			if withheld >= 0 { // the job waits for the reveal until its deadline
				h.finalize(h.next(time.Duration(timeout) * time.Second))
				h.checkBooks()
			}
			// What the rule says: a digest RedundantQuorum revealed settles the job, paying
			// those that revealed it (shares in the order of the replicas' slots); the others
			// are outvoted, or withheld their reveal. With no such digest, no one is.
			var quorum string
			for _, r := range revealed {
				n := 0
				for _, o := range revealed {
					if o.ResultDigest == r.ResultDigest {
						n++
					}
				}
				if n >= RedundantQuorum {
					quorum = r.ResultDigest
				}
			}
			settled := quorum != ""
			var agreed, outvoted []Replica
			var silent []keys.Address
			for _, i := range slots {
				k := slices.IndexFunc(revealed, func(r Replica) bool { return r.Node == addr(nodes[i]) })
				switch {
				case k < 0:
					silent = append(silent, addr(nodes[i]))
				case revealed[k].ResultDigest == quorum:
					agreed = append(agreed, revealed[k])
				default:
					outvoted = append(outvoted, revealed[k])
				}
			}
			ending := JobSettled
			switch {
			case !settled && withheld >= 0:
				ending = JobExpired // two revealed and disagree
			case !settled:
				ending = JobFailed // all three revealed, no two agree
			}
			j := query[Job](h, "job/"+id)
			sp := h.supply()
			received := map[keys.Address]uint64{}
			var toNodes uint64
			for _, k := range nodes {
				received[addr(k)] = h.balance(k) - before[addr(k)].balance
				toNodes += received[addr(k)]
			}
			refunded := h.balance(consumerKey) - (consumer0 - budget)
			burned, taken := sp.Burned-sp0.Burned, sp0.Pools[PoolRewards]-sp.Pools[PoolRewards]
			fees := h.balance(validatorKey) - val0 + sp.Pools[PoolBuyback] - sp0.Pools[PoolBuyback] +
				sp.Pools[PoolEcosystem] - sp0.Pools[PoolEcosystem] + sp.Pools[PoolValidatorRewards] - sp0.Pools[PoolValidatorRewards]
			if toNodes+burned+fees+refunded != budget+taken {
				t.Fatalf("nodes %d + burned %d + fees %d + refunded %d != budget %d + rewards %d", toNodes, burned, fees, refunded, budget, taken)
			}
			if !settled {
				outcomes[ending]++
				if j.Status != ending || refunded != budget || toNodes+burned+fees+taken != 0 {
					t.Fatalf("job %s, want %s: refunded %d of %d, nodes %d, burned %d, fees %d, rewards %d", j.Status, ending, refunded, budget, toNodes, burned, fees, taken)
				}
				for _, k := range nodes {
					if query[Node](h, "node/"+string(addr(k))) != before[addr(k)].rec {
						t.Fatalf("%s job changed node %s", ending, addr(k))
					}
				}
				continue
			}
			outcomes[JobSettled]++
			if len(agreed) == RedundantReplicas {
				outcomes["all agree"]++
			}
			if withheld >= 0 {
				outcomes["at the deadline"]++
			}
			want := redundantOracle(p, budget, timeout, agreed)
			reward := min(ratio(p.RewardPerGPUHour, want.BilledMillis, 3_600_000, false), sp0.Pools[PoolRewards])
			each := reward / uint64(len(agreed))
			for i := range want.Shares {
				want.Shares[i].Reward = each
			}
			want.Reward, want.Height = each*uint64(len(agreed)), j.Settlement.Height
			if j.Status != JobSettled || !reflect.DeepEqual(*j.Settlement, want) {
				t.Fatalf("job %s, %d budget, %d s: settled %+v\nwant %+v", j.Status, budget, timeout, j.Settlement, want)
			}
			if refunded != want.Refunded || burned != want.Burned || fees != want.Fee || taken != want.Reward {
				t.Fatalf("refunded %d, burned %d, fees %d, rewards %d; settlement %+v", refunded, burned, fees, taken, want)
			}
			paid := map[keys.Address]uint64{}
			for _, sh := range want.Shares {
				paid[sh.Node] = sh.Paid + sh.Reward
			}
			for _, k := range nodes {
				a := addr(k)
				if received[a] != paid[a] {
					t.Fatalf("node %s received %d, want %d", a, received[a], paid[a])
				}
				rec, was := query[Node](h, "node/"+string(a)), before[a].rec
				switch {
				case contains(nodeAddrs(agreed), a):
					was.JobsVerified++
				case contains(nodeAddrs(outvoted), a):
					was.JobsFailed++
					outcomes["outvoted"]++
				case contains(silent, a):
					was.JobsFailed++
					outcomes["withheld"]++
				}
				if rec != was {
					t.Fatalf("node record %+v, want %+v", rec, was)
				}
			}
		}
	}
	for _, want := range []string{JobSettled, JobFailed, JobExpired, "outvoted", "withheld", "replaced", "all agree", "at the deadline"} {
		if outcomes[want] == 0 {
			t.Fatalf("random jobs never reached %q: %v", want, outcomes)
		}
	}
	t.Logf("outcomes %v", outcomes)
}

func nodeAddrs(rs []Replica) []keys.Address {
	out := make([]keys.Address, len(rs))
	for i, r := range rs {
		out[i] = r.Node
	}
	return out
}

// twoVerifiedOneFailedNoSlash checks the records of a redundant job's replicas after
// node1 and node2 were paid and node3 was not: one verified job each for the pair, one
// failed for node3, and every stake whole.
func twoVerifiedOneFailedNoSlash(t *testing.T, h *harness) {
	t.Helper()
	for _, c := range []struct {
		node             ed25519.PrivateKey
		verified, failed uint64
	}{{node1Key, 1, 0}, {node2Key, 1, 0}, {node3Key, 0, 1}} {
		n := query[Node](h, "node/"+string(addr(c.node)))
		if n.JobsVerified != c.verified || n.JobsFailed != c.failed || n.Stake != 500*omni {
			t.Errorf("node %s: verified %d failed %d stake %d, want %d, %d and no slash", n.Address, n.JobsVerified, n.JobsFailed, n.Stake, c.verified, c.failed)
		}
	}
}
