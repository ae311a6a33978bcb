package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/internal/keys"
)

// Redundant verification: the router places a job on RedundantReplicas distinct nodes, each
// runs it and commits a seal of its result, and once all of them have sealed they reveal
// their digests; the ledger pays every replica that revealed the digest at least
// RedundantQuorum of them agree on.
//
// Commits are public, so a digest committed in the open could be copied by a replica that
// never ran the job, and it would be paid for agreeing. A seal (ResultSeal) hides the
// digest and binds the sealer's address, so a copied seal is worthless: it opens only for
// the replica that made it, with the digest it hid. Reveals open only once every replica
// has sealed (RevealsOpen), so none can seal a digest it has seen revealed, and one fast
// wrong replica cannot shut an honest third out: the router replaces a replica whose node
// fails before it seals.
//
// From then on the job waits until every replica has revealed, so that no honest replica
// races another for its pay: then a digest revealed by RedundantQuorum or more settles it,
// paying all of them, and with no such digest it fails as inconclusive, refunded. A
// replica that never reveals cannot hold the others' pay hostage: at the job's deadline a
// quorum of revealed digests settles it just the same (expireRedundant), and the replica
// that withheld its reveal is marked failed; without such a quorum the job expires,
// refunded. The agreeing replicas are billed the median of the GPU times they reported (the
// lower of two), each at its own price (RedundantSettlementFor).
//
// No validator checks the work, so nothing here slashes: disagreement alone is not
// evidence of who was wrong, and a slash would need more (a validator re-executing the
// job), which is future work. What a wrong or silent node loses here is its pay and its
// reliability.

// A quorum is more than half the replicas, so at most one digest can have one
// (quorumDigest). This does not compile if the constants stop saying so.
const _ = uint(2*RedundantQuorum - RedundantReplicas - 1)

// ResultSeal is what a redundant job's replica commits in place of its result digest:
// "sha256:" and the lower-case hex sha256 of "omnisync result seal v1\n", the job id, "\n",
// the replica's address, "\n" and the digest. The address is what makes a copied seal
// useless: no digest opens it for anyone but the replica that made it.
func ResultSeal(jobID string, node keys.Address, digest string) string {
	h := sha256.Sum256([]byte("omnisync result seal v1\n" + jobID + "\n" + string(node) + "\n" + digest))
	return "sha256:" + hex.EncodeToString(h[:])
}

// assignReplica adds node n to a redundant job as a replica, or, with m.Replaces, puts it
// in the place of a replica that has not sealed. Replicas must be distinct nodes: each
// node is its own staked account, and that is all "distinct operators" can mean on chain
// (the ledger cannot see who runs a node; keeping an operator's nodes apart is placement's
// job, off chain). Once reveals have begun the replicas are final: a new one could seal a
// digest it has seen revealed.
func (c *execCtx) assignReplica(j Job, n Node, m *MsgAssignJob) ([]Event, error) {
	if revealsBegun(j) {
		return nil, fmt.Errorf("%w: reveals have begun on job %s; its replicas can no longer change", ErrBadState, j.ID)
	}
	slot := len(j.Replicas)
	if m.Replaces != "" {
		i := replicaIndex(j, m.Replaces)
		if i < 0 {
			return nil, fmt.Errorf("%w: %s is not a replica of job %s", ErrNotFound, m.Replaces, j.ID)
		}
		if j.Replicas[i].Committed() {
			return nil, fmt.Errorf("%w: replica %s of job %s has sealed its result and cannot be replaced", ErrBadState, m.Replaces, j.ID)
		}
		slot = i
	} else if len(j.Replicas) >= RedundantReplicas {
		return nil, fmt.Errorf("%w: job %s already has %d replicas", ErrBadState, j.ID, RedundantReplicas)
	}
	if replicaIndex(j, m.Node) >= 0 {
		return nil, fmt.Errorf("%w: %s is already a replica of job %s", ErrDuplicate, m.Node, j.ID)
	}
	r := Replica{Node: m.Node, PricePerHour: n.PricePerHour, ScoreBP: m.ScoreBP, AssignedHeight: c.blk.height}
	if slot == len(j.Replicas) {
		j.Replicas = append(j.Replicas, r)
	} else {
		j.Replicas[slot] = r
	}
	j.Status = JobAssigned
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	attrs := []Attr{{"job_id", j.ID}, {"node", string(m.Node)}}
	if m.Replaces != "" {
		attrs = append(attrs, Attr{"replaces", string(m.Replaces)})
	}
	return []Event{{Type: "job_assigned", Attrs: attrs}}, nil
}

