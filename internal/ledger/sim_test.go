package ledger

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// sim drives a harness with random blocks that use every transaction type, double-sign
// evidence and block times that jump ahead by up to a quarter of a minute, so unbondings
// mature, jobs expire, proposals close and quarters pass. Most transactions are plausible,
// many are not (wrong signer, too much, too late), so the accepted and the rejected paths
// both run. It records what happened so a test can insist that every outcome occurred.
//
// Redundant jobs (redundantStep: placements, seals and reveals, up to two a block) draw
// from a stream of their own, red: the rest of a run makes the same choices it made before
// they existed, and the outcomes it was tuned to reach still come. So do the choices of
// the challenge and audit levels (lvl): which level a job asks for, whether a challenge
// job's assignment commits, its reveal and whether it opens, an audit's run time.
type sim struct {
	h         *harness
	rng       *rand.Rand
	red       *rand.Rand
	lvl       *rand.Rand // the challenge and audit levels' choices, a stream of their own too
	capa      *rand.Rand // capacity reports (capacityStep), a stream of their own as well
	aud       *rand.Rand // attestations' transcripts and reports of them (attestationReportStep), another
	wrong     *rand.Rand // which of those reports say the result is wrong, one more
	actors    []ed25519.PrivateKey
	jobs      []string
	redundant []string          // the redundant jobs, in the order they were created
	sealed    map[string]string // job id + "/" + node -> the digest its seal hides, "" for a copied seal
	withholds map[string]bool   // job id + "/" + node -> the replica will never reveal
	props     []uint64
	propKind  map[uint64]string // proposal id -> "params" or "spend"

	outcomes map[string]int // event types, plus a few finer ones ("proposal_passed:spend")
	codes    map[Code]int   // result codes of every tx

	// what the vesting invariant needs: everything slashed from the vester, and whether
	// it ever staked more than it could have transferred (that is, locked tokens)
	vesterSlashed uint64
	tags          []string // per tx of the block being built
	spendable     uint64   // the vester's spendable balance when its locked stake was built
}

func newSim(h *harness, seed uint64) *sim {
	return &sim{
		h: h, rng: rand.New(rand.NewPCG(seed, 99)), red: rand.New(rand.NewPCG(seed, 77)),
		lvl: rand.New(rand.NewPCG(seed, 55)), capa: rand.New(rand.NewPCG(seed, 33)), aud: rand.New(rand.NewPCG(seed, 11)),
		wrong:    rand.New(rand.NewPCG(seed, 22)),
		actors:   []ed25519.PrivateKey{consumerKey, node1Key, node2Key, strangerKey, routerKey, validatorKey, validator2Key, vesterKey},
		propKind: map[uint64]string{}, outcomes: map[string]int{}, codes: map[Code]int{},
		sealed: map[string]string{}, withholds: map[string]bool{},
	}
}

func (s *sim) pick() ed25519.PrivateKey { return s.actors[s.rng.IntN(len(s.actors))] }

// keyOf is the actor with address a.
func (s *sim) keyOf(a keys.Address) ed25519.PrivateKey {
	for _, k := range s.actors {
		if addr(k) == a {
			return k
		}
	}
	return s.pick()
}

// usually returns one of the actors a step needs, and now and then anyone.
func (s *sim) usually(want ...ed25519.PrivateKey) ed25519.PrivateKey {
	if s.rng.IntN(5) == 0 {
		return s.pick()
	}
	return want[s.rng.IntN(len(want))]
}

// amount is usually a plausible sum, sometimes zero, dust or absurd.
func (s *sim) amount() uint64 {
	switch s.rng.IntN(6) {
	case 0:
		return uint64(s.rng.IntN(3))
	case 1:
		return s.rng.Uint64()
	default:
		return uint64(s.rng.IntN(2_000)) * omni / uint64(1+s.rng.IntN(1000))
	}
}

