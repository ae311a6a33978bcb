package ledger

import (
	"fmt"
	"strings"

	"github.com/omnisync/omnisync/internal/keys"
)

// Redundant verification: the router places a job on RedundantReplicas distinct nodes, each
// commits its own result, and the ledger pays the first RedundantQuorum that commit the
// same digest. No validator checks the work, so nothing here slashes: disagreement alone is
// not evidence of who was wrong, and a slash would need more (a validator re-executing the
// job), which is future work. What a wrong node loses here is its pay and its reliability.

// assignReplica adds node n to a redundant job as a replica, or, with m.Replaces, puts it
// in the place of a replica that has not committed. Replicas must be distinct nodes: each
// node is its own staked account, and that is all "distinct operators" can mean on chain
// (the ledger cannot see who runs a node; keeping an operator's nodes apart is placement's
// job, off chain).
func (c *execCtx) assignReplica(j Job, n Node, m *MsgAssignJob) ([]Event, error) {
	slot := len(j.Replicas)
	if m.Replaces != "" {
		i := replicaIndex(j, m.Replaces)
		if i < 0 {
			return nil, fmt.Errorf("%w: %s is not a replica of job %s", ErrNotFound, m.Replaces, j.ID)
		}
		if j.Replicas[i].Committed() {
			return nil, fmt.Errorf("%w: replica %s of job %s has committed its result and cannot be replaced", ErrBadState, m.Replaces, j.ID)
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

// commitReplica records a replica's result on an assigned redundant job, then settles the
// job if RedundantQuorum replicas agree, fails it as inconclusive if all RedundantReplicas
// have committed and no two agree, and otherwise waits for more.
func (c *execCtx) commitReplica(p Params, j Job, m *MsgCommitResult) ([]Event, error) {
	i := replicaIndex(j, c.signer)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s is not a replica of job %s", ErrUnauthorized, c.signer, j.ID)
	}
	r := &j.Replicas[i]
	if r.Committed() {
		return nil, fmt.Errorf("%w: replica %s already committed a result for job %s", ErrDuplicate, c.signer, j.ID)
	}
	r.ResultDigest, r.GPUMillis, r.ResultHeight = m.ResultDigest, m.GPUMillis, c.blk.height
	events := []Event{{Type: "result_committed", Attrs: []Attr{{"job_id", j.ID}, {"node", string(c.signer)}, {"digest", m.ResultDigest}}}}
	// Before this commit no digest had a quorum (the job would have settled), so only this
	// one can have reached it.
	if agreeing(j, m.ResultDigest) >= RedundantQuorum {
		ev, err := c.settleRedundant(p, &j, m.ResultDigest)
		if err != nil {
			return nil, err
		}
		return append(events, ev...), nil
	}
	if committedCount(j) == RedundantReplicas {
		// No two agree. Disagreement alone does not say who was wrong, so no node loses
		// stake or reliability, and the consumer pays for nothing it can trust.
		if err := refundEscrow(c.st, &c.sp, &j, JobFailed, c.blk.height); err != nil {
			return nil, err
		}
		return append(events, Event{Type: "job_failed", Attrs: []Attr{
			{"job_id", j.ID}, {"refunded", u(j.Budget)}, {"reason", "inconclusive: no two replicas agree"},
		}}), nil
	}
	return events, c.st.put(jobKey(j.ID), j)
}

// RedundantSettlementFor divides a redundant job's escrow between the replicas that
// committed digest. They are billed the least GPU time any of them reported (so no one node
// inflates the bill), at least MinBilledMillis and at most the timeout, each at its own
// price; each one's cost (rounded up) is capped at the budget's 1/RedundantReplicas
// (rounded down) and divided into burn, fee and pay as SettlementFor divides a node's.
// The totals are the shares' sums, and the consumer gets back what their costs did not
// use. Rewards are not included: they depend on the pool when the job settles.
func RedundantSettlementFor(p Params, j Job, digest string) (Settlement, error) {
	var agreed []Replica
	for _, r := range j.Replicas {
		if r.Committed() && r.ResultDigest == digest {
			agreed = append(agreed, r)
		}
	}
	if len(agreed) == 0 {
		return Settlement{}, fmt.Errorf("%w: no replica of job %s committed %s", ErrInvalidMsg, j.ID, digest)
	}
	used := agreed[0].GPUMillis
	for _, r := range agreed[1:] {
		used = min(used, r.GPUMillis)
	}
	s := Settlement{BilledMillis: billedMillis(p, j, used)}
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

// settleRedundant pays the replicas that agree on digest as RedundantSettlementFor says,
// plus the network reward for the billed time, split equally between them (what does not
// divide stays in the pool). Each agreeing node gains a verified job; a replica that
// committed something else gains a failed one and is not paid; one that had not committed
// is untouched.
func (c *execCtx) settleRedundant(p Params, j *Job, digest string) ([]Event, error) {
	s, err := RedundantSettlementFor(p, *j, digest)
	if err != nil {
		return nil, err
	}
	reward, err := c.networkReward(p, s.BilledMillis)
	if err != nil {
		return nil, err
	}
	each := reward / uint64(len(s.Shares))
	for i := range s.Shares {
		s.Shares[i].Reward = each
	}
	s.Reward = each * uint64(len(s.Shares))
	j.ResultDigest, j.GPUMillis, j.ResultHeight = digest, s.BilledMillis, c.blk.height
	if err := c.payOut(p, j, &s, s.Shares); err != nil {
		return nil, err
	}
	paid := make([]string, len(s.Shares))
	for i, sh := range s.Shares {
		paid[i] = string(sh.Node)
	}
	events := []Event{settledEvent(j, strings.Join(paid, ","))}
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
		if !r.Committed() || r.ResultDigest == digest {
			continue
		}
		if err := c.bumpNode(r.Node, false); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "replica_outvoted", Attrs: []Attr{
			{"job_id", j.ID}, {"node", string(r.Node)}, {"digest", r.ResultDigest}, {"agreed", digest},
		}})
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

// agreeing counts j's replicas that committed digest.
func agreeing(j Job, digest string) int {
	n := 0
	for _, r := range j.Replicas {
		if r.Committed() && r.ResultDigest == digest {
			n++
		}
	}
	return n
}

// committedCount counts j's replicas that have committed a result.
func committedCount(j Job) int {
	n := 0
	for _, r := range j.Replicas {
		if r.Committed() {
			n++
		}
	}
	return n
}

// firstCommitted is the first replica of j that has committed a result, if any.
func firstCommitted(j Job) (Replica, bool) {
	for _, r := range j.Replicas {
		if r.Committed() {
			return r, true
		}
	}
	return Replica{}, false
}
