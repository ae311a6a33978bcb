package ledger

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
)

// levelGenesis is testGenesis with the audit rate set.
func levelGenesis(auditRateBP uint64) Genesis {
	g := testGenesis()
	g.Params.AuditRateBP = auditRateBP
	return g
}

// levelJob creates a job of the level, assigns it to node1 (registered first) with
// challenge, for a challenge job, and has node1 commit digestA, reporting millis of GPU time.
func levelJob(h *harness, level, challenge string, millis uint64) string {
	h.t.Helper()
	if _, ok, _ := (state{kv: h.app.store}).node(addr(node1Key)); !ok {
		h.mustDo(node1Key, registerMsg)
	}
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	create := createMsg(omni)
	create.CreateJob.Verification = level
	h.mustDo(consumerKey, create)
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key), Challenge: challenge}})
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: millis}})
	return id
}

func TestAuditDrawFollowsTheRate(t *testing.T) {
	for _, rate := range []uint64{0, 100, 2500, 10_000} {
		p := DefaultParams()
		p.AuditRateBP = rate
		drawn := 0
		const n = 20_000
		for i := range n {
			if auditDrawn(p, jobSeed([]byte(fmt.Sprint(i)), "job")) {
				drawn++
			}
		}
		// Binomial(20,000, rate): 5 standard deviations either side, at most 354 jobs.
		want := n * int(rate) / int(BasisPoints)
		if d := drawn - want; d < -354 || d > 354 || (rate == 0) != (drawn == 0) || (rate == BasisPoints) != (drawn == n) {
			t.Errorf("rate %d bp audited %d of %d, want about %d", rate, drawn, n, want)
		}
	}
}

// TestUnauditedAuditJobSettlesAtCommit: an audit job the draw passes over settles in the
// block that records its result, billed the GPU time its node reported (bounded by the
// timeout): nobody checked it.
func TestUnauditedAuditJobSettlesAtCommit(t *testing.T) {
	h := newHarness(t, levelGenesis(0))
	node0 := h.balance(node1Key)
	id := levelJob(h, VerifyAudit, "", 90_000)
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || j.Audited || len(j.Committee) != 0 || j.Settlement.BilledMillis != 90_000 {
		t.Fatalf("job %s audited=%v committee %v settlement %+v, want settled unaudited at the 90 s reported", j.Status, j.Audited, j.Committee, j.Settlement)
	}
	if h.balance(node1Key) <= node0-500*omni {
		t.Error("node not paid")
	}
	// Nothing is left to attest.
	if r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}); r.Code == CodeOK {
		t.Error("an attestation on a settled audit job was accepted")
	}
	h.checkBooks()
}

// TestAuditedTensorJobWrongIsSlashed: at a 100% audit rate every job gets a committee; a
// failing exact check (it states the operation count) refunds the consumer and slashes
// the node, as at the freivalds level.
func TestAuditedTensorJobWrongIsSlashed(t *testing.T) {
	h := newHarness(t, levelGenesis(BasisPoints))
	consumer0 := h.balance(consumerKey)
	id := levelJob(h, VerifyAudit, "", 1000)
	if j := query[Job](h, "job/"+id); j.Status != JobComputed || !j.Audited || len(j.Committee) != 1 {
		t.Fatalf("job %s audited=%v committee %v, want computed, audited, a committee", j.Status, j.Audited, j.Committee)
	}
	r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Reason: "row 3", Ops: 524_288}})
	if !hasEvent(r, "slashed") {
		t.Fatalf("no slash: %+v", r)
	}
	if j := query[Job](h, "job/"+id); j.Status != JobFailed || h.balance(consumerKey) != consumer0 {
		t.Fatalf("job %s, consumer lost %d", j.Status, consumer0-h.balance(consumerKey))
	}
	h.checkBooks()
}

// TestAuditedContainerJob: an auditor's re-run of a container states its run time, not an
// operation count. A pass bills no more than the auditors' run; a different output fails
// the job (refund, reliability) but slashes nobody: a container may differ run to run.
func TestAuditedContainerJob(t *testing.T) {
	h := newHarness(t, levelGenesis(BasisPoints))
	id := levelJob(h, VerifyAudit, "", 9_000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Millis: 3_000}})
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || j.Settlement.BilledMillis != 3_000 {
		t.Fatalf("job %s billed %+v, want settled for the auditor's 3 s, not the reported 9 s", j.Status, j.Settlement)
	}

	stake0 := query[Node](h, "node/"+string(addr(node1Key))).Stake
	id = levelJob(h, VerifyAudit, "", 9_000)
	r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Reason: "re-run's output differs", Millis: 3_000}})
	if r.Code != CodeOK || hasEvent(r, "slashed") {
		t.Fatalf("a container's differing re-run: %+v, want failed without a slash", r)
	}
	n := query[Node](h, "node/"+string(addr(node1Key)))
	if j := query[Job](h, "job/"+id); j.Status != JobFailed || n.Stake != stake0 || n.JobsFailed != 1 {
		t.Fatalf("job %s, stake %d → %d, failed %d", j.Status, stake0, n.Stake, n.JobsFailed)
	}
	h.checkBooks()
}

