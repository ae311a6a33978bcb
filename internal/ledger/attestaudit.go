package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/omnisync/omnisync/internal/keys"
)

// Audits of validators. A committee that counts heads catches a validator that attests
// without checking only when honest members outvote it; two lazy members of three settle
// a wrong result. So a passing attestation of a job whose committee runs Freivalds' check
// carries a transcript of the check (MsgAttest.Transcript, verify.AttestTranscript), and
// the block that settles such a job draws, from its hash, whether the job's attestations
// are audited (ValidatorAuditBP). Validators that checked the job then recompute each
// attester's transcript from their own check and report the passes that are false
// (MsgReportAttestation): a transcript that is not the check's, or a pass of a result
// their check found wrong.
//
// The evidence stays with the validators (a job's inputs are far larger than a
// transaction), so, as for capacity reports (capacity.go), one validator's word must not
// slash alone: reports against an attestation are held until validators holding more
// than a third of the eligible validators' stake have reported it, within
// AttestationReportWindow blocks of the settlement. Stake, not heads: the committee's own
// rule counts heads, and it is exactly heads that two lazy 10,000-OMNI validators can
// outnumber; more than a third of the stake is the BFT assumption the chain itself rests
// on. The validator is then slashed FalseAttestSlashBP, all of it burned (no reporter
// profits), and the attestation is marked AuditSlashed so that nothing slashes it twice.
// The job's settlement stands: the audit judges validators, not the job.

// AttestationReportWindow is how many blocks after a job settles reports against its
// audited attestations are taken, and so how long a held report waits for others.
const AttestationReportWindow = 3600

var (
	// attaudit/<last height, 16 hex digits>/<job id>: an open audit, until that height.
	prefixAttAudit = []byte("attaudit/")
	// attreport/<job id>/<attester>/<reporter>: a held report.
	prefixAttReport = []byte("attreport/")
)

func attAuditKey(until int64, id string) []byte {
	k := appendHex16(append([]byte(nil), prefixAttAudit...), uint64(until))
	return append(append(k, '/'), id...)
}

func attReportPrefix(job string, attester keys.Address) []byte {
	return []byte(fmt.Sprintf("%s%s/%s/", prefixAttReport, job, attester))
}

// transcriptRequired reports whether the attestation m of job j must carry a transcript:
// a pass that states operations on a job whose committee runs Freivalds' check over the
// whole output, which is every freivalds job and a challenge or audit job drawn for audit.
// A zk job's committee verifies a proof, an unaudited challenge job's checks its rows
// only, and an audited container's run states millis: none has a transcript. The ledger
// does not know a job's kernel (the spec is off chain), so an audit-level pass that
// states millis instead of operations needs none.
func transcriptRequired(j Job, m *MsgAttest) bool {
	if !m.Pass || m.Ops == 0 {
		return false
	}
	switch j.Verification {
	case VerifyFreivalds:
		return true
	case VerifyChallenge, VerifyAudit:
		return j.Audited
	}
	return false
}

// attestationAuditDrawn reports whether a job settling in the block whose hash is
// blockHash has its attestations audited: some pass carries a transcript, and the first
// eight bytes of sha256("omnisync/attestation-audit/" ‖ block hash ‖ job id), modulo
// 10,000, fall below ValidatorAuditBP. The block holds the attestation that settled the
// job, so no attester knew its hash when it signed.
func attestationAuditDrawn(p Params, blockHash []byte, j Job) bool {
	withTranscript := false
	for _, a := range j.Attestations {
		withTranscript = withTranscript || a.Pass && a.Transcript != ""
	}
	if !withTranscript || p.ValidatorAuditBP == 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte("omnisync/attestation-audit/"))
	h.Write(blockHash)
	h.Write([]byte(j.ID))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])%BasisPoints < p.ValidatorAuditBP
}

// AttestationAudit is an open audit of a settled job's attestations: reports against them
// are taken until height Until (query attestation_audits).
type AttestationAudit struct {
	JobID string `json:"job_id"`
	Until int64  `json:"until_height"`
}

// openAttestationAudit records that j's attestations are audited, until the window ends.
func (c *execCtx) openAttestationAudit(j *Job) (Event, error) {
	until := c.blk.height + AttestationReportWindow
	if err := c.st.kv.Set(attAuditKey(until, j.ID), []byte{1}); err != nil {
		return Event{}, err
	}
	return Event{Type: "attestations_audit_drawn", Attrs: []Attr{{"job_id", j.ID}, {"until_height", strconv.FormatInt(until, 10)}}}, nil
}

// attestationAudits lists the open audits, soonest to close first.
func attestationAudits(r Reader) ([]AttestationAudit, error) {
	out := []AttestationAudit{}
	err := r.Iterate(prefixAttAudit, func(k, _ []byte) bool {
		rest := k[len(prefixAttAudit):]
		until, err := strconv.ParseUint(string(rest[:16]), 16, 64)
		if err == nil && len(rest) > 17 {
			out = append(out, AttestationAudit{JobID: string(rest[17:]), Until: int64(until)})
		}
		return true
	})
	return out, err
}

