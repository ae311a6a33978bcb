package ledger

import (
	"fmt"
	"strconv"

	"github.com/omnisync/omnisync/internal/keys"
)

// execCtx runs one transaction against a state view. Every handler either returns an error
// (and the caller discards the view) or leaves the view fully consistent.
type execCtx struct {
	st      state
	chainID string
	block   Block
	txHash  [32]byte
	signer  keys.Address
	seq     uint64
}

func (c *execCtx) run(tx Tx) ([]Event, error) {
	if tx.Body.ChainID != c.chainID {
		return nil, fmt.Errorf("%w: tx is for %q, this chain is %q", ErrWrongChain, tx.Body.ChainID, c.chainID)
	}
	acc, err := c.st.account(tx.Signer)
	if err != nil {
		return nil, err
	}
	if tx.Body.Seq != acc.Seq {
		return nil, fmt.Errorf("%w: account %s expects sequence %d, tx has %d", ErrWrongSequence, tx.Signer, acc.Seq, tx.Body.Seq)
	}
	if err := tx.Body.ValidateBasic(); err != nil {
		return nil, err
	}
	c.signer, c.seq = tx.Signer, tx.Body.Seq
	params, err := c.st.params()
	if err != nil {
		return nil, err
	}
	sp, err := c.st.supply()
	if err != nil {
		return nil, err
	}
	var events []Event
	m := tx.Body.Msg
	switch {
	case m.Transfer != nil:
		events, err = c.transfer(params, &sp, m.Transfer)
	case m.RegisterNode != nil:
		events, err = c.registerNode(params, &sp, m.RegisterNode)
	case m.CreateJob != nil:
		events, err = c.createJob(&sp, m.CreateJob)
	case m.AssignJob != nil:
		events, err = c.assignJob(params, m.AssignJob)
	case m.CommitResult != nil:
		events, err = c.commitResult(m.CommitResult)
	case m.Attest != nil:
		events, err = c.attest(params, &sp, m.Attest)
	case m.CancelJob != nil:
		events, err = c.cancelJob(&sp, m.CancelJob)
	}
	if err != nil {
		return nil, err
	}
	if err := c.st.put(keySupply, sp); err != nil {
		return nil, err
	}
	// Re-read: handlers may have credited or debited the signer.
	if acc, err = c.st.account(tx.Signer); err != nil {
		return nil, err
	}
	acc.Seq++
	return events, c.st.setAccount(acc)
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func (c *execCtx) transfer(p Params, sp *Supply, m *MsgTransfer) ([]Event, error) {
	burn := burnOf(m.Amount, p.BurnBP)
	if err := c.st.debit(sp, c.signer, m.Amount); err != nil {
		return nil, err
	}
	if err := c.st.credit(sp, m.To, m.Amount-burn); err != nil {
		return nil, err
	}
	var err error
	if sp.Burned, err = add(sp.Burned, burn); err != nil {
		return nil, err
	}
	return []Event{{Type: "transfer", Attrs: []Attr{
		{"from", string(c.signer)}, {"to", string(m.To)}, {"amount", u(m.Amount)}, {"burned", u(burn)},
	}}}, nil
}

func (c *execCtx) registerNode(p Params, sp *Supply, m *MsgRegisterNode) ([]Event, error) {
	n, exists, err := c.st.node(c.signer)
	if err != nil {
		return nil, err
	}
	total, err := add(n.Stake, m.Stake)
	if err != nil {
		return nil, err
	}
	if total < p.MinNodeStake {
		return nil, fmt.Errorf("%w: a node needs at least %s OMNI staked, this would be %s OMNI", ErrStakeTooLow, FormatOMNI(p.MinNodeStake), FormatOMNI(total))
	}
	if err := c.st.debit(sp, c.signer, m.Stake); err != nil {
		return nil, err
	}
	if sp.Staked, err = add(sp.Staked, m.Stake); err != nil {
		return nil, err
	}
	if !exists {
		n = Node{Address: c.signer, Status: NodeActive, RegisteredHeight: c.block.Height}
	}
	n.Stake, n.PricePerHour, n.Hardware = total, m.PricePerHour, m.Hardware
	if err := c.st.put(nodeKey(c.signer), n); err != nil {
		return nil, err
	}
	return []Event{{Type: "node_registered", Attrs: []Attr{{"node", string(c.signer)}, {"stake", u(total)}}}}, nil
}

func (c *execCtx) createJob(sp *Supply, m *MsgCreateJob) ([]Event, error) {
	id := JobID(c.signer, c.seq)
	if _, err := c.st.job(id); err == nil {
		return nil, fmt.Errorf("%w: job %s exists", ErrDuplicate, id)
	}
	if err := c.st.debit(sp, c.signer, m.Budget); err != nil {
		return nil, err
	}
	var err error
	if sp.Escrowed, err = add(sp.Escrowed, m.Budget); err != nil {
		return nil, err
	}
	j := Job{
		ID: id, Consumer: c.signer, SpecHash: m.SpecHash, Budget: m.Budget,
		MaxPricePerHour: m.MaxPricePerHour, Verification: m.Verification,
		TimeoutSeconds: m.TimeoutSeconds, Status: JobCreated, CreatedHeight: c.block.Height,
		DeadlineUnix: c.block.Time.Unix() + int64(m.TimeoutSeconds),
	}
	if err := c.st.put(jobKey(id), j); err != nil {
		return nil, err
	}
	if err := c.st.kv.Set(jobExpKey(j.DeadlineUnix, id), []byte{1}); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_created", Attrs: []Attr{{"job_id", id}, {"consumer", string(c.signer)}, {"escrowed", u(m.Budget)}}}}, nil
}

func (c *execCtx) assignJob(p Params, m *MsgAssignJob) ([]Event, error) {
	if !contains(p.Routers, c.signer) {
		return nil, fmt.Errorf("%w: %s is not a router", ErrUnauthorized, c.signer)
	}
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Status != JobCreated && j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s, cannot be assigned", ErrBadState, j.ID, j.Status)
	}
	n, ok, err := c.st.node(m.Node)
	if err != nil {
		return nil, err
	}
	if !ok || n.Status != NodeActive {
		return nil, fmt.Errorf("%w: %s is not an active node", ErrNotFound, m.Node)
	}
	if n.Stake < p.MinNodeStake {
		return nil, fmt.Errorf("%w: node %s has %s OMNI staked", ErrStakeTooLow, m.Node, FormatOMNI(n.Stake))
	}
	if n.PricePerHour > j.MaxPricePerHour {
		return nil, fmt.Errorf("%w: node %s bids %d uomni/h above the job's ceiling %d", ErrInvalidMsg, m.Node, n.PricePerHour, j.MaxPricePerHour)
	}
	j.Status, j.Node, j.PricePerHour, j.ScoreBP, j.AssignedHeight = JobAssigned, m.Node, n.PricePerHour, m.ScoreBP, c.block.Height
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_assigned", Attrs: []Attr{{"job_id", j.ID}, {"node", string(m.Node)}}}}, nil
}

