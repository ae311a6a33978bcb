package ledger

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestPassingAttestationStatesItsTranscript: a pass of a job whose committee runs
// Freivalds' check must carry a transcript, and the ledger keeps it; a fail needs none and
// may not carry one. Where no Freivalds check runs (an unaudited challenge job's rows, a
// zk proof, an audited container's re-run) no transcript is asked for.
func TestPassingAttestationStatesItsTranscript(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	id := runJob(t, h, omni, 1000)
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps}}, CodeInvalidMsg, "transcript")
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: "sha256:xyz"}}, CodeInvalidMsg, "transcript")
	refused(t, h, validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Reason: "row 3", Transcript: aTranscript}}, CodeInvalidMsg, "only a passing attestation")
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestB}})
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || j.Attestations[0].Transcript != digestB {
		t.Fatalf("job %s, attestations %+v: want settled with the transcript kept", j.Status, j.Attestations)
	}
	failed := runJob(t, h, omni, 1000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: failed, ResultDigest: digestA, Reason: "row 3"}})

	// An audited container's re-run states millis and has no transcript.
	a := newHarness(t, levelGenesis(BasisPoints))
	audit := levelJob(a, VerifyAudit, "", 3_000)
	a.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: audit, ResultDigest: digestA, Pass: true, Millis: 3_000}})

	for _, c := range []struct {
		level   string
		audited bool
		m       MsgAttest
		want    bool
	}{
		{VerifyFreivalds, false, MsgAttest{Pass: true, Ops: 1}, true},
		{VerifyFreivalds, false, MsgAttest{Ops: 1}, false},
		{VerifyZK, false, MsgAttest{Pass: true, Ops: 1}, false},
		{VerifyChallenge, false, MsgAttest{Pass: true, Ops: 1}, false},
		{VerifyChallenge, true, MsgAttest{Pass: true, Ops: 1}, true},
		{VerifyAudit, true, MsgAttest{Pass: true, Ops: 1}, true},
		{VerifyAudit, true, MsgAttest{Pass: true, Millis: 1}, false},
	} {
		if got := transcriptRequired(Job{Verification: c.level, Audited: c.audited}, &c.m); got != c.want {
			t.Errorf("%s (audited %v), %+v: transcript required %v, want %v", c.level, c.audited, c.m, got, c.want)
		}
	}
}

// auditHarness has four validators with 40,000, 30,000, 10,000 and 20,000 OMNI (100,000 in
// all), every one on every committee, every settled job's attestations audited, and node1
// registered.
func auditHarness(t *testing.T) *harness {
	t.Helper()
	g := testGenesis()
	g.Params.ValidatorAuditBP = BasisPoints
	g.Validators = []Validator{
		{Address: addr(validatorKey), PubKey: pub(validatorKey), Stake: 40_000 * omni},
		{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 30_000 * omni},
		{Address: addr(vesterKey), PubKey: pub(consVestKey), Stake: 10_000 * omni},
		{Address: addr(strangerKey), PubKey: pub(key(19)), Stake: 20_000 * omni},
	}
	h := newHarness(t, withSupply(g))
	h.mustDo(node1Key, registerMsg)
	return h
}

// settledAudited runs a job that validator, validator2 and the vester pass, with
// transcripts, which settles it (three of four), and returns its id.
func settledAudited(t *testing.T, h *harness) string {
	t.Helper()
	id := runJob(t, h, omni, 1000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestA}})
	h.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestB}})
	h.mustDo(vesterKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestC}})
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || !j.AttestationsAudited {
		t.Fatalf("job %s, attestations audited %v: want settled and drawn", j.Status, j.AttestationsAudited)
	}
	return id
}

func report(id string, v ed25519.PrivateKey) Msg {
	return Msg{ReportAttestation: &MsgReportAttestation{JobID: id, Validator: addr(v), Reason: "transcript differs"}}
}

