package ledger

import (
	"crypto/ed25519"
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
// after the window; the window's end drops the reports still held.
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

	// A held report, then the window closes: it is dropped and the audit is gone.
	h.mustDo(strangerKey, report(id, validator2Key))
	settledAt := query[Job](h, "job/"+id).Settlement.Height
	for h.height < settledAt+AttestationReportWindow {
		h.finalize(h.next(time.Second))
	}
	if audits := query[[]AttestationAudit](h, "attestation_audits"); len(audits) != 0 {
		t.Fatalf("open audits after the window: %+v", audits)
	}
	view, _ := h.store.Committed()
	if err := view.Iterate(prefixAttReport, func(k, _ []byte) bool { t.Errorf("held report %q outlived its window", k); return true }); err != nil {
		t.Fatal(err)
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