// stakeOf reads committed stake in a role.
func (s *sim) stakeOf(k ed25519.PrivateKey, role string) uint64 {
	view, _ := s.h.store.Committed()
	if role == RoleNode {
		n, _, _ := getRecord[Node](view, nodeKey(addr(k)))
		return n.Stake
	}
	v, _, _ := getRecord[Validator](view, valKey(addr(k)))
	return v.Stake
}

// consensusKey is the consensus key an account stakes as a validator with.
func consensusKey(k ed25519.PrivateKey) []byte {
	switch addr(k) {
	case addr(validatorKey):
		return pub(validatorKey)
	case addr(validator2Key):
		return pub(cons2Key)
	case addr(vesterKey):
		return pub(consVestKey)
	}
	return pub(key(byte(30 + k.Seed()[0])))
}

// simSalt opens simChallenge, the commitment the simulation's router assigns challenge
// jobs with.
var (
	simSalt      = strings.Repeat("5a", 32)
	simChallenge = ChallengeCommitment(simSalt, digestB, "AAAAAQ", digestC)
)

var stakers = []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey, node1Key, node2Key}

// msg returns a random transaction's signer and message, and a tag for the ones whose
// outcome needs more than its events to judge.
func (s *sim) msg() (ed25519.PrivateKey, Msg, string) {
	rng := s.rng
	k := s.pick()
	var m Msg
	switch op := rng.IntN(28); {
	case op < 3:
		m.Transfer = &MsgTransfer{To: addr(s.pick()), Amount: s.amount()}
	case op < 4:
		k = vesterKey // the vester tries to move more than has vested
		m.Transfer = &MsgTransfer{To: addr(s.pick()), Amount: uint64(rng.IntN(30_000)) * omni}
	case op < 6:
		k = s.usually(node1Key, node2Key)
		stake := 500*omni + uint64(rng.IntN(100))*omni
		if rng.IntN(4) == 0 {
			stake = s.amount()
		}
		m.RegisterNode = &MsgRegisterNode{Stake: stake, PricePerHour: uint64(1 + rng.IntN(4*int(omni))), Hardware: registerMsg.RegisterNode.Hardware}
	case op < 8:
		k = s.usually(consumerKey, consumerKey, vesterKey)
		m = createMsg(s.amount())
		m.CreateJob.Verification = []string{VerifyFreivalds, VerifyFreivalds, VerifyChallenge, VerifyAudit}[s.lvl.IntN(4)]
		m.CreateJob.TimeoutSeconds = uint64(60 + rng.IntN(600))
		if rng.IntN(3) == 0 {
			m.CreateJob.TimeoutSeconds = uint64(1 + rng.IntN(30)) // expires before it is done
		}
	case op < 17:
		if len(s.jobs) == 0 {
			return k, m, ""
		}
		id := s.jobs[len(s.jobs)-1-rng.IntN(min(3, len(s.jobs)))] // recent jobs, so some finish
		view, _ := s.h.store.Committed()
		j, _, _ := getRecord[Job](view, jobKey(id))
		step := rng.IntN(4)
		if rng.IntN(5) > 0 { // usually the step the job is waiting for
			step = map[string]int{JobCreated: 0, JobAssigned: 1, JobComputed: 2}[j.Status]
		}
		if j.Verification == VerifyChallenge && j.Status == JobComputed && j.ChallengeReveal == nil && s.lvl.IntN(5) > 0 {
			step = 4 // usually its reveal
		}
		switch step {
		case 0:
			k = s.usually(routerKey)
			m.AssignJob = &MsgAssignJob{JobID: id, Node: addr(s.usually(node1Key, node2Key))}
			if j.Verification == VerifyChallenge && s.lvl.IntN(6) > 0 {
				m.AssignJob.Challenge = simChallenge
			}
		case 1:
			k = s.usually(node1Key, node2Key)
			if j.Node != "" && rng.IntN(4) > 0 {
				k = s.keyOf(j.Node)
			}
			m.CommitResult = &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: rng.Uint64N(10_000_000)}
		case 2:
			k = s.usually(validatorKey, validator2Key, vesterKey)
			if len(j.Committee) > 0 && rng.IntN(4) > 0 {
				k = s.keyOf(j.Committee[rng.IntN(len(j.Committee))])
			}
			m.Attest = &MsgAttest{JobID: id, ResultDigest: digestA, Pass: rng.IntN(3) > 0, Ops: ampleOps}
			if j.Verification == VerifyAudit && s.lvl.IntN(2) == 0 { // an audited container's re-run
				m.Attest.Ops, m.Attest.Millis = 0, s.lvl.Uint64N(10_000_000)
			}
			if m.Attest.Pass && m.Attest.Ops != 0 && s.aud.IntN(6) > 0 { // now and then a pass without one
				m.Attest.Transcript = aTranscript
			}
		case 4:
			k = s.usually(routerKey)
			salt := simSalt
			if s.lvl.IntN(6) == 0 {
				salt = strings.Repeat("00", 32) // opens nothing
			}
			m.RevealChallenge = &MsgRevealChallenge{JobID: id, Salt: salt, Input: digestB, Rows: "AAAAAQ", Expected: digestC}
		default:
			k = s.usually(consumerKey, vesterKey)
			m.CancelJob = &MsgCancelJob{JobID: id}
		}
	case op < 19:
		if rng.IntN(2) == 0 {
			k = s.usually(node1Key, node2Key)
			m.Stake = &MsgStake{Role: RoleNode, Amount: s.amount()}
			break
		}
		k = s.usually(validatorKey, validator2Key, vesterKey)
		amt := uint64(rng.IntN(2_000)) * omni
		if s.stakeOf(k, RoleValidator) == 0 {
			amt = uint64(10_000+rng.IntN(5_000)) * omni
		}
		m.Stake = &MsgStake{Role: RoleValidator, Amount: amt, PubKey: consensusKey(k)}
	case op < 20:
		role := RoleNode
		k = s.usually(node1Key, node2Key)
		if rng.IntN(2) == 0 {
			role, k = RoleValidator, s.usually(validatorKey, validator2Key, vesterKey)
		}
		cur, minimum := s.stakeOf(k, role), s.h.params().MinNodeStake
		if role == RoleValidator {
			minimum = s.h.params().MinValidatorStake
		}
		amt := cur // leave the role
		switch rng.IntN(4) {
		case 0:
			amt = cur - min(cur, minimum) // keep the minimum
		case 1:
			amt = s.amount()
		}
		m.Unstake = &MsgUnstake{Role: role, Amount: amt}
	case op < 22:
		k = s.usually(stakers...)
		if rng.IntN(2) == 0 {
			m.Propose = &MsgPropose{Title: "spend", Spend: &Spend{To: addr(s.pick()), Amount: uint64(1+rng.IntN(20_000)) * omni}}
			return k, m, "propose:spend"
		}
		m.Propose = &MsgPropose{Title: "tune", Params: s.paramChange()}
		return k, m, "propose:params"
	default:
		k = s.usually(stakers...)
		var id uint64 = 1
		switch n := len(s.props); {
		case n == 0 || rng.IntN(10) == 0:
			id = uint64(n) + 5 // unknown
		case rng.IntN(3) > 0:
			id = s.props[n-1]
		default:
			id = s.props[rng.IntN(n)]
		}
		option := []string{VoteYes, VoteYes, VoteYes, VoteYes, VoteNo, VoteAbstain}[rng.IntN(6)]
		m.Vote = &MsgVote{ProposalID: id, Option: option}
	}
	return k, m, ""
}