// TestAttestationReportsNeedMoreThanAThirdOfTheStake: validator2's pass (30% of the
// stake) is reported by the vester and the stranger, two of four validators but 30% of
// the stake, which decides nothing; validator's report brings the reporters to 70%, and
// validator2 is slashed false_attest_slash_bp (5%: 1,500 OMNI), all of it burned, once.
func TestAttestationReportsNeedMoreThanAThirdOfTheStake(t *testing.T) {
	h := auditHarness(t)
	id := settledAudited(t, h)
	if audits := query[[]AttestationAudit](h, "attestation_audits"); len(audits) != 1 || audits[0].JobID != id || audits[0].Until != query[Job](h, "job/"+id).Settlement.Height+AttestationReportWindow {
		t.Fatalf("open audits %+v", audits)
	}
	stake0, burned0 := query[Validator](h, "validator/"+string(addr(validator2Key))).Stake, h.supply().Burned
	h.mustDo(vesterKey, report(id, validator2Key))
	refused(t, h, vesterKey, report(id, validator2Key), CodeDuplicate, "already reported")
	h.mustDo(strangerKey, report(id, validator2Key))
	if v := query[Validator](h, "validator/"+string(addr(validator2Key))); v.Stake != stake0 {
		t.Fatalf("reports from 30%% of the stake slashed validator2 to %d", v.Stake)
	}
	r := h.do(validatorKey, report(id, validator2Key))
	if r.Code != CodeOK {
		t.Fatalf("report: %d %s", r.Code, r.Log)
	}
	v := query[Validator](h, "validator/"+string(addr(validator2Key)))
	if v.Stake != stake0-1_500*omni || h.supply().Burned != burned0+1_500*omni {
		t.Fatalf("validator2 holds %d, burned %d more: want 1,500 OMNI slashed and burned", v.Stake, h.supply().Burned-burned0)
	}
	if v.Power() == 0 || !v.Eligible(h.params()) {
		t.Errorf("validator2 after the slash: %+v", v)
	}
	var slashed bool
	for _, e := range r.Events {
		slashed = slashed || e.Type == "slashed" && attr(e, "account") == string(addr(validator2Key)) && attr(e, "amount") == u(1_500*omni)
	}
	if !slashed {
		t.Errorf("no slashed event: %+v", r.Events)
	}
	j := query[Job](h, "job/"+id)
	if !j.Attestations[1].AuditSlashed || j.Attestations[0].AuditSlashed || j.Status != JobSettled {
		t.Errorf("job %s, attestations %+v: want validator2's marked, the settlement standing", j.Status, j.Attestations)
	}
	refused(t, h, validatorKey, report(id, validator2Key), CodeDuplicate, "already found false")
	// A lone report against an honest pass, by a reporter with 20% of the stake, is held
	// and slashes nobody.
	h.mustDo(strangerKey, report(id, validatorKey))
	if v := query[Validator](h, "validator/"+string(addr(validatorKey))); v.Stake != 40_000*omni {
		t.Errorf("a 20%% report slashed validator to %d", v.Stake)
	}
	h.checkBooks()
}

// TestAttestationReportRefusals: the attacker's attempts, each refused and changing
// nothing: a non-validator reports, a validator reports itself, a report about a job not
// drawn, about a validator with no audited pass, about an unknown job, malformed, and
// after the window; the window's end drops the reports still held, against the
// attestation and toward the result being wrong.
func TestAttestationReportRefusals(t *testing.T) {
	h := auditHarness(t)
	id := settledAudited(t, h)
	refused(t, h, consumerKey, report(id, validator2Key), CodeUnauthorized, "not an active validator")
	refused(t, h, validator2Key, report(id, validator2Key), CodeUnauthorized, "its own attestation")
	refused(t, h, validatorKey, report(id, strangerKey), CodeNotFound, "no audited pass")
	refused(t, h, validatorKey, report("job-00000000000000ff", validator2Key), CodeNotFound, "job")
	for _, m := range []*MsgReportAttestation{
		{JobID: "nope", Validator: addr(validator2Key)},
		{JobID: id, Validator: "x"},
		{JobID: id, Validator: addr(validator2Key), Reason: strings.Repeat("r", 257)},
	} {
		refused(t, h, validatorKey, Msg{ReportAttestation: m}, CodeInvalidMsg, "")
	}
	failed := runJob(t, h, omni, 1000)
	for _, k := range []ed25519.PrivateKey{validatorKey, validator2Key} {
		h.mustDo(k, Msg{Attest: &MsgAttest{JobID: failed, ResultDigest: digestA, Reason: "row 3"}})
	}
	refused(t, h, validatorKey, report(failed, validator2Key), CodeBadState, "not drawn")

	// Not drawn: the same job at a rate of 0.
	g := testGenesis()
	g.Params.ValidatorAuditBP = 0
	g.Validators = append(g.Validators, Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 10_000 * omni})
	z := newHarness(t, withSupply(g))
	z.mustDo(node1Key, registerMsg)
	undrawn := runJob(t, z, omni, 1000)
	z.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: undrawn, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestA}})
	z.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: undrawn, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestB}})
	if j := query[Job](z, "job/"+undrawn); j.Status != JobSettled || j.AttestationsAudited {
		t.Fatalf("at rate 0: job %s drawn %v", j.Status, j.AttestationsAudited)
	}
	refused(t, z, validatorKey, report(undrawn, validator2Key), CodeBadState, "not drawn")

	// A held report, that the result is wrong too, then the window closes: both counts
	// are dropped and the audit is gone.
	h.mustDo(strangerKey, reportWrong(id, validator2Key))
	settledAt := query[Job](h, "job/"+id).Settlement.Height
	for h.height < settledAt+AttestationReportWindow {
		h.finalize(h.next(time.Second))
	}
	if audits := query[[]AttestationAudit](h, "attestation_audits"); len(audits) != 0 {
		t.Fatalf("open audits after the window: %+v", audits)
	}
	view, _ := h.store.Committed()
	for _, prefix := range [][]byte{prefixAttReport, prefixResultWrong} {
		if err := view.Iterate(prefix, func(k, _ []byte) bool { t.Errorf("held report %q outlived its window", k); return true }); err != nil {
			t.Fatal(err)
		}
	}
	refused(t, h, validatorKey, report(id, validator2Key), CodeBadState, "closed")
	h.checkBooks()
}

