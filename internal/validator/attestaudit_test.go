package validator

import (
	"context"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
	"github.com/omnisync/omnisync/internal/verify"
)

// A passing attestation states the check's transcript bound to this validator; a failing
// one states none.
func TestAttestationCarriesTheChecksTranscript(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	if v := r.verify(t, r.spec); !v.Pass {
		t.Fatalf("verdict %+v", v)
	}
	check := r.check(t, c)
	if got, want := r.chain.attests[0].Transcript, verify.AttestTranscript(check.Transcript, r.id); got != want || want == "" {
		t.Fatalf("attested transcript %q, want %q", got, want)
	}

	w := newRig(t)
	wrong, _ := tensor.MatMulInt8(w.a, w.b)
	wrong.Data[3]++
	w.commitOutput(t, wrong)
	if v := w.verify(t, w.spec); v.Pass || len(w.chain.attests) != 1 || w.chain.attests[0].Transcript != "" {
		t.Fatalf("verdict %+v, attests %+v: want a fail without a transcript", v, w.chain.attests)
	}
}

// check is the validator's check of c, done here as the daemon does it.
func (r *rig) check(t *testing.T, c *tensor.Int32Matrix) verify.Verdict {
	t.Helper()
	a, _ := r.a.MarshalBinary()
	b, _ := r.b.MarshalBinary()
	out, _ := c.MarshalBinary()
	var seed [32]byte
	s, _ := hex.DecodeString(r.chain.job.Seed)
	copy(seed[:], s)
	v, err := verify.CheckKernel(tensor.KernelMatMulInt8, [][]byte{a, b}, out, seed, verify.DefaultRounds)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func address(t *testing.T) keys.Address { return keys.AddressOfKey(transporttest.Key(t)) }

// drawn settles the rig's job with atts and opens its audit on the fake chain.
func (r *rig) drawn(atts ...ledger.Attestation) {
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	r.chain.job.Status, r.chain.job.AttestationsAudited, r.chain.job.Attestations = ledger.JobSettled, true, atts
	r.chain.job.Settlement = &ledger.Settlement{Height: 5}
	r.chain.audits = []ledger.AttestationAudit{{JobID: r.chain.job.ID, Until: 5 + ledger.AttestationReportWindow}}
}

// reportsAfter waits until want reports were sent, then a few more audit rounds, and
// returns them sorted by validator.
func (r *rig) reportsAfter(t *testing.T, want int) []ledger.MsgReportAttestation {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for want > 0 {
		r.chain.mu.Lock()
		n := len(r.chain.reports)
		r.chain.mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // twenty more rounds: nothing is reported twice
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	out := slices.Clone(r.chain.reports)
	slices.SortFunc(out, func(a, b ledger.MsgReportAttestation) int { return compare(a.Validator, b.Validator) })
	return out
}

func compare(a, b keys.Address) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func fastAudits(o *Options) { o.AuditEvery = 10 * time.Millisecond }

// An audit of a right result's attestations reports the passes whose transcript is not
// the check's (one made up, one copied from an honest attester), once each, not saying
// the result is wrong, and leaves alone the honest attester's pass, a fail, one already
// found false and its own.
func TestAuditReportsATranscriptThatIsNotTheChecks(t *testing.T) {
	r := newRigWith(t, fastAudits)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	if v := r.verify(t, r.spec); !v.Pass {
		t.Fatalf("verdict %+v", v)
	}
	check := r.check(t, c)
	honest, maker, copier, slashed, failer := address(t), address(t), address(t), address(t), address(t)
	made := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	honestTranscript := verify.AttestTranscript(check.Transcript, string(honest))
	r.drawn(
		ledger.Attestation{Validator: keys.Address(r.id), Pass: true, Ops: 1, Transcript: r.chain.attests[0].Transcript},
		ledger.Attestation{Validator: honest, Pass: true, Ops: 1, Transcript: honestTranscript},
		ledger.Attestation{Validator: maker, Pass: true, Ops: 1, Transcript: made},
		ledger.Attestation{Validator: copier, Pass: true, Ops: 1, Transcript: honestTranscript},
		ledger.Attestation{Validator: slashed, Pass: true, Ops: 1, Transcript: made, AuditSlashed: true},
		ledger.Attestation{Validator: failer, Reason: "row 1"},
	)
	got := r.reportsAfter(t, 2)
	want := []keys.Address{maker, copier}
	slices.Sort(want)
	if len(got) != 2 || got[0].Validator != want[0] || got[1].Validator != want[1] || got[0].JobID != r.chain.job.ID {
		t.Fatalf("reports %+v, want one each against %v", got, want)
	}
	if got[0].ResultWrong || got[1].ResultWrong {
		t.Errorf("reports %+v of a right result say it is wrong", got)
	}
	if _, ok := r.daemon.findings.get(r.chain.job.ID); !ok {
		t.Error("the check's finding was not kept")
	}
}

// A result the validator's check found wrong, settled by others' passes before its own
// check ended (two lazy validators of three): nothing is attested, and the audit reports
// every pass, whatever its transcript, one already found false too, each report saying
// the result is wrong; once the chain has found the result wrong, a pass already found
// false is left alone.
func TestAuditReportsEveryPassOfAResultTheCheckFoundWrong(t *testing.T) {
	r := newRigWith(t, fastAudits)
	wrong, _ := tensor.MatMulInt8(r.a, r.b)
	wrong.Data[7] += 2
	r.commitOutput(t, wrong)
	right, _ := tensor.MatMulInt8(r.a, r.b)
	check := r.check(t, right)
	lazy1, lazy2, slashed := address(t), address(t), address(t)
	atts := []ledger.Attestation{
		{Validator: lazy1, Pass: true, Ops: 1, Transcript: "sha256:" + "11111111111111111111111111111111111111111111111111111111111111aa"},
		// Even the transcript the right result would give.
		{Validator: lazy2, Pass: true, Ops: 1, Transcript: verify.AttestTranscript(check.Transcript, string(lazy2))},
		{Validator: slashed, Pass: true, Ops: 1, Transcript: "sha256:" + "33333333333333333333333333333333333333333333333333333333333333cc", AuditSlashed: true},
	}
	r.drawn(atts...)
	v, err := r.request(r.chain.job.ID, r.spec)
	if err != nil || v.Error == "" || len(r.chain.attests) != 0 {
		t.Fatalf("verdict %+v (%v), attests %+v: want an error and nothing attested", v, err, r.chain.attests)
	}
	got := r.reportsAfter(t, 3)
	want := []keys.Address{lazy1, lazy2, slashed}
	slices.Sort(want)
	if len(got) != 3 || got[0].Validator != want[0] || got[1].Validator != want[1] || got[2].Validator != want[2] {
		t.Fatalf("reports %+v, want all three passes", got)
	}
	for _, m := range got {
		if !m.ResultWrong {
			t.Errorf("report %+v does not say the result is wrong", m)
		}
	}

	// Found wrong, and the audit of a fresh daemon with the same finding: the pass
	// already found false is not reported again.
	r.chain.mu.Lock()
	r.chain.reports, r.chain.job.FoundWrong = nil, &ledger.FoundWrong{Height: 6, Slashed: 1, Compensated: 1}
	r.chain.mu.Unlock()
	k, _ := r.daemon.findings.get(r.chain.job.ID)
	if err := r.daemon.AuditAttestations(context.Background(), r.chain.job.ID, k); err != nil {
		t.Fatal(err)
	}
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	for _, m := range r.chain.reports {
		if m.Validator == slashed {
			t.Errorf("reported %+v after the result was found wrong", m)
		}
	}
	if len(r.chain.reports) != 2 {
		t.Errorf("reports %+v after the finding: want the two passes not yet found false", r.chain.reports)
	}
}

// A validator that did not check a job has nothing to audit it with: it reports nothing.
func TestAuditWithoutItsOwnCheckReportsNothing(t *testing.T) {
	r := newRigWith(t, fastAudits)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	r.drawn(ledger.Attestation{Validator: address(t), Pass: true, Ops: 1, Transcript: "sha256:" + "22222222222222222222222222222222222222222222222222222222222222bb"})
	if got := r.reportsAfter(t, 0); len(got) != 0 {
		t.Fatalf("reports %+v without a check", got)
	}
}