// redundantStep returns a transaction for a redundant job, drawn from the red stream:
// registering the third node they need, creating a job, or taking one of the two latest a
// step further: placing a replica (or replacing one that has not sealed), sealing a result
// or, once all three have sealed, revealing one (usually a step the job can take, now and
// then one it cannot). Now and then a replica copies another's seal, which it can never
// open, withholds its reveal, reveals a digest that does not open its seal, or commits its
// digest in the open. A job left waiting on reveals that will not come is left to its
// deadline.
func (s *sim) redundantStep() (ed25519.PrivateKey, Msg) {
	main := s.rng
	s.rng = s.red // pick, usually and amount draw from s.rng
	defer func() { s.rng = main }()
	rng := s.rng
	var m Msg
	if s.stakeOf(node3Key, RoleNode) == 0 && rng.IntN(3) == 0 {
		m.RegisterNode = &MsgRegisterNode{Stake: 500 * omni, PricePerHour: uint64(1 + rng.IntN(4*int(omni))), Hardware: registerMsg.RegisterNode.Hardware}
		return node3Key, m
	}
	view, _ := s.h.store.Committed()
	// One of the two latest jobs, usually one that can take a step if either can: a job
	// needs all three replicas to seal before any reveals, and one left behind for a newer
	// one would only expire.
	var j Job
	var js redundantSteps
	if n := len(s.redundant); n > 0 {
		i := rng.IntN(min(2, n))
		j, _, _ = getRecord[Job](view, jobKey(s.redundant[n-1-i]))
		js = s.stepsOf(j)
		if len(js.steps) == 0 && n > 1 && rng.IntN(4) > 0 {
			other, _, _ := getRecord[Job](view, jobKey(s.redundant[n-2+i]))
			if os := s.stepsOf(other); len(os.steps) > 0 {
				j, js = other, os
			}
		}
	}
	if j.ID == "" || len(js.steps) == 0 && rng.IntN(2) == 0 {
		// Any ceiling a node bids under, and long enough for three nodes to commit.
		m = createMsg(s.amount())
		m.CreateJob.Verification, m.CreateJob.MaxPricePerHour = VerifyRedundant, 5*omni
		m.CreateJob.TimeoutSeconds = uint64(300 + rng.IntN(900))
		return s.usually(consumerKey), m
	}
	// Mostly the earliest, so that jobs get three replicas, then three seals, then reveals;
	// sometimes a later one, and now and then any.
	step := redundantStep(rng.IntN(3))
	switch r := rng.IntN(8); {
	case len(js.steps) == 0 || r == 0:
	case r < 6:
		step = js.steps[0]
	default:
		step = js.steps[rng.IntN(len(js.steps))]
	}
	switch step {
	case stepPlace:
		a := &MsgAssignJob{JobID: j.ID, Node: addr(s.usually(append(js.free, node1Key)...))}
		switch {
		case len(js.waiting) > 0 && (len(js.free) == 0 || rng.IntN(3) == 0):
			a.Replaces = addr(js.waiting[rng.IntN(len(js.waiting))])
		case len(js.placed) > 0 && rng.IntN(8) == 0:
			a.Replaces = addr(js.placed[rng.IntN(len(js.placed))]) // perhaps one that sealed
		}
		m.AssignJob = a
		return s.usually(routerKey), m
	case stepSeal:
		k := s.usually(node1Key, node2Key, node3Key)
		if len(js.waiting) > 0 && rng.IntN(4) > 0 {
			k = js.waiting[rng.IntN(len(js.waiting))]
		}
		// Mostly the same digest, so that jobs settle; sometimes another, so that replicas
		// are outvoted and some jobs are inconclusive.
		digest := []string{digestA, digestA, digestB, digestC}[rng.IntN(4)]
		c := &MsgCommitResult{JobID: j.ID, Seal: ResultSeal(j.ID, addr(k), digest), GPUMillis: rng.Uint64N(10_000_000)}
		switch rng.IntN(12) {
		case 0: // a copycat: another replica's seal, which no digest it knows opens
			for _, r := range j.Replicas {
				if r.Committed() {
					c.Seal = r.Seal
				}
			}
		case 1: // the digest in the open, which a redundant job refuses
			c.Seal, c.ResultDigest = "", digest
		}
		s.withholds[j.ID+"/"+string(addr(k))] = rng.IntN(8) == 0 // it will never reveal
		m.CommitResult = c
		return k, m
	}
	k := s.usually(node1Key, node2Key, node3Key)
	if len(js.revealers) > 0 && rng.IntN(4) > 0 {
		k = js.revealers[rng.IntN(len(js.revealers))]
	}
	digest := s.sealed[j.ID+"/"+string(addr(k))]
	if digest == "" || rng.IntN(16) == 0 {
		digest = []string{digestA, digestB, digestC}[rng.IntN(3)] // perhaps not what it sealed
	}
	m.RevealResult = &MsgRevealResult{JobID: j.ID, ResultDigest: digest}
	return k, m
}