// commitReplica records a replica's sealed result, and the GPU time it reports, on an
// assigned redundant job. Nothing is decided until the seals are opened (revealReplica).
func (c *execCtx) commitReplica(j Job, m *MsgCommitResult) ([]Event, error) {
	if m.Seal == "" {
		return nil, fmt.Errorf("%w: job %s is redundant: commit a seal of the result (ResultSeal), not its digest, and reveal the digest once every replica has sealed", ErrInvalidMsg, j.ID)
	}
	i := replicaIndex(j, c.signer)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s is not a replica of job %s", ErrUnauthorized, c.signer, j.ID)
	}
	if revealsBegun(j) {
		return nil, fmt.Errorf("%w: reveals have begun on job %s; it takes no more seals", ErrBadState, j.ID)
	}
	r := &j.Replicas[i]
	if r.Committed() {
		return nil, fmt.Errorf("%w: replica %s already committed its sealed result for job %s", ErrDuplicate, c.signer, j.ID)
	}
	r.Seal, r.GPUMillis, r.ResultHeight = m.Seal, m.GPUMillis, c.blk.height
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	return []Event{{Type: "result_committed", Attrs: []Attr{{"job_id", j.ID}, {"node", string(c.signer)}, {"seal", m.Seal}}}}, nil
}

// revealResult opens the signer's seal on a redundant job; a freivalds job has none.
func (c *execCtx) revealResult(p Params, m *MsgRevealResult) ([]Event, error) {
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Verification != VerifyRedundant {
		return nil, fmt.Errorf("%w: job %s is a %s job: only a redundant job's replicas seal and reveal", ErrBadState, j.ID, j.Verification)
	}
	if j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s, not awaiting a result", ErrBadState, j.ID, j.Status)
	}
	return c.revealReplica(p, j, m)
}

// RevealsOpen reports whether a redundant job's replicas may reveal their digests: once all
// RedundantReplicas have sealed, so no digest is public while a replica may still seal.
func RevealsOpen(j Job) bool { return countReplicas(j, Replica.Committed) >= RedundantReplicas }

// revealReplica records the digest that opens a replica's seal, once every replica has
// sealed, and decides the job once every replica has revealed: it settles on the digest
// RedundantQuorum or more of them revealed, paying each replica that revealed it, and with
// no such digest it fails as inconclusive. Until then it waits, since a replica still to
// reveal could make a quorum, or join one and be paid with it.
func (c *execCtx) revealReplica(p Params, j Job, m *MsgRevealResult) ([]Event, error) {
	i := replicaIndex(j, c.signer)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s is not a replica of job %s", ErrUnauthorized, c.signer, j.ID)
	}
	r := &j.Replicas[i]
	switch {
	case !r.Committed():
		return nil, fmt.Errorf("%w: replica %s of job %s has sealed no result to reveal", ErrUnauthorized, c.signer, j.ID)
	case r.Revealed():
		return nil, fmt.Errorf("%w: replica %s already revealed its result for job %s", ErrDuplicate, c.signer, j.ID)
	}
	if !RevealsOpen(j) {
		return nil, fmt.Errorf("%w: %d of job %s's %d replicas have sealed; reveals open once all have", ErrBadState, countReplicas(j, Replica.Committed), j.ID, RedundantReplicas)
	}
	if ResultSeal(j.ID, c.signer, m.ResultDigest) != r.Seal {
		return nil, fmt.Errorf("%w: the revealed digest does not open the seal replica %s committed for job %s", ErrInvalidMsg, c.signer, j.ID)
	}
	r.ResultDigest = m.ResultDigest
	events := []Event{{Type: "result_revealed", Attrs: []Attr{{"job_id", j.ID}, {"node", string(c.signer)}, {"digest", m.ResultDigest}}}}
	if countReplicas(j, Replica.Revealed) < RedundantReplicas {
		return events, c.st.put(jobKey(j.ID), j)
	}
	if digest, ok := quorumDigest(j); ok {
		s, err := c.redundantSettlement(p, j, digest)
		if err != nil {
			return nil, err
		}
		ev, err := c.settleRedundant(p, &j, digest, s, false)
		if err != nil {
			return nil, err
		}
		return append(events, ev...), nil
	}
	// No two agree. Disagreement alone does not say who was wrong, so no node loses stake or
	// reliability, and the consumer pays for nothing it can trust.
	if err := refundEscrow(c.st, &c.sp, &j, JobFailed, c.blk.height); err != nil {
		return nil, err
	}
	return append(events, Event{Type: "job_failed", Attrs: []Attr{
		{"job_id", j.ID}, {"refunded", u(j.Budget)}, {"reason", "inconclusive: no two replicas agree"},
	}}), nil
}

