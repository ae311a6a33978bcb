package ledger

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"

	"github.com/omnisync/omnisync/internal/keys"
)

// blockCtx is what every tx in a block shares: its header facts, the parameters and the
// running supply (loaded once, written once at the end of the block) and the validators
// whose voting power changed.
type blockCtx struct {
	height     int64
	now        int64 // block time, unix seconds
	hash       []byte
	params     Params
	supply     Supply
	valChanged map[keys.Address][]byte // address -> consensus key
	// sparePools is the Pools map the last transaction to change a pool replaced: the
	// next one copies the pools into it instead of allocating (most settlements do).
	sparePools map[string]uint64
}

func (b *blockCtx) markValidator(v Validator) {
	b.valChanged[v.Address] = v.PubKey
}

// execCtx runs one transaction against a state view over the block's state. Every
// handler either returns an error (and the caller discards the view and sp) or leaves
// both fully consistent.
type execCtx struct {
	st         state
	blk        *blockCtx
	sp         Supply // this tx's working copy of the block supply
	signer     keys.Address
	seq        uint64
	valChanged []Validator
	// wellFormed says the message already passed ValidateBasic (see App.decode).
	wellFormed bool
}

func (c *execCtx) run(tx Tx, chainID string) ([]Event, error) {
	if tx.Body.ChainID != chainID {
		return nil, fmt.Errorf("%w: tx is for %q, this chain is %q", ErrWrongChain, tx.Body.ChainID, chainID)
	}
	acc, err := c.st.account(tx.Signer)
	if err != nil {
		return nil, err
	}
	if tx.Body.Seq != acc.Seq {
		return nil, fmt.Errorf("%w: account %s expects sequence %d, tx has %d", ErrWrongSequence, tx.Signer, acc.Seq, tx.Body.Seq)
	}
	if !c.wellFormed {
		if err := tx.Body.ValidateBasic(); err != nil {
			return nil, err
		}
	}
	c.signer, c.seq = tx.Signer, tx.Body.Seq
	// The sequence moves on before the message runs: a handler that pays or charges the
	// signer reads the account back, and a failed tx's journal undoes the write.
	acc.Seq++
	if err := c.st.setAccount(acc); err != nil {
		return nil, err
	}
	c.borrowSupply()
	return c.apply(c.blk.params, tx.Body.Msg)
}

// apply runs one message for the signer: a single one, or each item of a batch (batch.go).
func (c *execCtx) apply(p Params, m Msg) (events []Event, err error) {
	switch {
	case m.AssignJobs != nil || m.AttestJobs != nil || m.CommitResults != nil:
		events, err = c.batch(p, m)
	case m.Transfer != nil:
		events, err = c.transfer(p, m.Transfer)
	case m.RegisterNode != nil:
		events, err = c.registerNode(p, m.RegisterNode)
	case m.CreateJob != nil:
		events, err = c.createJob(m.CreateJob)
	case m.AssignJob != nil:
		events, err = c.assignJob(p, m.AssignJob)
	case m.CommitResult != nil:
		events, err = c.commitResult(p, m.CommitResult)
	case m.RevealResult != nil:
		events, err = c.revealResult(p, m.RevealResult)
	case m.RevealChallenge != nil:
		events, err = c.revealChallenge(p, m.RevealChallenge)
	case m.Attest != nil:
		events, err = c.attest(p, m.Attest)
	case m.CancelJob != nil:
		events, err = c.cancelJob(p, m.CancelJob)
	case m.Stake != nil:
		events, err = c.stake(p, m.Stake)
	case m.Unstake != nil:
		events, err = c.unstake(p, m.Unstake)
	case m.Propose != nil:
		events, err = c.propose(p, m.Propose)
	case m.Vote != nil:
		events, err = c.vote(m.Vote)
	case m.CapacityReport != nil:
		events, err = c.capacityReport(p, m.CapacityReport)
	case m.ReportAttestation != nil:
		events, err = c.reportAttestation(p, m.ReportAttestation)
	}
	if err != nil {
		return nil, err
	}
	return events, nil
}

// borrowSupply starts the tx's working copy of the block supply, sharing its pools.
func (c *execCtx) borrowSupply() {
	c.sp = c.blk.supply
	c.sp.poolsShared, c.sp.spare = true, c.blk.sparePools
}

