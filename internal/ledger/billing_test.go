package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// TestSettlementBillsVerifiedWork pins billing by operation count: a freivalds job is
// billed the GPU time its node reported, but no more than the lower median of its passing
// attesters' operation counts takes at the node's registered rate, rounded up to a whole
// millisecond (10 TFLOPS is 10^10 operations a millisecond); then at least
// MinBilledMillis and at most the timeout, as before.
func TestSettlementBillsVerifiedWork(t *testing.T) {
	const tenTFLOPS = 10_000 // milli-TFLOPS
	passes := func(ops ...uint64) []Attestation {
		out := make([]Attestation, len(ops))
		for i, o := range ops {
			out[i] = Attestation{Pass: true, Ops: o, Transcript: aTranscript}
		}
		return out
	}
	minimum := Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: 999_444}
	for _, c := range []struct {
		name         string
		minBilled    uint64
		millis       uint64
		timeout      uint64
		rate         uint64
		attestations []Attestation
		want         Settlement
	}{
		{"2^62 ms reported for a 64×64×64 product at 10 TFLOPS: billed the 1 s minimum, not the 60 s timeout",
			1000, 1 << 62, 60, tenTFLOPS, passes(tensor.MatMulOps(64, 64, 64)), minimum},
		{"the same with no minimum: billed 1 ms exactly", 0, 1 << 62, 60, tenTFLOPS, passes(524_288),
			Settlement{BilledMillis: 1, Cost: 1, Burned: 1, Fee: 0, Paid: 0, Refunded: 999_999}},
		{"10^15 operations at 10 TFLOPS are 100 s: a report of 2^62 ms is billed 100 s", 1000, 1 << 62, 600, tenTFLOPS, passes(1e15),
			Settlement{BilledMillis: 100_000, Cost: 55_556, Burned: 1112, Fee: 2777, Paid: 51_667, Refunded: 944_444}},
		{"a report under the verified work is billed the report", 1000, 90_000, 600, tenTFLOPS, passes(1e15),
			Settlement{BilledMillis: 90_000, Cost: 50_000, Burned: 1000, Fee: 2500, Paid: 46_500, Refunded: 950_000}},
		{"one operation past 90 s rounds up to 90,001 ms", 1000, 1 << 62, 600, tenTFLOPS, passes(9e14 + 1),
			Settlement{BilledMillis: 90_001, Cost: 50_001, Burned: 1001, Fee: 2500, Paid: 46_500, Refunded: 949_999}},
		{"a validator overstating the count does not move the median", 1000, 1 << 62, 600, tenTFLOPS,
			append(passes(1<<62, 1e15), Attestation{Ops: 1 << 63}),
			Settlement{BilledMillis: 100_000, Cost: 55_556, Burned: 1112, Fee: 2777, Paid: 51_667, Refunded: 944_444}},
		{"verified work past the timeout is billed the timeout", 1000, 1 << 62, 60, tenTFLOPS, passes(1e15),
			Settlement{BilledMillis: 60_000, Cost: 33_334, Burned: 667, Fee: 1666, Paid: 31_001, Refunded: 966_666}},
		{"no rate recorded (placed before billing by work): the minimum", 1000, 1 << 62, 600, 0, passes(1e15), minimum},
		{"no passing attester stated a count: the minimum", 1000, 1 << 62, 600, tenTFLOPS, []Attestation{{Pass: true}, {Ops: 1e15}}, minimum},
		{"the largest count at the largest rate cannot overflow", 1000, 1 << 62, 600, ^uint64(0), passes(^uint64(0)), minimum},
		{"the largest count at 1 milli-TFLOPS is past any timeout", 1000, 1 << 62, 600, 1, passes(^uint64(0)),
			Settlement{BilledMillis: 600_000, Cost: 333_334, Burned: 6667, Fee: 16_666, Paid: 310_001, Refunded: 666_666}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultParams()
			p.MinBilledMillis = c.minBilled
			j := Job{PricePerHour: 2 * omni, GPUMillis: c.millis, Budget: omni, TimeoutSeconds: c.timeout, TFLOPSMilli: c.rate, Attestations: c.attestations}
			got, err := SettlementFor(p, j)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("settlement %+v (%v)\n            want %+v", got, err, c.want)
			}
		})
	}
}