// TestValidatorBelowTheMinimumChecksNothing: validator2, staking exactly the minimum,
// passes a wrong result and is slashed below it. It keeps its consensus power but leaves
// the committees, and may not attest, report a node's capacity or report an attestation;
// and its stake no longer counts toward the reports' threshold: validator's report
// against the vester (10,000 of 25,000 eligible OMNI) decides, as it would not with
// validator2's 9,500 counted (10,000 of 34,500). Staking back up restores it.
func TestValidatorBelowTheMinimumChecksNothing(t *testing.T) {
	g := testGenesis()
	g.Params.ValidatorAuditBP = BasisPoints
	g.Validators = append(g.Validators,
		Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 10_000 * omni},
		Validator{Address: addr(vesterKey), PubKey: pub(consVestKey), Stake: 15_000 * omni})
	g.Accounts = append(g.Accounts, GenesisAccount{Address: addr(validator2Key), Balance: 1_000 * omni})
	h := newHarness(t, withSupply(g))
	h.mustDo(node1Key, registerMsg)
	wrong := runJob(t, h, omni, 1000)
	h.mustDo(validator2Key, Msg{Attest: &MsgAttest{JobID: wrong, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestB}})
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: wrong, ResultDigest: digestA, Reason: "row 3"}})
	h.mustDo(vesterKey, Msg{Attest: &MsgAttest{JobID: wrong, ResultDigest: digestA, Reason: "row 3"}})
	v2 := query[Validator](h, "validator/"+string(addr(validator2Key)))
	if v2.Stake != 9_500*omni || v2.Power() != 9_500 || v2.Eligible(h.params()) {
		t.Fatalf("validator2 after its false pass: %+v, power %d", v2, v2.Power())
	}
	h.mustDo(node1Key, registerMsg) // slashed below its own minimum, it stakes back up
	id := runJob(t, h, omni, 1000)
	if j := query[Job](h, "job/"+id); len(j.Committee) != 2 || contains(j.Committee, addr(validator2Key)) {
		t.Fatalf("committee %v: want validator and the vester", j.Committee)
	}
	refused(t, h, validator2Key, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestB}}, CodeStakeTooLow, "below the 10000 OMNI minimum")
	refused(t, h, validator2Key, Msg{AttestJobs: &MsgAttestJobs{Attestations: []MsgAttest{{JobID: id, ResultDigest: digestA, Reason: "row 1"}}}}, CodeStakeTooLow, "minimum")
	refused(t, h, validator2Key, Msg{CapacityReport: &MsgCapacityReport{Node: addr(node1Key), Outcome: CapacityWrong}}, CodeStakeTooLow, "minimum")
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestA}})
	h.mustDo(vesterKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: digestC}})
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || !j.AttestationsAudited {
		t.Fatalf("job %s drawn %v", j.Status, j.AttestationsAudited)
	}
	refused(t, h, validator2Key, report(id, validatorKey), CodeStakeTooLow, "minimum")
	h.mustDo(validatorKey, report(id, vesterKey))
	if v := query[Validator](h, "validator/"+string(addr(vesterKey))); v.Stake != 14_250*omni {
		t.Fatalf("the vester holds %s OMNI: want 5%% of 15,000 slashed on validator's report alone", FormatOMNI(v.Stake))
	}

	h.mustDo(validator2Key, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: 500 * omni}})
	if j := query[Job](h, "job/"+runJob(t, h, omni, 1000)); len(j.Committee) != 3 {
		t.Fatalf("committee %v after validator2 staked back to the minimum: want all three", j.Committee)
	}
	h.checkBooks()
}

