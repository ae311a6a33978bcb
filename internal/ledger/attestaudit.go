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
//
// A report also says whether the reporter's own check found the result wrong
// (MsgReportAttestation.ResultWrong), not merely a transcript that is not the check's on
// a result it passed. Once reporters holding more than a third of the eligible stake say
// the result is wrong, the audit has found a fraud late: the node is slashed FraudSlashBP
// as at settlement, the consumer gets back up to what it paid and the rest burns, once a
// job (Job.FoundWrong, resultFoundWrong). The settlement itself stands, paid.

// AttestationReportWindow is how many blocks after a job settles reports against its
// audited attestations are taken, and so how long a held report waits for others.
const AttestationReportWindow = 3600

var (
	// attaudit/<last height, 16 hex digits>/<job id>: an open audit, until that height.
	prefixAttAudit = []byte("attaudit/")
	// attreport/<job id>/<attester>/<reporter>: a held report.
	prefixAttReport = []byte("attreport/")
	// attwrong/<job id>/<reporter>: a reporter's word that the job's result is wrong.
	prefixResultWrong = []byte("attwrong/")
)

func attAuditKey(until int64, id string) []byte {
	k := appendHex16(append([]byte(nil), prefixAttAudit...), uint64(until))
	return append(append(k, '/'), id...)
}

func attReportPrefix(job string, attester keys.Address) []byte {
	return []byte(fmt.Sprintf("%s%s/%s/", prefixAttReport, job, attester))
}

