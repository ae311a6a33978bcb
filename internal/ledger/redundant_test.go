package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

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
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, redundantMsg(budget))
	return id
}

func place(id string, node ed25519.PrivateKey) Msg {
	return Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node), ScoreBP: 8000}}
}

func replace(id string, node, old ed25519.PrivateKey) Msg {
	return Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node), Replaces: addr(old)}}
}

func commit(id, digest string, millis uint64) Msg {
	return Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digest, GPUMillis: millis}}
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
	} {
		if err := c.msg.ValidateBasic(); !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}

// TestRedundantSettlementForPinsEveryRule: the agreeing replicas are billed the lower of
// their GPU times (at least MinBilledMillis, at most the timeout), each at its own price
// rounded up and capped at a third of the budget (rounded down); each cost is divided as
// SettlementFor divides one (2% burn rounded up, 5% fee rounded down, the rest paid); the
// totals are the sums and the consumer gets back the rest. A replica that committed
// another digest, listed first, is not paid.
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
		t.Fatalf("settling a digest no replica committed: %v", err)
	}
}

// TestRedundantJobSettlesWithExactSplit: node3 commits first and disagrees; node1 then
// agrees with nobody yet; node2's agreeing commit settles the job. The numbers are those
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
	h.mustDo(node3Key, commit(id, digestB, 90_000))
	h.mustDo(node1Key, commit(id, digestA, 90_001))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned || j.Settlement != nil {
		t.Fatalf("job with one vote each for two digests is %s", j.Status)
	}
	r := h.do(node2Key, commit(id, digestA, 45_005))
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
	if j.Node != "" || j.ResultDigest != digestA || j.GPUMillis != 45_005 || len(j.Replicas) != 3 || j.Replicas[0].ResultDigest != digestB {
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
	for _, c := range []struct {
		node             ed25519.PrivateKey
		verified, failed uint64
	}{{node1Key, 1, 0}, {node2Key, 1, 0}, {node3Key, 0, 1}} {
		n := query[Node](h, "node/"+string(addr(c.node)))
		if n.JobsVerified != c.verified || n.JobsFailed != c.failed || n.Stake != 500*omni {
			t.Errorf("node %s: verified %d failed %d stake %d, want %d, %d and no slash", n.Address, n.JobsVerified, n.JobsFailed, n.Stake, c.verified, c.failed)
		}
	}
	var types []string
	for _, e := range r.Events {
		types = append(types, e.Type)
		if e.Type == "job_settled" && attrOf(e, "node") != string(n1)+","+string(n2) || e.Type == "replica_outvoted" && attrOf(e, "node") != string(n3) {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(types, " ") != "result_committed job_settled settlement_share settlement_share replica_outvoted" {
		t.Errorf("events %v", types)
	}
	raw, err := h.app.Query("job/" + id)
	if err != nil || !bytes.Contains(raw, []byte(`"replicas":[{"node":"`+string(n3))) || !bytes.Contains(raw, []byte(`"shares":[{"node":"`+string(n1))) {
		t.Fatalf("job query does not show replicas and shares: %s (%v)", raw, err)
	}
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
// under the ceiling, and may put a new node in the place of one that has not committed.
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
	refused(t, h, node3Key, commit(id, digestA, 1000), CodeUnauthorized, "not a replica") // replaced out

	h.mustDo(node1Key, commit(id, digestA, 1000))
	refused(t, h, routerKey, replace(id, node3Key, node1Key), CodeBadState, "has committed its result")
	h.mustDo(routerKey, replace(id, node3Key, node2Key)) // others may still be replaced

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

// TestRedundantCommitRules: only a replica commits, once, to an assigned job; the job waits
// while no two agree and fewer than three have committed, and settles on the second
// agreeing commit even when an earlier one disagreed. It cannot be attested, nor cancelled
// once a replica has committed, but can be before.
func TestRedundantCommitRules(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	refused(t, h, node1Key, commit(id, digestA, 1000), CodeBadState, "not awaiting a result")
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(node1Key, commit(id, digestA, 2000))
	refused(t, h, node1Key, commit(id, digestB, 2000), CodeDuplicate, "already committed")
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true}}, CodeBadState, "settle on agreement, not attestation")
	refused(t, h, consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled")
	refused(t, h, routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled")

	h.mustDo(node2Key, commit(id, digestB, 3000))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
		t.Fatalf("two replicas disagreeing, the third not placed: job is %s, want it waiting", j.Status)
	}
	h.mustDo(routerKey, place(id, node3Key)) // a third replica after two have committed
	h.mustDo(node3Key, commit(id, digestA, 4000))
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || j.ResultDigest != digestA || j.GPUMillis != 2000 || len(j.Settlement.Shares) != 2 ||
		j.Settlement.Shares[0].Node != addr(node1Key) || j.Settlement.Shares[1].Node != addr(node3Key) {
		t.Fatalf("job %s, digest %s, %d ms, settlement %+v", j.Status, j.ResultDigest, j.GPUMillis, j.Settlement)
	}
	if n := query[Node](h, "node/"+string(addr(node2Key))); n.JobsFailed != 1 || n.JobsVerified != 0 {
		t.Fatalf("outvoted node2 record %+v", n)
	}
	refused(t, h, node2Key, commit(id, digestA, 1000), CodeBadState, "not awaiting a result")

	// Before any replica commits, the consumer may still cancel.
	c0 := h.balance(consumerKey)
	id = newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}})
	if j := query[Job](h, "job/"+id); j.Status != JobCancelled || h.balance(consumerKey) != c0 {
		t.Fatalf("cancel before any commit: job %s, consumer %d of %d", j.Status, h.balance(consumerKey), c0)
	}
	h.checkBooks()
}