// commit hands the tx's supply and validator changes to the block.
func (c *execCtx) commit() {
	if !c.sp.poolsShared { // the tx copied the pools: the block's old map is free
		c.blk.sparePools = c.blk.supply.Pools
	}
	c.sp.spare = nil
	c.blk.supply = c.sp
	for _, v := range c.valChanged {
		c.blk.markValidator(v)
	}
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func (c *execCtx) transfer(p Params, m *MsgTransfer) ([]Event, error) {
	burn := burnOf(m.Amount, p.BurnBP)
	if err := c.st.debit(&c.sp, c.signer, m.Amount, c.blk.now, false); err != nil {
		return nil, err
	}
	if err := c.st.credit(&c.sp, m.To, m.Amount-burn); err != nil {
		return nil, err
	}
	var err error
	if c.sp.Burned, err = add(c.sp.Burned, burn); err != nil {
		return nil, err
	}
	return []Event{{Type: "transfer", Attrs: []Attr{
		{"from", string(c.signer)}, {"to", string(m.To)}, {"amount", u(m.Amount)}, {"burned", u(burn)},
	}}}, nil
}

// bond moves amt from the signer's balance (locked vesting tokens included) into stake.
func (c *execCtx) bond(amt uint64) error {
	if err := c.st.debit(&c.sp, c.signer, amt, c.blk.now, true); err != nil {
		return err
	}
	var err error
	c.sp.Staked, err = add(c.sp.Staked, amt)
	return err
}

func (c *execCtx) registerNode(p Params, m *MsgRegisterNode) ([]Event, error) {
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
	if err := c.bond(m.Stake); err != nil {
		return nil, err
	}
	if !exists {
		n = Node{Address: c.signer, RegisteredHeight: c.blk.height}
	}
	n.Stake, n.PricePerHour, n.Hardware, n.Status = total, m.PricePerHour, m.Hardware, NodeActive
	if err := c.st.put(nodeKey(c.signer), n); err != nil {
		return nil, err
	}
	return []Event{{Type: "node_registered", Attrs: []Attr{{"node", string(c.signer)}, {"stake", u(total)}}}}, nil
}

func (c *execCtx) stake(p Params, m *MsgStake) ([]Event, error) {
	if m.Role == RoleNode {
		n, ok, err := c.st.node(c.signer)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s is not a registered node; register it first", ErrNotFound, c.signer)
		}
		if n.Stake, err = add(n.Stake, m.Amount); err != nil {
			return nil, err
		}
		if err := c.bond(m.Amount); err != nil {
			return nil, err
		}
		if n.Stake >= p.MinNodeStake {
			n.Status = NodeActive
		}
		return []Event{{Type: "staked", Attrs: []Attr{{"role", RoleNode}, {"account", string(c.signer)}, {"stake", u(n.Stake)}}}}, c.st.put(nodeKey(c.signer), n)
	}
	v, ok, err := c.st.validator(c.signer)
	if err != nil {
		return nil, err
	}
	if !ok {
		if len(m.PubKey) == 0 {
			return nil, fmt.Errorf("%w: a new validator must give its consensus pub_key", ErrInvalidMsg)
		}
		if owner, err := c.st.kv.Get(valConsKey(consAddress(m.PubKey))); err != nil || owner != nil {
			return nil, fmt.Errorf("%w: consensus key already belongs to %s", ErrDuplicate, owner)
		}
		v = Validator{Address: c.signer, PubKey: m.PubKey}
		if err := c.st.kv.Set(valConsKey(consAddress(m.PubKey)), []byte(c.signer)); err != nil {
			return nil, err
		}
	}
	if v.Stake, err = add(v.Stake, m.Amount); err != nil {
		return nil, err
	}
	if v.Stake < p.MinValidatorStake {
		return nil, fmt.Errorf("%w: a validator needs at least %s OMNI staked, this would be %s OMNI", ErrStakeTooLow, FormatOMNI(p.MinValidatorStake), FormatOMNI(v.Stake))
	}
	if err := c.bond(m.Amount); err != nil {
		return nil, err
	}
	c.valChanged = append(c.valChanged, v)
	return []Event{{Type: "staked", Attrs: []Attr{{"role", RoleValidator}, {"account", string(c.signer)}, {"stake", u(v.Stake)}}}}, c.st.put(valKey(c.signer), v)
}