// redundantStep is a step a redundant job takes.
type redundantStep int

const (
	stepPlace redundantStep = iota
	stepSeal
	stepReveal
)

// redundantSteps sorts the nodes by what they are to a redundant job, and lists the steps
// the job can take, the earliest first.
type redundantSteps struct {
	free      []ed25519.PrivateKey // not replicas
	placed    []ed25519.PrivateKey // replicas
	waiting   []ed25519.PrivateKey // replicas that have not sealed
	revealers []ed25519.PrivateKey // replicas that sealed, have not revealed and will
	steps     []redundantStep
}

// stepsOf is what j's nodes are to it and which steps it can take. A replica that copied
// its seal, or chose to withhold its reveal, is no revealer.
func (s *sim) stepsOf(j Job) redundantSteps {
	var rs redundantSteps
	for _, k := range []ed25519.PrivateKey{node1Key, node2Key, node3Key} {
		i := replicaIndex(j, addr(k))
		if i < 0 {
			rs.free = append(rs.free, k)
			continue
		}
		rs.placed = append(rs.placed, k)
		who := j.ID + "/" + string(addr(k))
		switch r := j.Replicas[i]; {
		case !r.Committed():
			rs.waiting = append(rs.waiting, k)
		case !r.Revealed() && s.sealed[who] != "" && !s.withholds[who]:
			rs.revealers = append(rs.revealers, k)
		}
	}
	if j.Status == JobCreated || j.Status == JobAssigned && len(j.Replicas) < RedundantReplicas {
		rs.steps = append(rs.steps, stepPlace)
	}
	if j.Status == JobAssigned && len(rs.waiting) > 0 {
		rs.steps = append(rs.steps, stepSeal)
	}
	if j.Status == JobAssigned && RevealsOpen(j) && len(rs.revealers) > 0 {
		rs.steps = append(rs.steps, stepReveal)
	}
	return rs
}