// expireRedundant decides a redundant job whose deadline has passed with a replica yet to
// reveal, on the digests revealed so far: when RedundantQuorum or more of them agree it
// settles the job as revealReplica would have (settleRedundant), marking the replicas that
// sealed and never revealed as withheld, and reports true. Otherwise it changes nothing and
// reports false, and the job expires, refunded, no node marked: with no quorum no one can
// tell who was right. A settlement too large to compute (an absurd price overflowing it,
// which refused the reveal that would have settled it too) is refunded the same way.
func expireRedundant(st state, blk *blockCtx, j *Job) ([]Event, bool, error) {
	digest, ok := quorumDigest(*j)
	if !ok {
		return nil, false, nil
	}
	c := &execCtx{st: st, blk: blk, sp: blk.supply}
	s, err := c.redundantSettlement(blk.params, *j, digest)
	if errors.Is(err, ErrOverflow) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	events, err := c.settleRedundant(blk.params, j, digest, s, true)
	if err != nil {
		return nil, false, err
	}
	blk.supply = c.sp
	return events, true, nil
}

// RedundantSettlementFor divides a redundant job's escrow between the replicas that
// revealed digest. They are billed the median of the GPU times they reported (the middle
// one of three, the lower of two: no one replica can raise the bill by overstating its
// time, nor, among three, lower it by understating), at least MinBilledMillis and at most
// the timeout, each at its own price; each one's cost (rounded up) is capped at the budget's
// 1/RedundantReplicas (rounded down) and divided into burn, fee and pay as SettlementFor
// divides a node's. The totals are the shares' sums, and the consumer gets back what their
// costs did not use. Rewards are not included: they depend on the pool when the job
// settles.
func RedundantSettlementFor(p Params, j Job, digest string) (Settlement, error) {
	var agreed []Replica
	for _, r := range j.Replicas {
		if r.Revealed() && r.ResultDigest == digest {
			agreed = append(agreed, r)
		}
	}
	if len(agreed) == 0 {
		return Settlement{}, fmt.Errorf("%w: no replica of job %s revealed %s", ErrInvalidMsg, j.ID, digest)
	}
	s := Settlement{BilledMillis: billedMillis(p, j, medianMillis(agreed))}
	for _, r := range agreed {
		sh, err := chargeFor(p, r.PricePerHour, s.BilledMillis, j.Budget/RedundantReplicas)
		if err != nil {
			return Settlement{}, err
		}
		sh.Node = r.Node
		s.Shares = append(s.Shares, sh)
		// Each cost is at most a third of the budget: none of these sums can overflow.
		s.Cost, s.Paid, s.Burned, s.Fee = s.Cost+sh.Cost, s.Paid+sh.Paid, s.Burned+sh.Burned, s.Fee+sh.Fee
	}
	s.Refunded = j.Budget - s.Cost
	return s, nil
}

// medianMillis is the median of the GPU times rs reported, the lower middle one of an even
// number.
func medianMillis(rs []Replica) uint64 {
	millis := make([]uint64, len(rs))
	for i, r := range rs {
		millis[i] = r.GPUMillis
	}
	slices.Sort(millis)
	return millis[(len(millis)-1)/2]
}