// The two validators that pass the job the wrong-result tests find wrong, beside the
// vester and the stranger.
var (
	lazy1Key = key(60)
	lazy2Key = key(61)
)

// wrongHarness has six validators, every one on every committee and every settled job's
// attestations audited, holding stakes (OMNI) in the order validator, validator2, vester,
// stranger, lazy1, lazy2; node1 registers with reg (registerMsg when nil), and genesis
// changes what g says. It returns the harness and a job node1 ran that the vester, the
// stranger and the two lazy validators pass (four of six), which settles it, while
// validator and validator2 do not attest: the job the tests find wrong.
func wrongHarness(t *testing.T, stakes [6]uint64, g func(*Genesis), reg *MsgRegisterNode, gpuMillis uint64) (*harness, string) {
	t.Helper()
	gen := testGenesis()
	gen.Params.ValidatorAuditBP = BasisPoints
	gen.Validators = nil
	for i, k := range []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey, strangerKey, lazy1Key, lazy2Key} {
		gen.Validators = append(gen.Validators, Validator{Address: addr(k), PubKey: pub(key(byte(70 + i))), Stake: stakes[i] * omni})
	}
	if g != nil {
		g(&gen)
	}
	h := newHarness(t, withSupply(gen))
	if reg == nil {
		reg = registerMsg.RegisterNode
	}
	h.mustDo(node1Key, Msg{RegisterNode: reg})
	id := runJob(t, h, omni, gpuMillis)
	for i, k := range []ed25519.PrivateKey{vesterKey, strangerKey, lazy1Key, lazy2Key} {
		h.mustDo(k, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: fmt.Sprintf("sha256:%064x", i+1)}})
	}
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || !j.AttestationsAudited {
		t.Fatalf("job %s, attestations audited %v: want settled and drawn", j.Status, j.AttestationsAudited)
	}
	return h, id
}

func reportWrong(id string, v ed25519.PrivateKey) Msg {
	return Msg{ReportAttestation: &MsgReportAttestation{JobID: id, Validator: addr(v), Reason: "row 3 differs", ResultWrong: true}}
}

// foundWrong runs reports, the last of which must find the job's result wrong, and
// returns that tx's result_found_wrong event's attributes.
func foundWrong(t *testing.T, h *harness, id string, reports ...func() TxResult) map[string]string {
	t.Helper()
	var r TxResult
	for _, do := range reports {
		if r = do(); r.Code != CodeOK {
			t.Fatalf("report: %d %s", r.Code, r.Log)
		}
	}
	for _, e := range r.Events {
		if e.Type == "result_found_wrong" {
			out := map[string]string{}
			for _, a := range e.Attrs {
				out[a.Key] = a.Value
			}
			return out
		}
	}
	t.Fatalf("the last report found nothing: %+v", r.Events)
	return nil
}