// capacityStep is a validator's proof-of-capacity report, drawn from the capa stream:
// usually a validator's about a node, now and then anyone's about anyone, with an outcome
// that is mostly proven or slow and now and then wrong (a slash), and now and then
// without the figures a report needs.
func (s *sim) capacityStep() (ed25519.PrivateKey, Msg) {
	rng := s.capa
	signer := []ed25519.PrivateKey{validatorKey, validator2Key, validatorKey, strangerKey, node1Key}[rng.IntN(5)]
	target := []ed25519.PrivateKey{node1Key, node2Key, node1Key, node2Key, strangerKey}[rng.IntN(5)]
	m := &MsgCapacityReport{Node: addr(target), Ops: rng.Uint64N(1 << 40), Millis: rng.Uint64N(100_000),
		Outcome: []string{CapacityProven, CapacityProven, CapacitySlow, CapacitySlow, CapacitySlow, CapacityWrong, "lazy"}[rng.IntN(7)]}
	return signer, Msg{CapacityReport: m}
}

// attestationReportStep is a report that an attestation of a recent job is false, drawn
// from the aud stream: usually a validator's about another, now and then about itself or
// by a stranger; the job may not have been drawn for audit or may hold no such pass. Half,
// drawn from a stream of their own, say the result itself is wrong (refused from a
// validator that passed it). Random runs seldom settle a drawn job with a validator that
// did not pass it, so TestResultFoundWrongUnderRandomReports drives that finding.
func (s *sim) attestationReportStep() (ed25519.PrivateKey, Msg) {
	rng := s.aud
	signer := []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey, validatorKey, strangerKey}[rng.IntN(5)]
	target := []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey}[rng.IntN(3)]
	id := s.jobs[len(s.jobs)-1-rng.IntN(min(6, len(s.jobs)))]
	m := &MsgReportAttestation{JobID: id, Validator: addr(target), Reason: "transcript differs"}
	if s.wrong.IntN(2) == 0 {
		m.Reason, m.ResultWrong = "row 3 differs", true
	}
	return signer, Msg{ReportAttestation: m}
}