// TestMillisIsForAudits: only an audit's attestation may bill by run time.
func TestMillisIsForAudits(t *testing.T) {
	h := newHarness(t, testGenesis())
	id := levelJob(h, VerifyFreivalds, "", 9_000)
	r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Millis: 9_000}})
	if r.Code == CodeOK || !strings.Contains(r.Log, "millis") {
		t.Fatalf("a freivalds pass stating millis: %+v, want refused", r)
	}
}

// TestChallengeLifecycle walks a challenge job: its assignment must commit to the rows, and
// only a challenge job's may; attestations wait for the reveal; only a router reveals,
// only after the result, only what opens the commitment, and only once; then the
// committee's pass settles it.
func TestChallengeLifecycle(t *testing.T) {
	h := newHarness(t, levelGenesis(0))
	salt := strings.Repeat("5a", 32)
	commitment := ChallengeCommitment(salt, digestB, "AAAAAQ", digestC)

	h.mustDo(node1Key, registerMsg)
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	create := createMsg(omni)
	create.CreateJob.Verification = VerifyChallenge
	h.mustDo(consumerKey, create)
	if r := h.do(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key)}}); r.Code == CodeOK {
		t.Fatal("a challenge job assigned without a commitment")
	}
	other := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	if r := h.do(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: other, Node: addr(node1Key), Challenge: commitment}}); r.Code == CodeOK {
		t.Fatal("a freivalds job's assignment carried a challenge")
	}
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key), Challenge: commitment}})

	reveal := func(k ed25519.PrivateKey, saltHex string) TxResult {
		return h.do(k, Msg{RevealChallenge: &MsgRevealChallenge{JobID: id, Salt: saltHex, Input: digestB, Rows: "AAAAAQ", Expected: digestC}})
	}
	if r := reveal(routerKey, salt); r.Code == CodeOK {
		t.Fatal("revealed before the result was committed")
	}
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: 5}})
	if j := query[Job](h, "job/"+id); j.Status != JobComputed || j.Audited || len(j.Committee) != 1 {
		t.Fatalf("job %s audited=%v committee %v: a challenge job always has a committee", j.Status, j.Audited, j.Committee)
	}
	if r := h.do(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}}); r.Code == CodeOK {
		t.Fatal("attested before the challenge was revealed")
	}
	if r := reveal(strangerKey, salt); r.Code != CodeUnauthorized {
		t.Fatalf("a stranger's reveal: %+v", r)
	}
	if r := reveal(routerKey, strings.Repeat("5b", 32)); r.Code == CodeOK || !strings.Contains(r.Log, "does not open") {
		t.Fatalf("a reveal that does not open the commitment: %+v", r)
	}
	if r := reveal(routerKey, salt); r.Code != CodeOK {
		t.Fatalf("reveal: %+v", r)
	}
	if r := reveal(routerKey, salt); r.Code == CodeOK {
		t.Fatal("revealed twice")
	}
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
	j := query[Job](h, "job/"+id)
	if j.Status != JobSettled || j.ChallengeReveal == nil || j.ChallengeReveal.Rows != "AAAAAQ" || j.Challenge != commitment {
		t.Fatalf("job %s reveal %+v", j.Status, j.ChallengeReveal)
	}
	h.checkBooks()
}

// TestChallengeCommitmentBindsEveryField: changing any field, or moving bytes between
// fields, changes the commitment.
func TestChallengeCommitmentBindsEveryField(t *testing.T) {
	base := []string{"s", "in", "rows", "exp"}
	seen := map[string]bool{ChallengeCommitment(base[0], base[1], base[2], base[3]): true}
	for i := range base {
		for _, v := range []string{base[i] + "x", "", "r" + base[i]} {
			f := append([]string(nil), base...)
			f[i] = v
			c := ChallengeCommitment(f[0], f[1], f[2], f[3])
			if seen[c] {
				t.Fatalf("fields %q commit like another set", f)
			}
			seen[c] = true
		}
	}
	if ChallengeCommitment("ab", "c", "", "") == ChallengeCommitment("a", "bc", "", "") {
		t.Fatal("bytes moved between fields commit the same")
	}
}

func hasEvent(r TxResult, typ string) bool {
	for _, e := range r.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}
