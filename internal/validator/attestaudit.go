package validator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/verify"
)

// Audits of validators (ledger/attestaudit.go). A passing attestation of a checked
// product carries the transcript of its check, bound to its validator
// (verify.AttestTranscript). When the block that settles a job draws its attestations
// for audit, every validator that checked the job recomputes each other attester's
// transcript from its own check's and reports the passes that are false: a transcript
// that is not the check's, or any pass of a result its own check found wrong, saying
// then that the result is wrong. The chain slashes a false pass once validators holding
// more than a third of the eligible stake agree, and the node, compensating the consumer,
// once as many say the result is wrong.
//
// The auditor works from what it kept of its own check (findings), not from the job's
// inputs: the router lets a validator read a job's inputs only while its check lasts, so
// after settlement they are out of reach. A validator that did not check the job (it was
// not on the committee, or restarted since) cannot audit it, and says nothing.

// findingsKept bounds the checks remembered for audits: about 200 bytes each.
const findingsKept = 1 << 14

// kept is what a validator remembers of its check of a job: the result it checked, and
// either the check's transcript (a pass) or why it failed.
type kept struct {
	digest     string
	pass       bool
	transcript string
	reason     string
}

// findings remembers the latest checks, oldest forgotten first.
type findings struct {
	mu    sync.Mutex
	byJob map[string]kept
	order []string
}

func (f *findings) keep(job string, k kept) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byJob == nil {
		f.byJob = map[string]kept{}
	}
	if _, ok := f.byJob[job]; !ok {
		if len(f.order) == findingsKept {
			delete(f.byJob, f.order[0])
			f.order = f.order[1:]
		}
		f.order = append(f.order, job)
	}
	f.byJob[job] = k
}

func (f *findings) get(job string) (kept, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.byJob[job]
	return k, ok
}

// remember keeps a check's finding for an audit of the job's attestations: a pass with
// its transcript, or a fail. A pass without one (a zk proof, a challenge job's rows, a
// container's re-run) gives an auditor nothing to compare.
func (d *Daemon) remember(job ledger.Job, f finding) {
	if f.pass && f.transcript == "" {
		return
	}
	d.findings.keep(job.ID, kept{digest: job.ResultDigest, pass: f.pass, transcript: f.transcript, reason: f.reason})
}

// runAudits reads the chain's open audits every AuditEvery and audits those it checked,
// each once, until ctx ends.
func (d *Daemon) runAudits(ctx context.Context) {
	t := time.NewTicker(d.opts.AuditEvery)
	defer t.Stop()
	done := map[string]bool{} // audited, among the audits still open
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var open []ledger.AttestationAudit
		if err := d.opts.Chain.Query(ctx, "attestation_audits", &open); err != nil {
			d.log.Debug("read the open audits of attestations", "err", err)
			continue
		}
		still := make(map[string]bool, len(done))
		for _, a := range open {
			if !done[a.JobID] {
				k, ok := d.findings.get(a.JobID)
				if !ok {
					continue // not checked here, or its check is still under way
				}
				if err := d.AuditAttestations(ctx, a.JobID, k); err != nil {
					d.log.Warn("audit of attestations", "job", a.JobID, "err", err)
					continue
				}
			}
			still[a.JobID] = true
		}
		done = still
	}
}

// AuditAttestations reads a job drawn for an audit of its attestations and reports every
// other validator's pass that its own check k contradicts: when k failed the result, every
// pass, each report saying the result is wrong (MsgReportAttestation.ResultWrong), so that
// the chain can slash the node and compensate the consumer; when k passed it, the passes
// whose transcript is not the check's. An error means the job could not be read or a
// report not sent; a report the chain refuses because the attestation was already found
// false, or this validator already reported it, is no error.
func (d *Daemon) AuditAttestations(ctx context.Context, id string, k kept) error {
	var job ledger.Job
	if err := d.opts.Chain.Query(ctx, "job/"+id, &job); err != nil {
		return fmt.Errorf("look up job: %w", err)
	}
	if job.ResultDigest != k.digest {
		return fmt.Errorf("job %s's result is %s, this validator checked %s", id, job.ResultDigest, k.digest)
	}
	var errs []error
	for _, a := range job.Attestations {
		if !a.Pass || a.Transcript == "" || string(a.Validator) == d.id {
			continue
		}
		m := ledger.MsgReportAttestation{JobID: id, Validator: a.Validator}
		switch {
		case !k.pass && (!a.AuditSlashed || job.FoundWrong == nil):
			// Its report also says the result is wrong, which the chain counts once for
			// this validator, against whichever pass: one already found false still
			// carries that word until the result is found wrong.
			m.Reason, m.ResultWrong = "passed a result this validator's check failed: "+k.reason, true
		case k.pass && !a.AuditSlashed && a.Transcript != verify.AttestTranscript(k.transcript, string(a.Validator)):
			m.Reason = "its transcript is not the check's"
		default:
			continue
		}
		m.Reason = truncate(m.Reason, 256)
		_, err := d.opts.Chain.Send(ctx, ledger.Msg{ReportAttestation: &m})
		switch {
		case errors.Is(err, ledger.ErrDuplicate):
			d.log.Info("attestation already reported", "job", id, "validator", a.Validator.Short(), "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("report %s: %w", a.Validator.Short(), err))
		default:
			d.metrics.reported()
			d.log.Info("reported a false attestation", "job", id, "validator", a.Validator.Short(), "reason", m.Reason, "result_wrong", m.ResultWrong)
		}
	}
	return errors.Join(errs...)
}