func resultWrongPrefix(job string) []byte {
	return []byte(fmt.Sprintf("%s%s/", prefixResultWrong, job))
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
// the reports they still held, which never reached the threshold, against attestations
// and toward the finding that a result is wrong.
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
		if err := eachKey(st.kv, resultWrongPrefix(id), st.kv.Delete); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// MsgReportAttestation is an eligible validator's report that Validator's passing
// attestation of job JobID, whose attestations were drawn for audit, is false, and why
// (Reason). ResultWrong says which finding it is: set, the reporter's own check found the
// settled result wrong, which makes every pass of it false; unset, the result passed the
// reporter's check but Validator's transcript is not the check's.
type MsgReportAttestation struct {
	JobID       string       `json:"job_id"`
	Validator   keys.Address `json:"validator"`
	Reason      string       `json:"reason,omitempty"`
	ResultWrong bool         `json:"result_wrong,omitempty"`
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

// heldAttestationReport is a report waiting for others, under attReportPrefix, and a
// reporter's word that a job's result is wrong, under resultWrongPrefix.
type heldAttestationReport struct {
	Reporter keys.Address `json:"reporter"`
	Height   int64        `json:"height"`
}

// A report counts twice over. Against the attestation it names, whatever its finding: the
// attester is slashed once the reports against that attestation decide (reportsDecide).
// And, when ResultWrong, toward the finding that the job's result is wrong, once per
// reporter whichever attestation it names: when the reporters who say so decide, the
// node is slashed and the consumer compensated (resultFoundWrong). The second count has
// its own record, so a report that names an attestation already found false (by reports
// that spoke only of transcripts) still counts toward the finding.
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
	at, passed := -1, false
	for i, a := range j.Attestations {
		if a.Validator == m.Validator && a.Pass && a.Transcript != "" {
			at = i
		}
		passed = passed || a.Validator == c.signer && a.Pass
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: %s made no audited pass of job %s", ErrNotFound, m.Validator, j.ID)
	}
	if m.ResultWrong && passed {
		return nil, fmt.Errorf("%w: %s passed job %s: its own attestation says the result is right", ErrUnauthorized, c.signer, j.ID)
	}
	prefix := attReportPrefix(j.ID, m.Validator)
	key := append(append([]byte(nil), prefix...), c.signer...)
	wrongKey := append(resultWrongPrefix(j.ID), c.signer...)
	held := func(k []byte) (bool, error) {
		prev, err := c.st.kv.Get(k)
		return prev != nil, err
	}
	reported, err := held(key)
	if err != nil {
		return nil, err
	}
	saidWrong, err := held(wrongKey)
	if err != nil {
		return nil, err
	}
	against := !j.Attestations[at].AuditSlashed && !reported
	toward := m.ResultWrong && j.FoundWrong == nil && !saidWrong
	switch {
	case against || toward:
	case j.Attestations[at].AuditSlashed:
		return nil, fmt.Errorf("%w: %s's attestation of job %s was already found false", ErrDuplicate, m.Validator, j.ID)
	default:
		return nil, fmt.Errorf("%w: %s already reported %s's attestation of job %s", ErrDuplicate, c.signer, m.Validator, j.ID)
	}
	record := heldAttestationReport{Reporter: c.signer, Height: c.blk.height}
	ev := Event{Type: "attestation_reported", Attrs: []Attr{{"job_id", j.ID}, {"validator", string(m.Validator)}, {"reporter", string(c.signer)}, {"result_wrong", strconv.FormatBool(m.ResultWrong)}}}
	decided, slashed := "no: the attestation was already found false", []Event(nil)
	if !j.Attestations[at].AuditSlashed && reported {
		decided = "no: this reporter's report against it is already held"
	}
	if against {
		if decided, slashed, err = c.reportAgainst(p, &j, at, prefix, key, record); err != nil {
			return nil, err
		}
	}
	ev.Attrs = append(ev.Attrs, Attr{"decided", decided})
	events := append([]Event{ev}, slashed...)
	if toward {
		if err := c.st.put(wrongKey, record); err != nil {
			return nil, err
		}
		decided, err := c.reportsDecide(p, resultWrongPrefix(j.ID))
		if err != nil {
			return nil, err
		}
		if decided {
			found, err := c.resultFoundWrong(p, &j)
			if err != nil {
				return nil, err
			}
			events = append(events, found...)
		}
	}
	return events, c.st.put(jobKey(j.ID), j)
}

// reportAgainst holds the report under key and, once the reports against attestation at
// of j decide, slashes its validator FalseAttestSlashBP, all burned, and marks it found
// false. It returns what was decided and the slash's event.
func (c *execCtx) reportAgainst(p Params, j *Job, at int, prefix, key []byte, record heldAttestationReport) (string, []Event, error) {
	if err := c.st.put(key, record); err != nil {
		return "", nil, err
	}
	decided, err := c.reportsDecide(p, prefix)
	if err != nil || !decided {
		return "no: held until validators with more than a third of the eligible stake report it", nil, err
	}
	v := j.Attestations[at].Validator
	amt, err := slash(c.st, &c.sp, v, RoleValidator, p.FalseAttestSlashBP, p)
	if err != nil {
		return "", nil, err
	}
	if c.sp.Burned, err = add(c.sp.Burned, amt); err != nil {
		return "", nil, err
	}
	if val, ok, err := c.st.validator(v); err != nil {
		return "", nil, err
	} else if ok {
		c.valChanged = append(c.valChanged, val)
	}
	j.Attestations[at].AuditSlashed = true
	if err := eachKey(c.st.kv, prefix, c.st.kv.Delete); err != nil {
		return "", nil, err
	}
	return "false attestation", []Event{{Type: "slashed", Attrs: []Attr{{"account", string(v)}, {"role", RoleValidator}, {"amount", u(amt)}, {"reason", "false attestation of " + j.ID + ", found by audit"}}}}, nil
}

// resultFoundWrong treats a settled job whose result the audit found wrong as a fraud
// proven late, once: the node is slashed FraudSlashBP as a wrong result is at settlement
// (failJob), unbonding stake included, inactive below the minimum stake; the job counts
// as failed, not verified, toward its reliability. Of the slash the consumer gets back up
// to what it paid for the job, Settlement.Cost, and the rest burns. Nobody can profit:
// the consumer is at most made whole, no reporter gets anything, and a node that colludes
// with its consumer only moves its own stake to it (at most what the consumer paid, the
// rest burned), on top of the burn and fee the settlement already took. The settlement
// itself stands: the node keeps its pay and reward, and what the consumer gets back comes
// out of the node's stake.
func (c *execCtx) resultFoundWrong(p Params, j *Job) ([]Event, error) {
	slashed, err := slash(c.st, &c.sp, j.Node, RoleNode, p.FraudSlashBP, p)
	if err != nil {
		return nil, err
	}
	back := min(slashed, j.Settlement.Cost)
	if err := c.st.credit(&c.sp, j.Consumer, back); err != nil {
		return nil, err
	}
	if c.sp.Burned, err = add(c.sp.Burned, slashed-back); err != nil {
		return nil, err
	}
	n, ok, err := c.st.node(j.Node)
	if err != nil {
		return nil, err
	}
	if ok {
		n.JobsVerified -= min(n.JobsVerified, 1)
		n.JobsFailed++
		if err := c.st.put(nodeKey(j.Node), n); err != nil {
			return nil, err
		}
	}
	j.FoundWrong = &FoundWrong{Height: c.blk.height, Slashed: slashed, Compensated: back}
	if err := eachKey(c.st.kv, resultWrongPrefix(j.ID), c.st.kv.Delete); err != nil {
		return nil, err
	}
	return []Event{
		{Type: "result_found_wrong", Attrs: []Attr{{"job_id", j.ID}, {"node", string(j.Node)}, {"consumer", string(j.Consumer)}, {"slashed", u(slashed)}, {"compensated", u(back)}, {"burned", u(slashed - back)}}},
		{Type: "slashed", Attrs: []Attr{{"account", string(j.Node)}, {"role", RoleNode}, {"amount", u(slashed)}, {"reason", "wrong result for " + j.ID}, {"found_by", "audit of attestations"}}},
	}, nil
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