// TestRedundantInconclusiveRefundsInFull: three replicas, three digests. Disagreement does
// not say who was wrong: the consumer gets everything back, and no node is paid, slashed
// or marked.
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
	h.mustDo(node1Key, commit(id, digestA, 1000))
	h.mustDo(node2Key, commit(id, digestB, 1000))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
		t.Fatalf("two of three disagreeing: job is %s, want it waiting for the third", j.Status)
	}
	r := h.do(node3Key, commit(id, digestC, 1000))
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
		t.Fatalf("events %+v, want the commit and an inconclusive failure, nothing slashed", r.Events)
	}
	h.checkBooks()
}

// TestRedundantExpiryRefunds: at its deadline an assigned redundant job is refunded in full,
// as any open job is; expiry does nothing to nodes, and nothing to the replicas.
func TestRedundantExpiryRefunds(t *testing.T) {
	h := redundantHarness(t)
	c0 := h.balance(consumerKey)
	m := redundantMsg(2 * omni)
	m.CreateJob.TimeoutSeconds = 10
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, m)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(node1Key, commit(id, digestA, 1000))
	n1, b1 := query[Node](h, "node/"+string(addr(node1Key))), h.balance(node1Key)
	for query[Job](h, "job/"+id).Status == JobAssigned {
		h.block()
	}
	if j := query[Job](h, "job/"+id); j.Status != JobExpired || j.Settlement.Refunded != 2*omni {
		t.Fatalf("job %s %+v after its deadline", j.Status, j.Settlement)
	}
	if h.balance(consumerKey) != c0 || h.balance(node1Key) != b1 || query[Node](h, "node/"+string(addr(node1Key))) != n1 {
		t.Fatal("expiry did not refund the consumer, or touched the replica that committed")
	}
	refused(t, h, node2Key, commit(id, digestA, 1000), CodeBadState, "is expired")
	h.checkBooks()
}

// TestRedundantAttackersChangeNothing: participants who may not move a redundant job try
// to. A node that is not a replica, the consumer or a stranger commits; a replica votes
// twice; anyone but a router places or replaces a replica; the router replaces a replica
// whose result is in; a validator tries to settle by attestation; the consumer or the
// router cancels once work is committed. Each is refused with its code and changes nothing,
// and the honest replica's commit then settles as if they had not tried.
func TestRedundantAttackersChangeNothing(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(node1Key, commit(id, digestA, 60_000))
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		msg  Msg
		code Code
		log  string
	}{
		{"a registered node that is not a replica commits", node3Key, commit(id, digestB, 1), CodeUnauthorized, "not a replica"},
		{"the consumer commits", consumerKey, commit(id, digestB, 1), CodeUnauthorized, "not a replica"},
		{"a stranger commits", strangerKey, commit(id, digestA, 1), CodeUnauthorized, "not a replica"},
		{"a replica commits again to change its vote", node1Key, commit(id, digestB, 1), CodeDuplicate, "already committed"},
		{"a replica commits again to agree with itself", node1Key, commit(id, digestA, 10_000_000), CodeDuplicate, "already committed"},
		{"the consumer places a replica", consumerKey, place(id, node3Key), CodeUnauthorized, "not a router"},
		{"a node places itself", node3Key, place(id, node3Key), CodeUnauthorized, "not a router"},
		{"a node replaces a replica by itself", node3Key, replace(id, node3Key, node2Key), CodeUnauthorized, "not a router"},
		{"a replica replaces the other by a friend", node1Key, replace(id, node3Key, node2Key), CodeUnauthorized, "not a router"},
		{"the router replaces a replica whose result is in", routerKey, replace(id, node3Key, node1Key), CodeBadState, "has committed its result"},
		{"a validator settles by attestation", validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true}}, CodeBadState, "not attestation"},
		{"the consumer cancels after a commit", consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled"},
		{"the router cancels after a commit", routerKey, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeBadState, "can no longer be cancelled"},
		{"a node cancels", node2Key, Msg{CancelJob: &MsgCancelJob{JobID: id}}, CodeUnauthorized, "only the consumer or a router"},
	} {
		t.Run(c.name, func(t *testing.T) { refused(t, h, c.key, c.msg, c.code, c.log) })
	}
	h.mustDo(node2Key, commit(id, digestA, 30_000))
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || j.GPUMillis != 30_000 || len(j.Replicas) != 2 || len(j.Settlement.Shares) != 2 {
		t.Fatalf("honest settlement after the attempts: %s, %d ms, %+v", j.Status, j.GPUMillis, j.Settlement)
	}
	h.checkBooks()
}