// redundantSettlement is RedundantSettlementFor with the network reward for the billed
// time, split equally between the paid replicas (what does not divide stays in the pool).
// It only computes, so an error leaves everything as it was.
func (c *execCtx) redundantSettlement(p Params, j Job, digest string) (Settlement, error) {
	s, err := RedundantSettlementFor(p, j, digest)
	if err != nil {
		return Settlement{}, err
	}
	reward, err := c.networkReward(p, s.BilledMillis)
	if err != nil {
		return Settlement{}, err
	}
	each := reward / uint64(len(s.Shares))
	for i := range s.Shares {
		s.Shares[i].Reward = each
	}
	s.Reward = each * uint64(len(s.Shares))
	return s, nil
}

// settleRedundant settles j on digest, paying out s (redundantSettlement): each replica
// that revealed digest gains a verified job; one that revealed another digest is outvoted,
// and one that sealed and never revealed (possible only at the deadline, which atDeadline
// says this is) withheld its reveal: both gain a failed job and are not paid. Both ways of
// deciding a redundant job settle it here, so they pay and report alike.
func (c *execCtx) settleRedundant(p Params, j *Job, digest string, s Settlement, atDeadline bool) ([]Event, error) {
	j.ResultDigest, j.GPUMillis, j.ResultHeight = digest, s.BilledMillis, c.blk.height
	if err := c.payOut(p, j, &s, s.Shares); err != nil {
		return nil, err
	}
	paid := make([]string, len(s.Shares))
	for i, sh := range s.Shares {
		paid[i] = string(sh.Node)
	}
	settled := settledEvent(j, strings.Join(paid, ","))
	if atDeadline {
		settled.Attrs = append(settled.Attrs, Attr{"at", "deadline"})
	}
	events := []Event{settled}
	for _, sh := range s.Shares {
		if err := c.bumpNode(sh.Node, true); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "settlement_share", Attrs: []Attr{
			{"job_id", j.ID}, {"node", string(sh.Node)}, {"cost", u(sh.Cost)}, {"paid", u(sh.Paid)},
			{"burned", u(sh.Burned)}, {"fee", u(sh.Fee)}, {"reward", u(sh.Reward)},
		}})
	}
	for _, r := range j.Replicas {
		var e Event
		switch {
		case r.ResultDigest == digest:
			continue
		case r.Revealed():
			e = Event{Type: "replica_outvoted", Attrs: []Attr{{"job_id", j.ID}, {"node", string(r.Node)}, {"digest", r.ResultDigest}, {"agreed", digest}}}
		default:
			e = Event{Type: "replica_withheld", Attrs: []Attr{{"job_id", j.ID}, {"node", string(r.Node)}, {"agreed", digest}}}
		}
		if err := c.bumpNode(r.Node, false); err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// replicaIndex is the index of node a among j's replicas, or -1.
func replicaIndex(j Job, a keys.Address) int {
	for i, r := range j.Replicas {
		if r.Node == a {
			return i
		}
	}
	return -1
}

// agreeing counts j's replicas that revealed digest.
func agreeing(j Job, digest string) int {
	return countReplicas(j, func(r Replica) bool { return r.Revealed() && r.ResultDigest == digest })
}

// quorumDigest is the digest RedundantQuorum or more of j's replicas revealed, if any.
func quorumDigest(j Job) (string, bool) {
	for _, r := range j.Replicas {
		if r.Revealed() && agreeing(j, r.ResultDigest) >= RedundantQuorum {
			return r.ResultDigest, true
		}
	}
	return "", false
}

// countReplicas counts j's replicas for which is holds.
func countReplicas(j Job, is func(Replica) bool) int {
	n := 0
	for _, r := range j.Replicas {
		if is(r) {
			n++
		}
	}
	return n
}

// revealsBegun reports whether a replica of j has revealed its result, which closes
// sealing and fixes the replicas.
func revealsBegun(j Job) bool { return countReplicas(j, Replica.Revealed) > 0 }

// firstCommitted is the first replica of j that has sealed its result, if any.
func firstCommitted(j Job) (Replica, bool) {
	for _, r := range j.Replicas {
		if r.Committed() {
			return r, true
		}
	}
	return Replica{}, false
}