// paramChange proposes a change that keeps the chain usable (or, now and then, an invalid one).
func (s *sim) paramChange() map[string]json.RawMessage {
	n := func(lo, hi int) json.RawMessage { return json.RawMessage(strconv.Itoa(lo + s.rng.IntN(hi-lo+1))) }
	switch s.rng.IntN(9) {
	case 0:
		return map[string]json.RawMessage{"burn_bp": n(100, 400)}
	case 1:
		return map[string]json.RawMessage{"fee_bp": n(300, 800)}
	case 2:
		return map[string]json.RawMessage{"buyback_burn": json.RawMessage(strconv.FormatBool(s.rng.IntN(2) == 0))}
	case 3:
		return map[string]json.RawMessage{"unbonding_seconds": n(10, 60)}
	case 4:
		return map[string]json.RawMessage{"quarter_blocks": n(10, 40)}
	case 5:
		return map[string]json.RawMessage{"gov_voting_blocks": n(3, 8)}
	case 6:
		return map[string]json.RawMessage{"committee_size": n(0, 3)}
	case 7:
		return map[string]json.RawMessage{"burn_bp": n(20_000, 30_000)} // invalid
	}
	return map[string]json.RawMessage{"double_sign_slash_bp": n(100, 2000)}
}

// next builds the next random block; apply runs it.
func (s *sim) next() Block {
	h, rng := s.h, s.rng
	var txs [][]byte
	s.tags = s.tags[:0]
	add := func(k ed25519.PrivateKey, m Msg, tag string) {
		tx, err := SignTx(k, testChain, h.seqs[addr(k)], m)
		if err != nil {
			return
		}
		txs, s.tags = append(txs, tx), append(s.tags, tag)
		h.seqs[addr(k)]++ // optimistic; re-synced after the block
	}
	if rng.IntN(12) == 0 {
		// The vester stakes more than it may transfer: the excess can only be locked
		// tokens. First in its block, so nothing it receives in the block can pay for it.
		s.spendable = query[AccountView](h, "account/"+string(addr(vesterKey))).Spendable
		add(vesterKey, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: s.spendable + 2_000*omni, PubKey: consensusKey(vesterKey)}}, "stake:locked")
	}
	for i := 1 + rng.IntN(4); i > 0; i-- {
		if k, m, tag := s.msg(); m.Kind() != "" {
			add(k, m, tag)
		}
	}
	for range 2 { // a job takes at least nine: three placements, three seals, three reveals
		if k, m := s.redundantStep(); s.red.IntN(8) > 0 {
			add(k, m, "redundant")
		}
	}
	if s.capa.IntN(5) == 0 {
		k, m := s.capacityStep()
		add(k, m, "")
	}
	if s.aud.IntN(3) == 0 && len(s.jobs) > 0 {
		k, m := s.attestationReportStep()
		add(k, m, "")
	}
	b := h.next(time.Duration(1+rng.IntN(15))*time.Second, txs...)
	if rng.IntN(40) == 0 {
		cons := [][]byte{pub(cons2Key), pub(consVestKey), pub(key(99))}[rng.IntN(3)]
		b.Misbehavior = []Misbehavior{{ConsensusAddress: consAddress(cons), Height: h.height}}
	}
	return b
}