// redundantOracle is the settlement the rules' words give, in math/big: the lower GPU time
// of the agreeing replicas clamped to [MinBilledMillis, timeout]; per replica price ×
// billed / 3,600,000 rounded up, at most budget/3 rounded down, 'burn' of it rounded up,
// 'fee' rounded down (never more than the cost less the burn); the rest refunded.
func redundantOracle(p Params, budget, timeout uint64, agreed []Replica) Settlement {
	used := agreed[0].GPUMillis
	for _, r := range agreed {
		used = min(used, r.GPUMillis)
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
		out := rng.IntN(3)
		for k, n := range nodes {
			r := Replica{Node: addr(n), PricePerHour: rng.Uint64N(1 << uint(rng.IntN(40))), ResultDigest: digestA, GPUMillis: rng.Uint64N(1 << uint(rng.IntN(32)))}
			if k == out {
				r.ResultDigest = digestB // the outvoted one, anywhere
			} else {
				agreed = append(agreed, r)
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
// prices, budgets, timeouts, GPU times, commit orders and digests. After every block the
// books balance (checkBooks); after every job the tokens landed where the oracle says and
//
//	Σ paid + Σ burned + Σ fee + refunded + rewards taken == budget + rewards taken
//
// holds over the balances themselves: what the nodes, the burn, the fee's destinations
// and the consumer got adds up to the escrow plus what left the rewards pool.
func TestRedundantConservesOnChainRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	nodes := []ed25519.PrivateKey{node1Key, node2Key, node3Key}
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
			placed := rng.Perm(3)
			for _, i := range placed {
				h.mustDo(routerKey, place(id, nodes[i]))
				h.checkBooks()
			}
			var agreed, outvoted []Replica
			var settled bool
			var committed []Replica
			for _, i := range rng.Perm(3) {
				r := Replica{Node: addr(nodes[i]), ResultDigest: []string{digestA, digestA, digestB, digestC}[rng.IntN(4)],
					GPUMillis: rng.Uint64N(2*timeout*1000 + 1), PricePerHour: before[addr(nodes[i])].rec.PricePerHour}
				h.mustDo(nodes[i], commit(id, r.ResultDigest, r.GPUMillis))
				h.checkBooks()
				committed = append(committed, r)
				agreed, outvoted = nil, nil
				for _, i := range placed { // shares come in the order the replicas were placed
					for _, c := range committed {
						switch {
						case c.Node != addr(nodes[i]):
						case c.ResultDigest == r.ResultDigest:
							agreed = append(agreed, c)
						default:
							outvoted = append(outvoted, c)
						}
					}
				}
				if settled = len(agreed) == RedundantQuorum; settled {
					break
				}
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
				outcomes["inconclusive"]++
				if j.Status != JobFailed || refunded != budget || toNodes+burned+fees+taken != 0 {
					t.Fatalf("inconclusive job %s: refunded %d of %d, nodes %d, burned %d, fees %d, rewards %d", j.Status, refunded, budget, toNodes, burned, fees, taken)
				}
				for _, k := range nodes {
					if query[Node](h, "node/"+string(addr(k))) != before[addr(k)].rec {
						t.Fatalf("inconclusive job changed node %s", addr(k))
					}
				}
				continue
			}
			outcomes["settled"]++
			want := redundantOracle(p, budget, timeout, agreed)
			reward := min(ratio(p.RewardPerGPUHour, want.BilledMillis, 3_600_000, false), sp0.Pools[PoolRewards])
			each := reward / RedundantQuorum
			for i := range want.Shares {
				want.Shares[i].Reward = each
			}
			want.Reward, want.Height = each*RedundantQuorum, j.Settlement.Height
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
				}
				if rec != was {
					t.Fatalf("node record %+v, want %+v", rec, was)
				}
			}
		}
	}
	if outcomes["settled"] == 0 || outcomes["inconclusive"] == 0 || outcomes["outvoted"] == 0 {
		t.Fatalf("random jobs did not reach every ending: %v", outcomes)
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