// closeAttestationAudits ends the audits whose window closed with this block and drops
// the reports they still held, which never reached the threshold.
func closeAttestationAudits(st state, blk *blockCtx) ([]Event, error) {
	list, err := due(st, prefixAttAudit, uint64(blk.height))
	if err != nil {
		return nil, err
	}
	for _, k := range list {
		id := string(k[len(prefixAttAudit)+17:])
		if err := st.kv.Delete(k); err != nil {
			return nil, err
		}
		if err := eachKey(st.kv, []byte(fmt.Sprintf("%s%s/", prefixAttReport, id)), st.kv.Delete); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// MsgReportAttestation is an eligible validator's report that Validator's passing
// attestation of job JobID, whose attestations were drawn for audit, is false: its
// transcript is not the check's, or the reporter's own check found the result wrong
// (Reason says which).
type MsgReportAttestation struct {
	JobID     string       `json:"job_id"`
	Validator keys.Address `json:"validator"`
	Reason    string       `json:"reason,omitempty"`
}

func (m *MsgReportAttestation) validate() error {
	if err := validateJobID(m.JobID); err != nil {
		return err
	}
	if err := m.Validator.Validate(); err != nil {
		return fmt.Errorf("%w: validator: %v", ErrInvalidMsg, err)
	}
	if len(m.Reason) > 256 {
		return fmt.Errorf("%w: reason longer than 256 bytes", ErrInvalidMsg)
	}
	return nil
}

// heldAttestationReport is a report waiting for others, under attReportPrefix.
type heldAttestationReport struct {
	Reporter keys.Address `json:"reporter"`
	Height   int64        `json:"height"`
}

func (c *execCtx) reportAttestation(p Params, m *MsgReportAttestation) ([]Event, error) {
	if err := c.eligibleSigner(p); err != nil {
		return nil, err
	}
	if m.Validator == c.signer {
		return nil, fmt.Errorf("%w: %s may not report its own attestation", ErrUnauthorized, c.signer)
	}
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	switch {
	case !j.AttestationsAudited || j.Settlement == nil:
		return nil, fmt.Errorf("%w: job %s's attestations were not drawn for audit", ErrBadState, j.ID)
	case c.blk.height > j.Settlement.Height+AttestationReportWindow:
		return nil, fmt.Errorf("%w: the audit of job %s's attestations closed at height %d", ErrBadState, j.ID, j.Settlement.Height+AttestationReportWindow)
	}
	at := -1
	for i, a := range j.Attestations {
		if a.Validator == m.Validator && a.Pass && a.Transcript != "" {
			at = i
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: %s made no audited pass of job %s", ErrNotFound, m.Validator, j.ID)
	}
	if j.Attestations[at].AuditSlashed {
		return nil, fmt.Errorf("%w: %s's attestation of job %s was already found false", ErrDuplicate, m.Validator, j.ID)
	}
	prefix := attReportPrefix(j.ID, m.Validator)
	key := append(append([]byte(nil), prefix...), c.signer...)
	if prev, err := c.st.kv.Get(key); err != nil || prev != nil {
		return nil, fmt.Errorf("%w: %s already reported %s's attestation of job %s", ErrDuplicate, c.signer, m.Validator, j.ID)
	}
	if err := c.st.put(key, heldAttestationReport{Reporter: c.signer, Height: c.blk.height}); err != nil {
		return nil, err
	}
	ev := Event{Type: "attestation_reported", Attrs: []Attr{{"job_id", j.ID}, {"validator", string(m.Validator)}, {"reporter", string(c.signer)}}}
	decided, err := c.reportsDecide(p, prefix)
	if err != nil || !decided {
		ev.Attrs = append(ev.Attrs, Attr{"decided", "no: held until validators with more than a third of the eligible stake report it"})
		return []Event{ev}, err
	}
	ev.Attrs = append(ev.Attrs, Attr{"decided", "false attestation"})
	amt, err := slash(c.st, &c.sp, m.Validator, RoleValidator, p.FalseAttestSlashBP, p)
	if err != nil {
		return nil, err
	}
	if c.sp.Burned, err = add(c.sp.Burned, amt); err != nil {
		return nil, err
	}
	if val, ok, err := c.st.validator(m.Validator); err != nil {
		return nil, err
	} else if ok {
		c.valChanged = append(c.valChanged, val)
	}
	j.Attestations[at].AuditSlashed = true
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	if err := eachKey(c.st.kv, prefix, c.st.kv.Delete); err != nil {
		return nil, err
	}
	return []Event{ev, {Type: "slashed", Attrs: []Attr{{"account", string(m.Validator)}, {"role", RoleValidator}, {"amount", u(amt)}, {"reason", "false attestation of " + j.ID + ", found by audit"}}}}, nil
}

// reportsDecide reports whether the reports held under prefix come from validators that
// are eligible now and hold, together, more than a third of the eligible validators'
// stake.
func (c *execCtx) reportsDecide(p Params, prefix []byte) (bool, error) {
	vals, err := c.st.validators()
	if err != nil {
		return false, err
	}
	var reporters []keys.Address
	if err := eachRecord(c.st.kv, prefix, func(h heldAttestationReport) bool {
		reporters = append(reporters, h.Reporter)
		return true
	}); err != nil {
		return false, err
	}
	var total, reported uint64
	for _, v := range vals {
		if !v.Eligible(p) {
			continue
		}
		if total, err = add(total, v.Stake); err != nil {
			return false, err
		}
		if contains(reporters, v.Address) {
			if reported, err = add(reported, v.Stake); err != nil {
				return false, err
			}
		}
	}
	thrice, err := mulDiv(reported, 3, 1, false)
	return err == nil && thrice > total, err
}