// apply finalizes and commits b and records its outcomes.
func (s *sim) apply(b Block) BlockResult {
	h := s.h
	res := h.finalize(b)
	record := func(e Event, tag string) {
		s.outcomes[e.Type]++
		attr := map[string]string{}
		for _, a := range e.Attrs {
			attr[a.Key] = a.Value
		}
		switch e.Type {
		case "job_created":
			if tag == "redundant" {
				s.redundant = append(s.redundant, attr["job_id"])
				break
			}
			s.jobs = append(s.jobs, attr["job_id"])
		case "proposal_submitted":
			id, _ := strconv.ParseUint(attr["proposal_id"], 10, 64)
			s.props = append(s.props, id)
			s.propKind[id] = tag[len("propose:"):]
		case "proposal_closed":
			id, _ := strconv.ParseUint(attr["proposal_id"], 10, 64)
			s.outcomes["proposal_"+attr["status"]+":"+s.propKind[id]]++
		case "capacity_reported":
			s.outcomes[e.Type+":"+attr["outcome"]]++
		case "attestation_reported":
			if attr["decided"] == "false attestation" {
				s.outcomes["attestation_found_false"]++
			}
		case "slashed":
			if attr["account"] == string(addr(vesterKey)) {
				amt, _ := strconv.ParseUint(attr["amount"], 10, 64)
				s.vesterSlashed += amt
			}
			if attr["jailed"] == "true" {
				s.outcomes["double_sign_jailed"]++
			}
		case "buyback_settled":
			s.outcomes["buyback_"+attr["action"]]++
		case "job_assigned":
			if attr["replaces"] != "" {
				s.outcomes["replica_replaced"]++
			}
		case "job_failed":
			if strings.HasPrefix(attr["reason"], "inconclusive") {
				s.outcomes["job_failed:inconclusive"]++
			}
		case "job_settled":
			if attr["at"] == "deadline" {
				s.outcomes["job_settled:deadline"]++
			}
		case "result_committed":
			if attr["seal"] != "" { // which digest the seal hides, if it is the signer's own
				id, node := attr["job_id"], keys.Address(attr["node"])
				s.sealed[id+"/"+string(node)] = ""
				for _, d := range []string{digestA, digestB, digestC} {
					if ResultSeal(id, node, d) == attr["seal"] {
						s.sealed[id+"/"+string(node)] = d
					}
				}
			}
		case "staked", "unstaked":
			s.outcomes[e.Type+":"+attr["role"]]++
		}
	}
	for i, r := range res.TxResults {
		s.codes[r.Code]++
		for _, e := range r.Events {
			record(e, s.tags[i])
		}
		if s.tags[i] == "stake:locked" && r.Code == CodeOK {
			s.outcomes["staked_locked_tokens"]++
		}
	}
	for _, e := range res.Events {
		record(e, "")
	}
	for _, u := range res.ValidatorUpdates {
		switch {
		case u.Power == 0:
			s.outcomes["validator_removed"]++
		case string(u.PubKey) == string(pub(cons2Key)) || string(u.PubKey) == string(pub(consVestKey)):
			s.outcomes["validator_joined"]++
		}
	}
	for _, k := range append(s.actors, node3Key) {
		h.seqs[addr(k)] = query[Account](h, "account/"+string(addr(k))).Seq
	}
	return res
}

// params are the committed parameters.
func (h *harness) params() Params { return query[Params](h, "params") }

func (s *sim) String() string { return fmt.Sprintf("outcomes %v, codes %v", s.outcomes, s.codes) }