// TestVerifiedOpsIsTheLowerMedian: only passing attestations count, and of their counts
// the lower median, so neither one high nor (with three or more) one low count moves it.
func TestVerifiedOpsIsTheLowerMedian(t *testing.T) {
	for _, c := range []struct {
		name string
		pass []uint64
		fail []uint64
		want uint64
	}{
		{"no attestation", nil, nil, 0},
		{"only failing ones", nil, []uint64{5}, 0},
		{"one", []uint64{7}, nil, 7},
		{"two: the lower", []uint64{9, 5}, nil, 5},
		{"three: the middle", []uint64{9, 1 << 62, 7}, []uint64{1 << 63}, 9},
		{"four: the lower middle", []uint64{1, 100, 3, 50}, nil, 3},
		{"eleven, more than a committee's worth on the stack", []uint64{11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, nil, 6},
	} {
		var j Job
		for i := range max(len(c.pass), len(c.fail)) {
			if i < len(c.fail) {
				j.Attestations = append(j.Attestations, Attestation{Ops: c.fail[i]})
			}
			if i < len(c.pass) {
				j.Attestations = append(j.Attestations, Attestation{Pass: true, Ops: c.pass[i], Transcript: aTranscript})
			}
		}
		before := slices.Clone(j.Attestations)
		if got := verifiedOps(j); got != c.want {
			t.Errorf("%s: verifiedOps = %d, want %d", c.name, got, c.want)
		}
		if !reflect.DeepEqual(before, j.Attestations) {
			t.Errorf("%s: verifiedOps reordered the attestations", c.name)
		}
	}
}

// randomAttestations are up to a dozen verdicts, passing or not, with counts of every
// magnitude, 0 (a record from before counts) included.
func randomAttestations(rng *rand.Rand) []Attestation {
	out := make([]Attestation, rng.IntN(13))
	for i := range out {
		out[i] = Attestation{Pass: rng.IntN(3) > 0, Ops: rng.Uint64N(1<<uint(rng.IntN(64))) << uint(rng.IntN(2))}
	}
	return out
}

// verifiedWorkOracle is the op-derived bound from the rule's words, in math/big: the lower
// median of the passing attesters' counts over TFLOPSMilli·10^6 operations a
// millisecond, rounded up; nothing without a rate or a passing attester.
func verifiedWorkOracle(j Job) uint64 {
	var counts []*big.Int
	for _, a := range j.Attestations {
		if a.Pass {
			counts = append(counts, new(big.Int).SetUint64(a.Ops))
		}
	}
	if len(counts) == 0 || j.TFLOPSMilli == 0 {
		return 0
	}
	slices.SortFunc(counts, func(a, b *big.Int) int { return a.Cmp(b) })
	perMilli := new(big.Int).Mul(new(big.Int).SetUint64(j.TFLOPSMilli), big.NewInt(1_000_000))
	n := new(big.Int).Add(counts[(len(counts)-1)/2], perMilli)
	n.Sub(n, big.NewInt(1))
	return n.Div(n, perMilli).Uint64()
}

// TestPassingAttestationMustStateOps: a passing attestation without an operation count is
// refused before it reaches state, so every settlement rests on counted work; a failing
// one needs none.
func TestPassingAttestationMustStateOps(t *testing.T) {
	if err := (Msg{Attest: &MsgAttest{JobID: "job-0000000000000000", ResultDigest: digestA, Pass: true}}).ValidateBasic(); !errors.Is(err, ErrInvalidMsg) {
		t.Fatalf("a pass without ops: %v, want ErrInvalidMsg", err)
	}
	if err := (Msg{Attest: &MsgAttest{JobID: "job-0000000000000000", ResultDigest: digestA, Reason: "row 3"}}).ValidateBasic(); err != nil {
		t.Fatalf("a fail without ops: %v", err)
	}
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	id := runJob(t, h, omni, 90_000)
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true}}, CodeInvalidMsg, "operation count")
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Reason: "row 3"}})
	if j := query[Job](h, "job/"+id); j.Status != JobFailed {
		t.Fatalf("job %s after a failing attestation", j.Status)
	}
}