func (c *execCtx) unstake(p Params, m *MsgUnstake) ([]Event, error) {
	var current, minimum uint64
	n, isNode, err := c.st.node(c.signer)
	if err != nil {
		return nil, err
	}
	v, isVal, err := c.st.validator(c.signer)
	if err != nil {
		return nil, err
	}
	if m.Role == RoleNode {
		if !isNode {
			return nil, fmt.Errorf("%w: %s has no node stake", ErrNotFound, c.signer)
		}
		current, minimum = n.Stake, p.MinNodeStake
	} else {
		if !isVal {
			return nil, fmt.Errorf("%w: %s has no validator stake", ErrNotFound, c.signer)
		}
		current, minimum = v.Stake, p.MinValidatorStake
	}
	if m.Amount > current {
		return nil, fmt.Errorf("%w: %s has %s OMNI staked as %s, cannot unstake %s", ErrInsufficientFunds, c.signer, FormatOMNI(current), m.Role, FormatOMNI(m.Amount))
	}
	left := current - m.Amount
	if left != 0 && left < minimum {
		return nil, fmt.Errorf("%w: %s OMNI would remain, below the %s minimum of %s OMNI; unstake all or less", ErrStakeTooLow, FormatOMNI(left), m.Role, FormatOMNI(minimum))
	}
	if m.Role == RoleNode {
		n.Stake = left
		if left == 0 {
			n.Status = NodeInactive
		}
		err = c.st.put(nodeKey(c.signer), n)
	} else {
		if left == 0 {
			if err := c.ensureAnotherValidator(c.signer); err != nil {
				return nil, err
			}
		}
		v.Stake = left
		c.valChanged = append(c.valChanged, v)
		if left == 0 {
			err = c.st.kv.Delete(valKey(c.signer))
		} else {
			err = c.st.put(valKey(c.signer), v)
		}
	}
	if err != nil {
		return nil, err
	}
	ub, err := c.startUnbonding(m.Role, m.Amount)
	if err != nil {
		return nil, err
	}
	return []Event{{Type: "unstaked", Attrs: []Attr{{"role", m.Role}, {"account", string(c.signer)}, {"amount", u(m.Amount)}, {"mature_unix", strconv.FormatInt(ub.MatureUnix, 10)}}}}, nil
}

// eligibleSigner refuses a signer that is not a validator eligible to check
// (Validator.Eligible): not a validator, jailed, or slashed below the minimum stake.
func (c *execCtx) eligibleSigner(p Params) error {
	v, ok, err := c.st.validator(c.signer)
	if err != nil {
		return err
	}
	if !ok || v.Power() == 0 {
		return fmt.Errorf("%w: %s is not an active validator", ErrUnauthorized, c.signer)
	}
	if !v.Eligible(p) {
		return fmt.Errorf("%w: validator %s holds %s OMNI, below the %s OMNI minimum: it checks nothing until it stakes back up", ErrStakeTooLow, c.signer, FormatOMNI(v.Stake), FormatOMNI(p.MinValidatorStake))
	}
	return nil
}

