package ledger

import (
	"crypto/ed25519"
	"testing"
)

func capacityMsg(outcome string, ops, millis uint64) Msg {
	return Msg{CapacityReport: &MsgCapacityReport{Node: addr(node1Key), Ops: ops, Millis: millis, Outcome: outcome, Reason: "test"}}
}

// TestCapacityReportOutcomes pins the money rules of a capacity report on a node that
// declared 82.6 TFLOPS and staked 500 OMNI: proven records the declared rate and costs
// nothing; slow records the measured rate (2.5·10^9 ops in 1 s: 2 milli-TFLOPS) and a
// failure, and slashes nothing; wrong slashes FraudSlashBP (10%: 50 OMNI, all burned) and
// records a failure.
func TestCapacityReportOutcomes(t *testing.T) {
	for _, c := range []struct {
		outcome          string
		wantRate         uint64
		wantFailed       uint64
		wantStake        uint64
		wantBurned       uint64
		wantProvenHeight bool
	}{
		{CapacityProven, 82_600, 0, 500 * omni, 0, true},
		{CapacitySlow, 2, 1, 500 * omni, 0, true},
		{CapacityWrong, 0, 1, 450 * omni, 50 * omni, false},
	} {
		t.Run(c.outcome, func(t *testing.T) {
			h := newHarness(t, testGenesis())
			h.mustDo(node1Key, registerMsg)
			burned, val := h.supply().Burned, h.balance(validatorKey)
			h.mustDo(validatorKey, capacityMsg(c.outcome, 2_500_000_000, 1000))
			n := query[Node](h, "node/"+string(addr(node1Key)))
			if n.ProvenTFLOPSMilli != c.wantRate || (n.ProvenHeight == h.height) != c.wantProvenHeight {
				t.Fatalf("proven %d at %d (height %d), want %d", n.ProvenTFLOPSMilli, n.ProvenHeight, h.height, c.wantRate)
			}
			if n.JobsFailed != c.wantFailed || n.Stake != c.wantStake {
				t.Fatalf("failed %d, stake %d; want %d, %d", n.JobsFailed, n.Stake, c.wantFailed, c.wantStake)
			}
			if got := h.supply().Burned - burned; got != c.wantBurned {
				t.Fatalf("burned %d, want %d", got, c.wantBurned)
			}
			if h.balance(validatorKey) != val {
				t.Fatal("the reporting validator was paid")
			}
			h.checkBooks()
		})
	}
}

// TestCapacityReportRules: only an active validator reports, about a registered node, with
// a known outcome; a proven or slow report states its figures, a wrong one need not.
func TestCapacityReportRules(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	for _, c := range []struct {
		name   string
		signer ed25519.PrivateKey
		msg    Msg
		want   Code
	}{
		{"a node reports", node1Key, capacityMsg(CapacityWrong, 0, 0), CodeUnauthorized},
		{"about no node", validatorKey, Msg{CapacityReport: &MsgCapacityReport{Node: addr(strangerKey), Ops: 1, Millis: 1, Outcome: CapacitySlow}}, CodeNotFound},
		{"an unknown outcome", validatorKey, capacityMsg("lazy", 1, 1), CodeInvalidMsg},
		{"proven without ops", validatorKey, capacityMsg(CapacityProven, 0, 1), CodeInvalidMsg},
		{"slow without millis", validatorKey, capacityMsg(CapacitySlow, 1, 0), CodeInvalidMsg},
		{"wrong without figures", validatorKey, capacityMsg(CapacityWrong, 0, 0), CodeOK},
	} {
		if r := h.do(c.signer, c.msg); r.Code != c.want {
			t.Errorf("%s: code %d (%s), want %d", c.name, r.Code, r.Log, c.want)
		}
	}
}