// TestAuditThatFindsTheResultWrongSlashesTheNode: validator and validator2, each 20% of
// the stake, did not pass the job four others settled. validator's report that the
// result is wrong is held; a passer may not say so; validator2's brings the reporters to
// 40%, more than a third, and the audit finds it a fraud: node1 is slashed
// fraud_slash_bp (10% of 500 OMNI: 50 OMNI) and falls inactive below the 500 OMNI
// minimum, the job counts as failed, not verified, the consumer gets back the 556 uomni
// it paid (2 OMNI/h for the minimum billed second, rounded up) and the rest of the slash
// burns; the lazy pass both reported is slashed too, the one reported by validator alone
// is not yet. Once found, it is never found again: validator2's report against the
// other pass only slashes that pass.
func TestAuditThatFindsTheResultWrongSlashesTheNode(t *testing.T) {
	h, id := wrongHarness(t, [6]uint64{20_000, 20_000, 10_000, 10_000, 20_000, 20_000}, nil, nil, 1000)
	cost := query[Job](h, "job/"+id).Settlement.Cost
	if cost != 556 {
		t.Fatalf("the job cost %d uomni, want 556", cost)
	}
	consumer0, burned0 := h.balance(consumerKey), h.supply().Burned
	h.mustDo(validatorKey, reportWrong(id, lazy1Key))
	if n := query[Node](h, "node/"+string(addr(node1Key))); n.Stake != 500*omni || query[Job](h, "job/"+id).FoundWrong != nil {
		t.Fatalf("a report from 20%% of the stake slashed node1 to %s OMNI", FormatOMNI(n.Stake))
	}
	refused(t, h, strangerKey, reportWrong(id, lazy1Key), CodeUnauthorized, "its own attestation says the result is right")
	h.mustDo(validatorKey, reportWrong(id, lazy2Key)) // counts against lazy2's pass only
	got := foundWrong(t, h, id, func() TxResult { return h.do(validator2Key, reportWrong(id, lazy1Key)) })
	slashed, compensated := 50*omni, cost
	if got["slashed"] != u(slashed) || got["compensated"] != u(compensated) || got["burned"] != u(slashed-compensated) || got["node"] != string(addr(node1Key)) {
		t.Fatalf("result_found_wrong %v: want 50 OMNI slashed, %d uomni back to the consumer, the rest burned", got, compensated)
	}
	n := query[Node](h, "node/"+string(addr(node1Key)))
	if n.Stake != 450*omni || n.Status != NodeInactive || n.JobsVerified != 0 || n.JobsFailed != 1 {
		t.Fatalf("node1 after the finding: %+v", n)
	}
	lazySlash := 1_000 * omni // 5% of lazy1's 20,000 OMNI
	if h.balance(consumerKey) != consumer0+compensated || h.supply().Burned != burned0+slashed-compensated+lazySlash {
		t.Fatalf("consumer got %d back, %d more burned", h.balance(consumerKey)-consumer0, h.supply().Burned-burned0)
	}
	j := query[Job](h, "job/"+id)
	if j.FoundWrong == nil || *j.FoundWrong != (FoundWrong{Height: h.height, Slashed: slashed, Compensated: compensated}) || j.Status != JobSettled {
		t.Fatalf("job %s found wrong %+v", j.Status, j.FoundWrong)
	}
	if !j.Attestations[2].AuditSlashed || j.Attestations[3].AuditSlashed {
		t.Fatalf("attestations %+v: want lazy1's found false, lazy2's not yet", j.Attestations)
	}
	h.mustDo(validator2Key, reportWrong(id, lazy2Key))
	if n := query[Node](h, "node/"+string(addr(node1Key))); n.Stake != 450*omni || n.JobsFailed != 1 || h.balance(consumerKey) != consumer0+compensated {
		t.Fatalf("a second crossing of the threshold moved node1 to %+v, the consumer to %d", n, h.balance(consumerKey))
	}
	if j := query[Job](h, "job/"+id); !j.Attestations[3].AuditSlashed || *j.FoundWrong != (FoundWrong{Height: h.height - 1, Slashed: slashed, Compensated: compensated}) {
		t.Fatalf("after validator2's report against lazy2: %+v, %+v", j.Attestations, j.FoundWrong)
	}
	refused(t, h, validator2Key, reportWrong(id, lazy2Key), CodeDuplicate, "already found false")
	refused(t, h, validatorKey, reportWrong(id, lazy1Key), CodeDuplicate, "already found false")
	for _, c := range []struct {
		k    ed25519.PrivateKey
		omni uint64
	}{{validatorKey, 20_000}, {validator2Key, 20_000}, {vesterKey, 10_000}, {strangerKey, 10_000}} {
		if v := query[Validator](h, "validator/"+string(addr(c.k))); v.Stake != c.omni*omni {
			t.Errorf("validator %s, who passed nothing false, holds %s OMNI", addr(c.k).Short(), FormatOMNI(v.Stake))
		}
	}
	h.checkBooks()
}