func (c *execCtx) commitResult(m *MsgCommitResult) ([]Event, error) {
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s, not awaiting a result", ErrBadState, j.ID, j.Status)
	}
	if j.Node != c.signer {
		return nil, fmt.Errorf("%w: job %s is assigned to %s, not %s", ErrUnauthorized, j.ID, j.Node, c.signer)
	}
	j.Status, j.ResultDigest, j.GPUMillis, j.ResultHeight = JobComputed, m.ResultDigest, m.GPUMillis, c.block.Height
	// The verification seed comes from this block's hash, which the node could not know
	// when it fixed its result.
	j.Seed = jobSeed(c.block.Hash, j.ID)
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	return []Event{{Type: "result_committed", Attrs: []Attr{{"job_id", j.ID}, {"digest", m.ResultDigest}}}}, nil
}

func (c *execCtx) attest(p Params, sp *Supply, m *MsgAttest) ([]Event, error) {
	vals, err := c.st.validators()
	if err != nil {
		return nil, err
	}
	isVal := false
	for _, v := range vals {
		isVal = isVal || v.Address == c.signer
	}
	if !isVal {
		return nil, fmt.Errorf("%w: %s is not a validator", ErrUnauthorized, c.signer)
	}
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Status != JobComputed {
		return nil, fmt.Errorf("%w: job %s is %s, not awaiting verification", ErrBadState, j.ID, j.Status)
	}
	if m.ResultDigest != j.ResultDigest {
		return nil, fmt.Errorf("%w: attested digest %s is not the committed %s", ErrInvalidMsg, m.ResultDigest, j.ResultDigest)
	}
	passes, fails := 0, 0
	for _, a := range j.Attestations {
		if a.Validator == c.signer {
			return nil, fmt.Errorf("%w: %s already attested job %s", ErrDuplicate, c.signer, j.ID)
		}
		if a.Pass {
			passes++
		} else {
			fails++
		}
	}
	j.Attestations = append(j.Attestations, Attestation{Validator: c.signer, Pass: m.Pass, Reason: m.Reason, Height: c.block.Height})
	if m.Pass {
		passes++
	} else {
		fails++
	}
	events := []Event{{Type: "attested", Attrs: []Attr{{"job_id", j.ID}, {"validator", string(c.signer)}, {"pass", strconv.FormatBool(m.Pass)}}}}
	n := len(vals)
	switch {
	case passes*3 > 2*n: // more than two thirds agree the result is right
		ev, err := c.settle(p, sp, &j)
		if err != nil {
			return nil, err
		}
		return append(events, ev), nil
	case (n-fails)*3 <= 2*n: // two thirds can no longer agree it is right
		if err := refundEscrow(c.st, sp, &j, JobFailed, c.block.Height); err != nil {
			return nil, err
		}
		if err := c.bumpNode(j.Node, false); err != nil {
			return nil, err
		}
		return append(events, Event{Type: "job_failed", Attrs: []Attr{{"job_id", j.ID}, {"refunded", u(j.Budget)}}}), nil
	}
	return events, c.st.put(jobKey(j.ID), j)
}