// TestProvenRateBills: a job is billed at the lower of the node's declared and proven
// rates. 10^15 operations are 12.1 s at the declared 82.6 TFLOPS; after a slow report
// that measured 10 TFLOPS they are 100 s, and after a later proven report 12.1 s again.
// A node re-registering a higher rate is still billed at its proven one.
func TestProvenRateBills(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	billed := func() (uint64, uint64) {
		id := runJob(t, h, omni, 1<<62)
		h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: 1e15, Transcript: aTranscript}})
		j := query[Job](h, "job/"+id)
		return j.TFLOPSMilli, j.Settlement.BilledMillis
	}
	if rate, ms := billed(); rate != 82_600 || ms != 12_107 {
		t.Fatalf("unchecked node: rate %d, billed %d ms", rate, ms)
	}
	h.mustDo(validatorKey, capacityMsg(CapacitySlow, 10_000_000_000_000, 1000)) // 10 TFLOPS
	if rate, ms := billed(); rate != 10_000 || ms != 100_000 {
		t.Fatalf("after a slow report: rate %d, billed %d ms", rate, ms)
	}
	faster := *registerMsg.RegisterNode
	faster.Stake, faster.Hardware.TFLOPSMilli = 1, 989_000
	h.mustDo(node1Key, Msg{RegisterNode: &faster})
	if rate, _ := billed(); rate != 10_000 {
		t.Fatalf("re-registered at 989 TFLOPS: billed at %d", rate)
	}
	h.mustDo(node1Key, registerMsg) // back to 82.6
	h.mustDo(validatorKey, capacityMsg(CapacityProven, 10_000_000_000_000, 1000))
	if rate, ms := billed(); rate != 82_600 || ms != 12_107 {
		t.Fatalf("after a proven report: rate %d, billed %d ms", rate, ms)
	}
}

// committeeGenesis is testGenesis with three active validators of equal stake.
func committeeGenesis() Genesis {
	g := testGenesis()
	for _, k := range []ed25519.PrivateKey{validator2Key, vesterKey} {
		g.Validators = append(g.Validators, Validator{Address: addr(k), PubKey: pub(key(byte(40 + k.Seed()[0]))), Stake: 10_000 * omni})
	}
	return withSupply(g)
}

// An attacker test: the evidence behind a capacity report stays off chain, so one
// validator of three cannot harm a node alone. Its wrong report is held, the node keeps its
// stake and record; a second validator's agreeing report (two of three, more than a third)
// slashes it. Two slow reports decide at the lower median of their rates; a report older
// than the window no longer counts; one validator reporting twice counts once.
func TestCapacityReportsNeedMoreThanAThird(t *testing.T) {
	h := newHarness(t, committeeGenesis())
	h.mustDo(node1Key, registerMsg)
	node := func() Node { return query[Node](h, "node/"+string(addr(node1Key))) }
	h.mustDo(validatorKey, capacityMsg(CapacityWrong, 0, 0))
	h.mustDo(validatorKey, capacityMsg(CapacityWrong, 0, 0))
	if n := node(); n.Stake != 500*omni || n.JobsFailed != 0 || n.ProvenHeight != 0 {
		t.Fatalf("one validator's wrong report (sent twice) acted alone: %+v", n)
	}
	h.mustDo(validator2Key, capacityMsg(CapacityWrong, 0, 0))
	if n := node(); n.Stake != 450*omni || n.JobsFailed != 1 {
		t.Fatalf("two of three said wrong: %+v, want slashed 10%%", n)
	}

	// Slow: 5 and 9 milli-TFLOPS measured, decided at the lower median, 5.
	h.mustDo(validatorKey, capacityMsg(CapacitySlow, 5_000_000_000, 1000))
	if n := node(); n.ProvenHeight != 0 {
		t.Fatalf("one slow report acted alone: %+v", n)
	}
	h.mustDo(vesterKey, capacityMsg(CapacitySlow, 9_000_000_000, 1000))
	if n := node(); n.ProvenTFLOPSMilli != 5 || n.JobsFailed != 2 || n.Stake != 450*omni {
		t.Fatalf("two slow reports: %+v, want proven at 5, a failure more, no slash", n)
	}

	// A report waits at most the window for another.
	h.mustDo(validatorKey, capacityMsg(CapacityWrong, 0, 0))
	for range CapacityReportWindow {
		h.block()
	}
	h.mustDo(validator2Key, capacityMsg(CapacityWrong, 0, 0))
	if n := node(); n.Stake != 450*omni {
		t.Fatalf("a report older than the window counted: %+v", n)
	}
	h.checkBooks()
}
