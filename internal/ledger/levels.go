package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
)

// The challenge and audit levels (msgs.go says what each does). Both run a job on one
// node like freivalds; what differs is when the committee checks and what with.

// auditDrawn reports whether the job whose verification seed is seed is audited: the
// first eight bytes of sha256("omnisync/audit/" + seed), modulo 10,000, fall below
// AuditRateBP. The seed comes from the hash of the block that records the result, so the
// node could not know, when it fixed its result, whether it would be checked.
func auditDrawn(p Params, seed string) bool {
	h := sha256.Sum256([]byte("omnisync/audit/" + seed))
	return binary.BigEndian.Uint64(h[:8])%BasisPoints < p.AuditRateBP
}

// ChallengeCommitment is what a router commits to when it assigns a challenge job, and
// what MsgRevealChallenge must open: sha256 over a domain tag and the four fields, each
// length-prefixed, as "sha256:<hex>". salt keeps a guess of the other three (which rows,
// for a small matrix, could be enumerated) from being checked against the commitment.
func ChallengeCommitment(salt, input, rows, expected string) string {
	h := sha256.New()
	h.Write([]byte("omnisync/challenge/v1"))
	for _, f := range []string{salt, input, rows, expected} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// revealChallenge opens a challenge job's commitment once its node has committed a
// result; from then on its committee may attest. A router reveals; the fields must hash
// to the commitment the job's assignment carried.
func (c *execCtx) revealChallenge(p Params, m *MsgRevealChallenge) ([]Event, error) {
	if !slices.Contains(p.Routers, c.signer) {
		return nil, fmt.Errorf("%w: %s is not a router", ErrUnauthorized, c.signer)
	}
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	switch {
	case j.Verification != VerifyChallenge:
		return nil, fmt.Errorf("%w: job %s is a %s job, which has no challenge to reveal", ErrBadState, j.ID, j.Verification)
	case j.Status != JobComputed:
		return nil, fmt.Errorf("%w: job %s is %s: a challenge is revealed after its result is committed and before it is decided", ErrBadState, j.ID, j.Status)
	case j.ChallengeReveal != nil:
		return nil, fmt.Errorf("%w: job %s's challenge is already revealed", ErrDuplicate, j.ID)
	case ChallengeCommitment(m.Salt, m.Input, m.Rows, m.Expected) != j.Challenge:
		return nil, fmt.Errorf("%w: the revealed challenge does not open job %s's commitment", ErrInvalidMsg, j.ID)
	}
	j.ChallengeReveal = &ChallengeReveal{Salt: m.Salt, Input: m.Input, Rows: m.Rows, Expected: m.Expected, Height: c.blk.height}
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	return []Event{{Type: "challenge_revealed", Attrs: []Attr{{"job_id", j.ID}, {"input", m.Input}}}}, nil
}

// provenWrong reports whether a failed job's rejection proves its result wrong, which is
// what slashing needs. Every tensor check is exact (Freivalds' over the integers, the
// challenge rows recomputed), and its attestation states the operation count. An audit of
// a container, by contrast, is a second run of it: a different output may be the
// container's own nondeterminism, as a redundant job's disagreement may, so it is no proof.
func provenWrong(j Job) bool {
	if j.Verification != VerifyAudit {
		return true
	}
	for _, a := range j.Attestations {
		if !a.Pass && a.Ops != 0 {
			return true
		}
	}
	return false
}