// TestResultFoundWrongAmounts pins what a finding takes and gives back when validator, 40%
// of the stake, says alone that node1's result is wrong: fraud_slash_bp (10%) of node1's
// stake and of its unbonding stake, as every slash takes it (rounded down), of which the
// consumer gets back at most what it paid and the rest burns. Stake that finished
// unbonding is out of reach, and then the consumer gets nothing back.
func TestResultFoundWrongAmounts(t *testing.T) {
	stakes := [6]uint64{40_000, 10_000, 10_000, 10_000, 15_000, 15_000}
	reg := func(stake uint64) *MsgRegisterNode {
		m := *registerMsg.RegisterNode
		m.Stake = stake
		return &m
	}
	lowMinimum := func(g *Genesis) { g.Params.MinNodeStake = 1 }
	for _, c := range []struct {
		name      string
		g         func(*Genesis)
		reg       *MsgRegisterNode
		gpuMillis uint64
		before    func(h *harness) // after the settlement, before the report
		// want: the slash, what the consumer gets back, and node1's stake and unbonding after
		slashed, back, stake, unbonding uint64
	}{
		{name: "a slash of 500 OMNI and 9 uomni rounds down", reg: reg(500*omni + 9), gpuMillis: 1000,
			slashed: 50 * omni, back: 556, stake: 450*omni + 9},
		{name: "a stake smaller than the compensation: all of the slash goes back", g: lowMinimum, reg: reg(omni), gpuMillis: 600_000,
			slashed: omni / 10, back: omni / 10, stake: omni * 9 / 10},
		{name: "a stake whose slash rounds to nothing", g: lowMinimum, reg: reg(9), gpuMillis: 1000,
			slashed: 0, back: 0, stake: 9},
		{name: "stake unbonding is slashed as stake is", reg: reg(800 * omni), gpuMillis: 1000,
			before: func(h *harness) {
				h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 300 * omni}})
			},
			slashed: 80 * omni, back: 556, stake: 450 * omni, unbonding: 270 * omni},
		{name: "a node that left: its unbonding stake is slashed", reg: reg(500 * omni), gpuMillis: 1000,
			before: func(h *harness) {
				h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 500 * omni}})
			},
			slashed: 50 * omni, back: 556, stake: 0, unbonding: 450 * omni},
		{name: "a node whose stake finished unbonding: nothing to slash", reg: reg(500 * omni), gpuMillis: 1000,
			g: func(g *Genesis) { g.Params.UnbondingSeconds = 10 },
			before: func(h *harness) {
				h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: 500 * omni}})
				h.finalize(h.next(time.Minute))
				if len(query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))) != 0 {
					t.Fatal("node1's stake did not finish unbonding")
				}
			},
			slashed: 0, back: 0, stake: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, id := wrongHarness(t, stakes, c.g, c.reg, c.gpuMillis)
			if c.before != nil {
				c.before(h)
			}
			cost := query[Job](h, "job/"+id).Settlement.Cost
			consumer0, burned0 := h.balance(consumerKey), h.supply().Burned
			got := foundWrong(t, h, id, func() TxResult { return h.do(validatorKey, reportWrong(id, lazy1Key)) })
			if got["slashed"] != u(c.slashed) || got["compensated"] != u(c.back) || got["burned"] != u(c.slashed-c.back) {
				t.Fatalf("result_found_wrong %v (the job cost %d): want %d slashed, %d back", got, cost, c.slashed, c.back)
			}
			if c.back > cost || c.back > c.slashed {
				t.Fatalf("the case gives back %d of a %d slash for a job that cost %d", c.back, c.slashed, cost)
			}
			lazySlash := 750 * omni // 5% of lazy1's 15,000 OMNI
			if h.balance(consumerKey) != consumer0+c.back || h.supply().Burned != burned0+c.slashed-c.back+lazySlash {
				t.Fatalf("consumer got %d back, %d more burned", h.balance(consumerKey)-consumer0, h.supply().Burned-burned0)
			}
			var unbonding uint64
			for _, ub := range query[[]Unbonding](h, "unbonding/"+string(addr(node1Key))) {
				unbonding += ub.Amount
			}
			n := query[Node](h, "node/"+string(addr(node1Key)))
			if n.Stake != c.stake || unbonding != c.unbonding || n.JobsFailed != 1 || n.JobsVerified != 0 {
				t.Fatalf("node1 %+v, %d unbonding: want stake %d, %d unbonding, the job failed", n, unbonding, c.stake, c.unbonding)
			}
			if j := query[Job](h, "job/"+id); j.FoundWrong == nil || j.FoundWrong.Slashed != c.slashed || j.FoundWrong.Compensated != c.back {
				t.Fatalf("found wrong %+v", j.FoundWrong)
			}
			h.checkBooks()
		})
	}
}