// SettlementFor divides a verified job's escrow: the node's price times the GPU time it
// used (at least MinBilledMillis, at most the timeout), capped at the budget; of that cost
// BurnBP is burned (rounded up) and FeeBP taken as protocol fee, the node gets the rest, and
// the consumer gets back whatever the cost did not use.
func SettlementFor(p Params, j Job) (Settlement, error) {
	billed := max(j.GPUMillis, p.MinBilledMillis)
	billed = min(billed, j.TimeoutSeconds*1000)
	cost, err := mulDiv(j.PricePerHour, billed, 3_600_000, true)
	if err != nil {
		return Settlement{}, err
	}
	cost = min(cost, j.Budget)
	burn := burnOf(cost, p.BurnBP)
	fee := shareOf(cost, p.FeeBP)
	if burn+fee > cost { // only possible for a cost of a few uomni with rounding up
		fee = cost - burn
	}
	return Settlement{
		BilledMillis: billed, Cost: cost, Paid: cost - burn - fee, Burned: burn, Fee: fee,
		Refunded: j.Budget - cost,
	}, nil
}

func (c *execCtx) settle(p Params, sp *Supply, j *Job) (Event, error) {
	s, err := SettlementFor(p, *j)
	if err != nil {
		return Event{}, err
	}
	s.Height = c.block.Height
	if sp.Escrowed, err = sub(sp.Escrowed, j.Budget); err != nil {
		return Event{}, fmt.Errorf("escrow underflow: %w", err)
	}
	if err := c.st.credit(sp, j.Node, s.Paid); err != nil {
		return Event{}, err
	}
	if err := c.st.credit(sp, j.Consumer, s.Refunded); err != nil {
		return Event{}, err
	}
	if sp.Burned, err = add(sp.Burned, s.Burned); err != nil {
		return Event{}, err
	}
	if sp.Pools == nil {
		sp.Pools = map[string]uint64{}
	}
	if sp.Pools[PoolFees], err = add(sp.Pools[PoolFees], s.Fee); err != nil {
		return Event{}, err
	}
	j.Status, j.Settlement = JobSettled, &s
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return Event{}, err
	}
	if err := c.st.kv.Delete(jobExpKey(j.DeadlineUnix, j.ID)); err != nil {
		return Event{}, err
	}
	if err := c.bumpNode(j.Node, true); err != nil {
		return Event{}, err
	}
	return Event{Type: "job_settled", Attrs: []Attr{
		{"job_id", j.ID}, {"node", string(j.Node)}, {"paid", u(s.Paid)}, {"burned", u(s.Burned)},
		{"fee", u(s.Fee)}, {"refunded", u(s.Refunded)},
	}}, nil
}

func (c *execCtx) bumpNode(addr keys.Address, verified bool) error {
	n, ok, err := c.st.node(addr)
	if err != nil || !ok {
		return err
	}
	if verified {
		n.JobsVerified++
	} else {
		n.JobsFailed++
	}
	return c.st.put(nodeKey(addr), n)
}

func (c *execCtx) cancelJob(sp *Supply, m *MsgCancelJob) ([]Event, error) {
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Consumer != c.signer {
		return nil, fmt.Errorf("%w: only the consumer may cancel job %s", ErrUnauthorized, j.ID)
	}
	if j.Status != JobCreated && j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s and can no longer be cancelled", ErrBadState, j.ID, j.Status)
	}
	if err := refundEscrow(c.st, sp, &j, JobCancelled, c.block.Height); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_cancelled", Attrs: []Attr{{"job_id", j.ID}, {"refunded", u(j.Budget)}}}}, nil
}

func contains(list []keys.Address, a keys.Address) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