// TestOverbillingNodeIsPaidForItsWork is the attack from issue 13: a node computes a real
// 64×64×64 int8 product with the project's kernel, commits the right result and reports
// 2^62 ms of GPU time on a job with a 60 s timeout. The validator checks the product with
// the project's checker and attests its operation count. The node, placed at its
// registered 82.6 TFLOPS, is billed 1 ms of work, so the 1 s minimum, where it used to be
// paid the whole 60 s timeout.
func TestOverbillingNodeIsPaidForItsWork(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg) // 2 OMNI/h, 82.6 TFLOPS
	a, _ := tensor.RandomInt8(64, 64, 1)
	b, _ := tensor.RandomInt8(64, 64, 2)
	ea, _ := a.MarshalBinary()
	eb, _ := b.MarshalBinary()
	inputs := [][]byte{ea, eb}
	out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(out)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	create := createMsg(omni)
	create.CreateJob.TimeoutSeconds = 60
	h.mustDo(consumerKey, create)
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key)}})
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digest, GPUMillis: 1 << 62}})

	j := query[Job](h, "job/"+id)
	var seed [32]byte
	if s, err := hex.DecodeString(j.Seed); err != nil || copy(seed[:], s) != 32 {
		t.Fatalf("seed %q: %v", j.Seed, err)
	}
	v, err := verify.CheckKernel(tensor.KernelMatMulInt8, inputs, out, seed, 2)
	if err != nil || !v.OK || v.Ops != 524_288 {
		t.Fatalf("verdict %+v (%v), want a pass counting 2·64³ operations", v, err)
	}
	consumer0, node0 := h.balance(consumerKey), h.balance(node1Key)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digest, Pass: true, Ops: v.Ops, Transcript: aTranscript}})

	j = query[Job](h, "job/"+id)
	// 1 s at 2 OMNI/h is 555.5 → 556 uomni (12 burned, 27 fee, 517 paid), and the emission
	// of 1 OMNI per verified GPU-hour adds 277; 60 s would have cost 33,334.
	want := Settlement{BilledMillis: 1000, Cost: 556, Burned: 12, Fee: 27, Paid: 517, Refunded: omni - 556, Reward: 277, Height: h.height}
	if j.Status != JobSettled || j.TFLOPSMilli != 82_600 || !reflect.DeepEqual(*j.Settlement, want) {
		t.Fatalf("job %s at %d milli-TFLOPS settled %+v, want %+v", j.Status, j.TFLOPSMilli, j.Settlement, want)
	}
	if got := h.balance(node1Key) - node0; got != 517+277 {
		t.Errorf("node received %d, want 517 + 277", got)
	}
	if got := h.balance(consumerKey) - consumer0; got != omni-556 {
		t.Errorf("consumer refunded %d, want %d", got, omni-556)
	}
	h.checkBooks()
}

// TestNodeRateIsFixedAtPlacement: a node that registers a lower rate after it is placed
// (which would stretch the time its work takes) is still billed at the rate it was
// placed with.
func TestNodeRateIsFixedAtPlacement(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg) // 82.6 TFLOPS
	id := runJob(t, h, omni, 1<<62)
	slow := *registerMsg.RegisterNode
	slow.Stake, slow.Hardware.TFLOPSMilli = 1, 1
	h.mustDo(node1Key, Msg{RegisterNode: &slow})
	// 8.26·10^15 operations are 100 s at 82.6 TFLOPS, and 8.26·10^6 s at 1 milli-TFLOPS.
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: 8_260_000_000_000_000, Transcript: aTranscript}})
	if j := query[Job](h, "job/"+id); j.Settlement == nil || j.Settlement.BilledMillis != 100_000 {
		t.Fatalf("settled %+v, want 100,000 ms billed", j.Settlement)
	}
}