// ensureAnotherValidator refuses to let the last validator with power leave: the chain
// would stop.
func (c *execCtx) ensureAnotherValidator(leaving keys.Address) error {
	vals, err := c.st.validators()
	if err != nil {
		return err
	}
	for _, v := range vals {
		if v.Address != leaving && v.Power() > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is the last validator; the chain would halt", ErrBadState, leaving)
}

func (c *execCtx) startUnbonding(role string, amt uint64) (Unbonding, error) {
	ctr, err := c.st.counters()
	if err != nil {
		return Unbonding{}, err
	}
	ctr.Unbonding++
	ub := Unbonding{ID: ctr.Unbonding, Address: c.signer, Role: role, Amount: amt, MatureUnix: c.blk.now + int64(c.blk.params.UnbondingSeconds)}
	if c.sp.Staked, err = sub(c.sp.Staked, amt); err != nil {
		return Unbonding{}, fmt.Errorf("staked supply underflow: %w", err)
	}
	if c.sp.Unbonding, err = add(c.sp.Unbonding, amt); err != nil {
		return Unbonding{}, err
	}
	for _, w := range []struct {
		key []byte
		v   any
	}{{keyCounters, ctr}, {unbondKey(ub.MatureUnix, ub.ID), ub}, {unbondAcctKey(ub.Address, ub.ID), ub}} {
		if err := c.st.put(w.key, w.v); err != nil {
			return Unbonding{}, err
		}
	}
	return ub, nil
}

func (c *execCtx) createJob(m *MsgCreateJob) ([]Event, error) {
	id := JobID(c.signer, c.seq)
	if _, err := c.st.job(id); err == nil {
		return nil, fmt.Errorf("%w: job %s exists", ErrDuplicate, id)
	}
	if err := c.st.debit(&c.sp, c.signer, m.Budget, c.blk.now, false); err != nil {
		return nil, err
	}
	var err error
	if c.sp.Escrowed, err = add(c.sp.Escrowed, m.Budget); err != nil {
		return nil, err
	}
	j := Job{
		ID: id, Consumer: c.signer, SpecHash: m.SpecHash, Budget: m.Budget,
		MaxPricePerHour: m.MaxPricePerHour, Verification: m.Verification,
		TimeoutSeconds: m.TimeoutSeconds, Status: JobCreated, CreatedHeight: c.blk.height,
		DeadlineUnix: c.blk.now + int64(m.TimeoutSeconds),
	}
	if err := c.st.put(jobKey(id), j); err != nil {
		return nil, err
	}
	if err := c.st.kv.Set(jobExpKey(j.DeadlineUnix, id), []byte{1}); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_created", Attrs: []Attr{{"job_id", id}, {"consumer", string(c.signer)}, {"escrowed", u(m.Budget)}}}}, nil
}

// The job handlers below serve every verification level. A freivalds job runs on one node
// (assignJob, commitResult) and settles or fails on its committee's attestations (attest,
// settle, failJob). A challenge job does too, once its router has revealed the challenge
// rows (revealChallenge); an audit job only when the block that records its result draws
// it for audit, and otherwise settles in that block (levels.go). A redundant job runs on up to RedundantReplicas nodes, each of which
// commits a seal of its result (commitResult) and reveals it once all have sealed
// (revealResult); it settles on a digest RedundantQuorum of them reveal, once all have
// revealed or at its deadline, with no attestation (redundant.go).

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
	if m.Replaces != "" && j.Verification != VerifyRedundant {
		return nil, fmt.Errorf("%w: job %s is a %s job, which has no replicas to replace", ErrInvalidMsg, j.ID, j.Verification)
	}
	if m.Challenge != "" && j.Verification != VerifyChallenge {
		return nil, fmt.Errorf("%w: job %s is a %s job: only a challenge job's assignment carries a challenge", ErrInvalidMsg, j.ID, j.Verification)
	}
	if m.Challenge == "" && j.Verification == VerifyChallenge && j.Challenge == "" {
		return nil, fmt.Errorf("%w: job %s is a challenge job: its assignment must commit to its challenge rows", ErrInvalidMsg, j.ID)
	}
	n, err := c.placeable(p, j, m.Node)
	if err != nil {
		return nil, err
	}
	if j.Verification == VerifyRedundant {
		return c.assignReplica(j, n, m)
	}
	j.Status, j.Node, j.PricePerHour, j.ScoreBP, j.AssignedHeight = JobAssigned, m.Node, n.PricePerHour, m.ScoreBP, c.blk.height
	j.TFLOPSMilli = n.BillingTFLOPSMilli()
	if m.Challenge != "" {
		j.Challenge = m.Challenge
	}
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_assigned", Attrs: []Attr{{"job_id", j.ID}, {"node", string(m.Node)}}}}, nil
}

// placeable reads the node a router placed a job on and checks that it may take it: it is
// active, staked at least the minimum and bids no more than the job's ceiling.
func (c *execCtx) placeable(p Params, j Job, a keys.Address) (Node, error) {
	n, ok, err := c.st.node(a)
	if err != nil {
		return Node{}, err
	}
	if !ok || n.Status != NodeActive {
		return Node{}, fmt.Errorf("%w: %s is not an active node", ErrNotFound, a)
	}
	if n.Stake < p.MinNodeStake {
		return Node{}, fmt.Errorf("%w: node %s has %s OMNI staked", ErrStakeTooLow, a, FormatOMNI(n.Stake))
	}
	if n.PricePerHour > j.MaxPricePerHour {
		return Node{}, fmt.Errorf("%w: node %s bids %d uomni/h above the job's ceiling %d", ErrInvalidMsg, a, n.PricePerHour, j.MaxPricePerHour)
	}
	return n, nil
}

func (c *execCtx) commitResult(p Params, m *MsgCommitResult) ([]Event, error) {
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s, not awaiting a result", ErrBadState, j.ID, j.Status)
	}
	if j.Verification == VerifyRedundant {
		return c.commitReplica(j, m)
	}
	if m.Seal != "" {
		return nil, fmt.Errorf("%w: job %s is a %s job: commit its result_digest, not a seal", ErrInvalidMsg, j.ID, j.Verification)
	}
	if j.Node != c.signer {
		return nil, fmt.Errorf("%w: job %s is assigned to %s, not %s", ErrUnauthorized, j.ID, j.Node, c.signer)
	}
	j.Status, j.ResultDigest, j.GPUMillis, j.ResultHeight = JobComputed, m.ResultDigest, m.GPUMillis, c.blk.height
	// The verification seed and the committee come from this block's hash, which the
	// node could not know when it fixed its result.
	j.Seed = jobSeed(c.blk.hash, j.ID)
	events := []Event{{Type: "result_committed", Attrs: []Attr{{"job_id", j.ID}, {"digest", m.ResultDigest}}}}
	if levelFields(j.Verification) {
		j.Audited = auditDrawn(p, j.Seed)
		events[0].Attrs = append(events[0].Attrs, Attr{"audited", strconv.FormatBool(j.Audited)})
		if j.Verification == VerifyAudit && !j.Audited {
			ev, err := c.settle(p, &j)
			return append(events, ev...), err
		}
	}
	if j.Committee, err = c.drawCommittee(p, j.Seed); err != nil {
		return nil, err
	}
	return events, c.st.put(jobKey(j.ID), j)
}

// drawCommittee picks CommitteeSize eligible validators (all when 0 or too few: see
// Validator.Eligible), ordered by sha256(seed || address), so nobody chooses who checks
// whom.
func (c *execCtx) drawCommittee(p Params, seed string) ([]keys.Address, error) {
	vals, err := c.st.validators()
	if err != nil {
		return nil, err
	}
	type ranked struct {
		addr keys.Address
		rank [32]byte
	}
	var active []ranked
	for _, v := range vals {
		if v.Eligible(p) {
			active = append(active, ranked{v.Address, sha256.Sum256([]byte(seed + string(v.Address)))})
		}
	}
	sort.Slice(active, func(a, b int) bool { return string(active[a].rank[:]) < string(active[b].rank[:]) })
	size := len(active)
	if p.CommitteeSize > 0 && p.CommitteeSize < uint64(size) {
		size = int(p.CommitteeSize)
	}
	out := make([]keys.Address, size)
	for i := range out {
		out[i] = active[i].addr
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out, nil
}

func (c *execCtx) attest(p Params, m *MsgAttest) ([]Event, error) {
	if err := c.eligibleSigner(p); err != nil {
		return nil, err
	}
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	if j.Verification == VerifyRedundant {
		return nil, fmt.Errorf("%w: job %s is redundant: redundant jobs settle on agreement, not attestation", ErrBadState, j.ID)
	}
	if j.Status == JobComputed && !contains(j.Committee, c.signer) {
		return nil, fmt.Errorf("%w: %s is not on job %s's verification committee", ErrUnauthorized, c.signer, j.ID)
	}
	if j.Status != JobComputed {
		return nil, fmt.Errorf("%w: job %s is %s, not awaiting verification", ErrBadState, j.ID, j.Status)
	}
	if m.Millis != 0 && j.Verification != VerifyAudit {
		return nil, fmt.Errorf("%w: millis is an audited container's run time; job %s is a %s job", ErrInvalidMsg, j.ID, j.Verification)
	}
	if j.Verification == VerifyChallenge && j.ChallengeReveal == nil {
		return nil, fmt.Errorf("%w: job %s's challenge rows are not revealed yet", ErrBadState, j.ID)
	}
	if m.ResultDigest != j.ResultDigest {
		return nil, fmt.Errorf("%w: attested digest %s is not the committed %s", ErrInvalidMsg, m.ResultDigest, j.ResultDigest)
	}
	if m.Transcript == "" && transcriptRequired(j, m) {
		return nil, fmt.Errorf("%w: job %s's committee runs Freivalds' check: a passing attestation states its transcript", ErrInvalidMsg, j.ID)
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
	j.Attestations = append(j.Attestations, Attestation{Validator: c.signer, Pass: m.Pass, Reason: m.Reason, Height: c.blk.height, Ops: m.Ops, Millis: m.Millis, Transcript: m.Transcript})
	if m.Pass {
		passes++
	} else {
		fails++
	}
	events := []Event{{Type: "attested", Attrs: []Attr{{"job_id", j.ID}, {"validator", string(c.signer)}, {"pass", strconv.FormatBool(m.Pass)}}}}
	// At least two thirds passing settles; more than a third failing means the result
	// is wrong. The two cannot both hold, and once all have voted one of them does.
	n := len(j.Committee)
	switch {
	case passes*3 >= 2*n:
		ev, err := c.settle(p, &j)
		if err != nil {
			return nil, err
		}
		return append(events, ev...), nil
	case fails*3 > n:
		ev, err := c.failJob(p, &j)
		if err != nil {
			return nil, err
		}
		return append(events, ev...), nil
	}
	return events, c.st.put(jobKey(j.ID), j)
}

// SettlementFor divides a verified job's escrow: the node's price times the GPU time it
// is billed, capped at the budget; of that cost BurnBP is burned (rounded up) and FeeBP
// taken as protocol fee, the node gets the rest, and the consumer gets back whatever the
// cost did not use. The billed time is the GPU time the node reported, but no more than
// its attesters' operation count takes at its registered rate (verifiedMillis), at least
// MinBilledMillis and at most the timeout.
func SettlementFor(p Params, j Job) (Settlement, error) {
	billed := billedMillis(p, j, billableMillis(j))
	sh, err := chargeFor(p, j.PricePerHour, billed, j.Budget)
	if err != nil {
		return Settlement{}, err
	}
	return Settlement{
		BilledMillis: billed, Cost: sh.Cost, Paid: sh.Paid, Burned: sh.Burned, Fee: sh.Fee,
		Refunded: j.Budget - sh.Cost,
	}, nil
}

// billedMillis is the GPU time a job is billed for millis used: at least MinBilledMillis,
// at most the job's timeout.
func billedMillis(p Params, j Job, millis uint64) uint64 {
	return min(max(millis, p.MinBilledMillis), j.TimeoutSeconds*1000)
}

// chargeFor is one node's charge for billed GPU time at price uomni per hour: the cost
// (rounded up, at most limit), of which BurnBP burns (rounded up), FeeBP is the protocol
// fee (rounded down) and the rest is paid to the node. Both verification levels charge
// each node they pay with it.
func chargeFor(p Params, price, billed, limit uint64) (Share, error) {
	cost, err := mulDiv(price, billed, 3_600_000, true)
	if err != nil {
		return Share{}, err
	}
	cost = min(cost, limit)
	burn := burnOf(cost, p.BurnBP)
	fee := shareOf(cost, p.FeeBP)
	if burn+fee > cost { // only possible for a cost of a few uomni with rounding up
		fee = cost - burn
	}
	return Share{Cost: cost, Paid: cost - burn - fee, Burned: burn, Fee: fee}, nil
}

// RewardRate is the network-reward emission per verified GPU-hour at a height: the
// initial rate, cut by RewardDecayBP every RewardDecayBlocks blocks.
func RewardRate(p Params, height int64) uint64 {
	rate := p.RewardPerGPUHour
	for periods := uint64(height) / p.RewardDecayBlocks; periods > 0 && rate > 0; periods-- {
		rate, _ = mulDiv(rate, BasisPoints-p.RewardDecayBP, BasisPoints, false)
	}
	return rate
}

func (c *execCtx) settle(p Params, j *Job) ([]Event, error) {
	s, err := SettlementFor(p, *j)
	if err != nil {
		return nil, err
	}
	if s.Reward, err = c.networkReward(p, s.BilledMillis); err != nil {
		return nil, err
	}
	j.AttestationsAudited = attestationAuditDrawn(p, c.blk.hash, *j)
	if err := c.payOut(p, j, &s, []Share{{Node: j.Node, Paid: s.Paid, Reward: s.Reward}}); err != nil {
		return nil, err
	}
	if err := c.bumpNode(j.Node, true); err != nil {
		return nil, err
	}
	events := []Event{settledEvent(j, string(j.Node))}
	if j.AttestationsAudited {
		ev, err := c.openAttestationAudit(j)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	return events, nil
}

// networkReward is the emission from the network-rewards pool for billed verified GPU
// time, while the pool lasts.
func (c *execCtx) networkReward(p Params, billed uint64) (uint64, error) {
	reward, err := mulDiv(RewardRate(p, c.blk.height), billed, 3_600_000, false)
	if err != nil {
		return 0, err
	}
	return min(reward, c.sp.Pools[PoolRewards]), nil
}

// payOut closes a verified job as s says: it releases the escrow, pays each payee its Paid
// and Reward (the reward from the network-rewards pool, s.Reward in all), refunds the
// consumer, burns s.Burned and splits s.Fee. The fee is split once, in total, however many
// nodes earned it, so the split rounds as it does for one.
func (c *execCtx) payOut(p Params, j *Job, s *Settlement, payees []Share) error {
	s.Height = c.blk.height
	if err := takePool(&c.sp, PoolRewards, s.Reward); err != nil {
		return err
	}
	var err error
	if c.sp.Escrowed, err = sub(c.sp.Escrowed, j.Budget); err != nil {
		return fmt.Errorf("escrow underflow: %w", err)
	}
	for _, sh := range payees {
		amt, err := add(sh.Paid, sh.Reward)
		if err != nil {
			return err
		}
		if err := c.st.credit(&c.sp, sh.Node, amt); err != nil {
			return err
		}
	}
	if err := c.st.credit(&c.sp, j.Consumer, s.Refunded); err != nil {
		return err
	}
	if c.sp.Burned, err = add(c.sp.Burned, s.Burned); err != nil {
		return err
	}
	if err := c.splitFee(p, s.Fee); err != nil {
		return err
	}
	j.Status, j.Settlement = JobSettled, s
	if err := c.st.put(jobKey(j.ID), j); err != nil {
		return err
	}
	return c.st.kv.Delete(jobExpKey(j.DeadlineUnix, j.ID))
}

// settledEvent reports a settlement's totals; node names who was paid.
func settledEvent(j *Job, node string) Event {
	s := j.Settlement
	return Event{Type: "job_settled", Attrs: []Attr{
		{"job_id", j.ID}, {"node", node}, {"paid", u(s.Paid)}, {"burned", u(s.Burned)},
		{"fee", u(s.Fee)}, {"refunded", u(s.Refunded)}, {"reward", u(s.Reward)},
	}}
}

// splitFee puts ValidatorFeeShareBP of a fee in the validators' reward pool, which the
// block pays out pro rata to stake when it ends (see payValidators), BuybackFeeShareBP in
// the buy-back fund and the rest in the ecosystem treasury.
func (c *execCtx) splitFee(p Params, fee uint64) error {
	toValidators := shareOf(fee, p.ValidatorFeeShareBP)
	toBuyback := shareOf(fee, p.BuybackFeeShareBP)
	if err := addPool(&c.sp, PoolBuyback, toBuyback); err != nil {
		return err
	}
	if err := addPool(&c.sp, PoolEcosystem, fee-toValidators-toBuyback); err != nil {
		return err
	}
	return addPool(&c.sp, PoolValidatorRewards, toValidators)
}

// failJob refunds a job whose result the committee rejected, slashes the node that
// returned it (part of the slash rewards the validators who caught it, the rest burns)
// and slashes the validators who attested the wrong result as right. A rejection that is
// no proof (provenWrong) only refunds the job and counts against the node's reliability.
func (c *execCtx) failJob(p Params, j *Job) ([]Event, error) {
	if err := refundEscrow(c.st, &c.sp, j, JobFailed, c.blk.height); err != nil {
		return nil, err
	}
	if err := c.bumpNode(j.Node, false); err != nil {
		return nil, err
	}
	events := []Event{{Type: "job_failed", Attrs: []Attr{{"job_id", j.ID}, {"refunded", u(j.Budget)}}}}
	if !provenWrong(*j) {
		events[0].Attrs = append(events[0].Attrs, Attr{"slash", "none: a container's re-run differing is no proof"})
		return events, nil
	}
	slashed, err := slash(c.st, &c.sp, j.Node, RoleNode, p.FraudSlashBP, p)
	if err != nil {
		return nil, err
	}
	var catchers, liars []keys.Address
	for _, a := range j.Attestations {
		if a.Pass {
			liars = append(liars, a.Validator)
		} else {
			catchers = append(catchers, a.Validator)
		}
	}
	reward := shareOf(slashed, p.VerifierRewardBP)
	each := reward / uint64(len(catchers)) // at least one validator failed the job
	for _, v := range catchers {
		if err := c.st.credit(&c.sp, v, each); err != nil {
			return nil, err
		}
	}
	if c.sp.Burned, err = add(c.sp.Burned, slashed-each*uint64(len(catchers))); err != nil {
		return nil, err
	}
	events = append(events, Event{Type: "slashed", Attrs: []Attr{{"account", string(j.Node)}, {"role", RoleNode}, {"amount", u(slashed)}, {"reason", "wrong result for " + j.ID}}})
	for _, v := range liars {
		amt, err := slash(c.st, &c.sp, v, RoleValidator, p.FalseAttestSlashBP, p)
		if err != nil {
			return nil, err
		}
		if c.sp.Burned, err = add(c.sp.Burned, amt); err != nil {
			return nil, err
		}
		if val, ok, err := c.st.validator(v); err == nil && ok {
			c.valChanged = append(c.valChanged, val)
		}
		events = append(events, Event{Type: "slashed", Attrs: []Attr{{"account", string(v)}, {"role", RoleValidator}, {"amount", u(amt)}, {"reason", "attested a wrong result for " + j.ID}}})
	}
	return events, nil
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

// cancelJob refunds a job that no node has committed a result for (for a redundant job: no
// replica has sealed one). The consumer may cancel its own job; a router may release one it
// cannot place, so the consumer gets the budget back at once instead of at the deadline.
// Neither can take back work already committed.
func (c *execCtx) cancelJob(p Params, m *MsgCancelJob) ([]Event, error) {
	j, err := c.st.job(m.JobID)
	if err != nil {
		return nil, err
	}
	by := "consumer"
	if j.Consumer != c.signer {
		if !contains(p.Routers, c.signer) {
			return nil, fmt.Errorf("%w: only the consumer or a router may cancel job %s", ErrUnauthorized, j.ID)
		}
		by = "router"
	}
	if j.Status != JobCreated && j.Status != JobAssigned {
		return nil, fmt.Errorf("%w: job %s is %s and can no longer be cancelled", ErrBadState, j.ID, j.Status)
	}
	if r, ok := firstCommitted(j); ok {
		return nil, fmt.Errorf("%w: replica %s of job %s has sealed its result; the job can no longer be cancelled", ErrBadState, r.Node, j.ID)
	}
	if err := refundEscrow(c.st, &c.sp, &j, JobCancelled, c.blk.height); err != nil {
		return nil, err
	}
	return []Event{{Type: "job_cancelled", Attrs: []Attr{{"job_id", j.ID}, {"refunded", u(j.Budget)}, {"by", by}}}}, nil
}

func (c *execCtx) propose(p Params, m *MsgPropose) ([]Event, error) {
	stake, err := c.st.stakeOf(c.signer)
	if err != nil {
		return nil, err
	}
	if stake == 0 {
		return nil, fmt.Errorf("%w: only stakers may propose; %s has no stake", ErrUnauthorized, c.signer)
	}
	ctr, err := c.st.counters()
	if err != nil {
		return nil, err
	}
	ctr.Proposal++
	prop := Proposal{
		ID: ctr.Proposal, Proposer: c.signer, Title: m.Title, Description: m.Description,
		Params: m.Params, Spend: m.Spend, SubmitHeight: c.blk.height,
		VotingEnd: c.blk.height + int64(p.GovVotingBlocks), Status: ProposalVoting,
	}
	for _, w := range []struct {
		key []byte
		v   any
	}{{keyCounters, ctr}, {propKey(prop.ID), prop}, {propEndKey(prop.VotingEnd, prop.ID), prop.ID}} {
		if err := c.st.put(w.key, w.v); err != nil {
			return nil, err
		}
	}
	return []Event{{Type: "proposal_submitted", Attrs: []Attr{{"proposal_id", u(prop.ID)}, {"voting_end_height", strconv.FormatInt(prop.VotingEnd, 10)}}}}, nil
}

func (c *execCtx) vote(m *MsgVote) ([]Event, error) {
	prop, ok, err := getRecord[Proposal](c.st.kv, propKey(m.ProposalID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: proposal %d", ErrNotFound, m.ProposalID)
	}
	if prop.Status != ProposalVoting || c.blk.height > prop.VotingEnd {
		return nil, fmt.Errorf("%w: voting on proposal %d has closed", ErrBadState, prop.ID)
	}
	if prev, err := c.st.kv.Get(voteKey(prop.ID, c.signer)); err != nil || prev != nil {
		return nil, fmt.Errorf("%w: %s already voted on proposal %d", ErrDuplicate, c.signer, prop.ID)
	}
	weight, err := c.st.stakeOf(c.signer)
	if err != nil {
		return nil, err
	}
	if weight == 0 {
		return nil, fmt.Errorf("%w: %s has no stake to vote with", ErrUnauthorized, c.signer)
	}
	tally := map[string]*uint64{VoteYes: &prop.Yes, VoteNo: &prop.No, VoteAbstain: &prop.Abstain}[m.Option]
	if *tally, err = add(*tally, weight); err != nil {
		return nil, err
	}
	if err := c.st.put(voteKey(prop.ID, c.signer), m.Option); err != nil {
		return nil, err
	}
	return []Event{{Type: "voted", Attrs: []Attr{{"proposal_id", u(prop.ID)}, {"voter", string(c.signer)}, {"option", m.Option}, {"weight", u(weight)}}}}, c.st.put(propKey(prop.ID), prop)
}

// consAddress is CometBFT's address for an ed25519 consensus key: sha256(pub)[:20].
func consAddress(pub []byte) []byte {
	h := sha256.Sum256(pub)
	return h[:20]
}

func contains(list []keys.Address, a keys.Address) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
