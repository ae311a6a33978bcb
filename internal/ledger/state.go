package ledger

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/omnisync/omnisync/internal/keys"
)

// Account is a wallet's balance and next sequence number. Balance includes tokens still
// locked by a vesting schedule: those can be staked but not transferred or escrowed.
type Account struct {
	Address keys.Address `json:"address"`
	Balance uint64       `json:"balance"`
	Seq     uint64       `json:"seq"`
	Vesting *Vesting     `json:"vesting,omitempty"`
}

// Node is a registered compute supplier.
type Node struct {
	Address          keys.Address `json:"address"`
	Stake            uint64       `json:"stake"`
	PricePerHour     uint64       `json:"price_per_hour"`
	Hardware         Hardware     `json:"hardware"`
	Status           string       `json:"status"`
	RegisteredHeight int64        `json:"registered_height"`
	JobsVerified     uint64       `json:"jobs_verified"`
	JobsFailed       uint64       `json:"jobs_failed"`
	// ProvenTFLOPSMilli is the rate the last proof-of-capacity check credited, recorded at
	// ProvenHeight (0: never checked); jobs are billed at no more (BillingTFLOPSMilli).
	ProvenTFLOPSMilli uint64 `json:"proven_tflops_milli,omitempty"`
	ProvenHeight      int64  `json:"proven_height,omitempty"`
}

// Node statuses: an active node may be assigned work; an inactive one has too little stake
// (it unstaked, or was slashed below the minimum).
const (
	NodeActive   = "active"
	NodeInactive = "inactive"
)

// Validator is a staked account that runs consensus (with PubKey as its CometBFT key and
// its stake in whole OMNI as voting power) and attests results.
type Validator struct {
	Address keys.Address `json:"address"`
	PubKey  []byte       `json:"pub_key"`
	Stake   uint64       `json:"stake"`
	Jailed  bool         `json:"jailed,omitempty"`
}

// Power is the validator's CometBFT voting power: whole OMNI staked, 0 when jailed.
func (v Validator) Power() int64 {
	if v.Jailed {
		return 0
	}
	return int64(v.Stake / UomniPerOMNI)
}

// Eligible reports whether the validator may sit on committees, attest and count toward
// the thresholds of validators' reports (capacity, attestation audits): it has voting
// power and at least MinValidatorStake, as a node below its minimum is inactive. One
// slashed below the minimum keeps its consensus power (the ledger never removes the
// last one that way) but checks nothing until it stakes back up.
func (v Validator) Eligible(p Params) bool {
	return v.Power() > 0 && v.Stake >= p.MinValidatorStake
}

// Unbonding is stake on its way back to a balance; it can still be slashed.
type Unbonding struct {
	ID         uint64       `json:"id"`
	Address    keys.Address `json:"address"`
	Role       string       `json:"role"`
	Amount     uint64       `json:"amount"`
	MatureUnix int64        `json:"mature_unix"`
}

// Proposal statuses.
const (
	ProposalVoting   = "voting"
	ProposalPassed   = "passed"
	ProposalRejected = "rejected"
	ProposalFailed   = "failed" // passed, but could not be applied
)

// Proposal is a governance proposal and its running tally (stake-weighted, uomni).
type Proposal struct {
	ID            uint64                     `json:"id"`
	Proposer      keys.Address               `json:"proposer"`
	Title         string                     `json:"title"`
	Description   string                     `json:"description,omitempty"`
	Params        map[string]json.RawMessage `json:"params,omitempty"`
	Spend         *Spend                     `json:"spend,omitempty"`
	SubmitHeight  int64                      `json:"submit_height"`
	VotingEnd     int64                      `json:"voting_end_height"`
	Status        string                     `json:"status"`
	Yes           uint64                     `json:"yes"`
	No            uint64                     `json:"no"`
	Abstain       uint64                     `json:"abstain"`
	AppliedHeight int64                      `json:"applied_height,omitempty"`
	Result        string                     `json:"result,omitempty"`
}

// Job statuses.
const (
	JobCreated   = "created"
	JobAssigned  = "assigned"
	JobComputed  = "computed"
	JobSettled   = "settled"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
	JobExpired   = "expired"
)

// Attestation is one validator's recorded verdict, with the operation count it computed
// for the job (MsgAttest.Ops) and the transcript of its check (MsgAttest.Transcript).
// AuditSlashed says an audit of the job's attestations found this one false and its
// validator was slashed for it (attestaudit.go).
type Attestation struct {
	Validator    keys.Address `json:"validator"`
	Pass         bool         `json:"pass"`
	Reason       string       `json:"reason,omitempty"`
	Height       int64        `json:"height"`
	Ops          uint64       `json:"ops,omitempty"`
	Millis       uint64       `json:"millis,omitempty"`
	Transcript   string       `json:"transcript,omitempty"`
	AuditSlashed bool         `json:"audit_slashed,omitempty"`
}

// Settlement is how a job's escrow was divided. Paid+Burned+Fee+Refunded == Budget.
// A redundant job pays several nodes: Shares says what each got, and the other fields
// are their sums, so a reader of the totals need not know the level.
type Settlement struct {
	BilledMillis uint64  `json:"billed_millis"`
	Cost         uint64  `json:"cost"`
	Paid         uint64  `json:"paid"`
	Burned       uint64  `json:"burned"`
	Fee          uint64  `json:"fee"`
	Refunded     uint64  `json:"refunded"`
	Reward       uint64  `json:"reward,omitempty"` // network-rewards emission paid to the node on top
	Height       int64   `json:"height"`
	Shares       []Share `json:"shares,omitempty"`
}

// Share is one paid node's part of a settlement: Cost of the escrow, of which Burned was
// burned, Fee went to the fee split and Paid to the node, plus Reward from the
// network-rewards pool.
type Share struct {
	Node   keys.Address `json:"node"`
	Cost   uint64       `json:"cost"`
	Paid   uint64       `json:"paid"`
	Burned uint64       `json:"burned"`
	Fee    uint64       `json:"fee"`
	Reward uint64       `json:"reward,omitempty"`
}

// Replica is one node's placement on a redundant job and, once the node commits, its
// sealed result: Seal, GPUMillis and ResultHeight (the commit's height) come with the
// commit, ResultDigest only with the reveal that opens the seal. PricePerHour is the
// node's bid when it was placed, which is what it is paid at.
type Replica struct {
	Node           keys.Address `json:"node"`
	PricePerHour   uint64       `json:"price_per_hour"`
	ScoreBP        uint32       `json:"score_bp"`
	AssignedHeight int64        `json:"assigned_height"`
	Seal           string       `json:"seal,omitempty"`
	ResultDigest   string       `json:"result_digest,omitempty"`
	GPUMillis      uint64       `json:"gpu_millis,omitempty"`
	ResultHeight   int64        `json:"result_height,omitempty"`
}

// Committed reports whether the replica's node has committed (sealed) its result.
func (r Replica) Committed() bool { return r.Seal != "" }

// Revealed reports whether the replica's node has opened its seal with its digest.
func (r Replica) Revealed() bool { return r.ResultDigest != "" }

// Job is the on-chain record of one job from escrow to settlement. A freivalds job (and a
// challenge or audit job) runs on Node, which commits ResultDigest for its Committee to attest; PricePerHour and
// TFLOPSMilli are the node's bid and registered rate when it was placed, what the work
// its attesters counted is billed at (SettlementFor). A redundant job leaves Node
// empty and runs on its Replicas; once it settles on the digest enough of them agree on,
// ResultDigest is that digest and GPUMillis the GPU time billed.
type Job struct {
	ID              string         `json:"id"`
	Consumer        keys.Address   `json:"consumer"`
	SpecHash        string         `json:"spec_hash"`
	Budget          uint64         `json:"budget"`
	MaxPricePerHour uint64         `json:"max_price_per_hour"`
	Verification    string         `json:"verification"`
	TimeoutSeconds  uint64         `json:"timeout_seconds"`
	Status          string         `json:"status"`
	CreatedHeight   int64          `json:"created_height"`
	DeadlineUnix    int64          `json:"deadline_unix"`
	Node            keys.Address   `json:"node,omitempty"`
	PricePerHour    uint64         `json:"price_per_hour,omitempty"`
	TFLOPSMilli     uint64         `json:"tflops_milli,omitempty"`
	ScoreBP         uint32         `json:"score_bp,omitempty"`
	AssignedHeight  int64          `json:"assigned_height,omitempty"`
	ResultDigest    string         `json:"result_digest,omitempty"`
	GPUMillis       uint64         `json:"gpu_millis,omitempty"`
	ResultHeight    int64          `json:"result_height,omitempty"`
	Seed            string         `json:"seed,omitempty"`
	Committee       []keys.Address `json:"committee,omitempty"`
	Attestations    []Attestation  `json:"attestations,omitempty"`
	Settlement      *Settlement    `json:"settlement,omitempty"`
	Replicas        []Replica      `json:"replicas,omitempty"`
	// Challenge and audit jobs only. Audited says the block that recorded the result
	// drew the job for a full check (AuditRateBP). Challenge is the router's commitment to
	// the challenge rows it hid in the input; ChallengeReveal opens it after the result.
	Audited         bool             `json:"audited,omitempty"`
	Challenge       string           `json:"challenge,omitempty"`
	ChallengeReveal *ChallengeReveal `json:"challenge_reveal,omitempty"`
	// AttestationsAudited says the block that settled the job drew its attestations for
	// an audit of validators (ValidatorAuditBP, attestaudit.go).
	AttestationsAudited bool `json:"attestations_audited,omitempty"`
	// FoundWrong says that audit found the settled result wrong (attestaudit.go): the node
	// was slashed and the consumer compensated, once.
	FoundWrong *FoundWrong `json:"found_wrong,omitempty"`
}

// FoundWrong records an audit of a settled job's attestations that found its result
// wrong: at Height the node was slashed Slashed (fraud_slash_bp of its stake, unbonding
// included), of which Compensated, at most what the consumer paid for the job
// (Settlement.Cost), went to the consumer and the rest was burned.
type FoundWrong struct {
	Height      int64  `json:"height"`
	Slashed     uint64 `json:"slashed"`
	Compensated uint64 `json:"compensated"`
}

// ChallengeReveal is an opened challenge commitment (MsgRevealChallenge), with the height
// it was revealed at.
type ChallengeReveal struct {
	Salt     string `json:"salt"`
	Input    string `json:"input"`
	Rows     string `json:"rows"`
	Expected string `json:"expected"`
	Height   int64  `json:"height"`
}

// Open reports whether the job still holds escrow.
func (j *Job) Open() bool {
	return j.Status == JobCreated || j.Status == JobAssigned || j.Status == JobComputed
}

// Supply is the chain-wide accounting. At every height
// Genesis == Liquid + Staked + Unbonding + Escrowed + sum(Pools) + Burned.
// Liquid counts every account balance, vesting-locked tokens included; queries split out
// the locked part as "vesting".
type Supply struct {
	Genesis   uint64            `json:"genesis"`
	Liquid    uint64            `json:"liquid"`
	Staked    uint64            `json:"staked"`
	Unbonding uint64            `json:"unbonding"`
	Escrowed  uint64            `json:"escrowed"`
	Pools     map[string]uint64 `json:"pools"`
	Burned    uint64            `json:"burned"`
	// poolsShared marks Pools as borrowed from the block's supply: a transaction's copy
	// shares the map until it changes a pool, and then copies it, into spare when it has
	// one (see blockCtx.sparePools).
	poolsShared bool
	spare       map[string]uint64
}

// setPool sets a pool's balance, copying a borrowed Pools map first.
func (s *Supply) setPool(name string, v uint64) {
	if s.poolsShared {
		s.Pools, s.spare, s.poolsShared = copyPools(s.spare, s.Pools), nil, false
	}
	s.Pools[name] = v
}

func (s Supply) clone() Supply {
	c := s
	c.poolsShared, c.spare = false, nil
	c.Pools = copyPools(nil, s.Pools)
	return c
}

// copyPools copies pools into dst, emptied first, or into a new map when dst is nil.
func copyPools(dst, pools map[string]uint64) map[string]uint64 {
	if dst == nil {
		dst = make(map[string]uint64, len(pools))
	}
	clear(dst)
	for k, v := range pools {
		dst[k] = v
	}
	return dst
}

// Total adds every bucket; it equals Genesis when the books balance.
func (s Supply) Total() (uint64, error) {
	t := s.Liquid
	var err error
	for _, v := range []uint64{s.Staked, s.Unbonding, s.Escrowed, s.Burned} {
		if t, err = add(t, v); err != nil {
			return 0, err
		}
	}
	for _, name := range sortedKeys(s.Pools) {
		if t, err = add(t, s.Pools[name]); err != nil {
			return 0, err
		}
	}
	return t, nil
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Pool names (module accounts).
const (
	PoolRewards          = "network_rewards"   // 40% at genesis, emitted per verified GPU-hour
	PoolEcosystem        = "ecosystem"         // the governance-controlled treasury
	PoolBuyback          = "buyback"           // 15% of fees, burned or moved each quarter
	PoolValidatorRewards = "validator_rewards" // undistributed remainder of validators' fee share
)

// RouterWeights are the placement score weights in basis points (whitepaper §3.3).
type RouterWeights struct {
	Compute     uint32 `json:"compute"`
	Latency     uint32 `json:"latency"`
	Reliability uint32 `json:"reliability"`
	Price       uint32 `json:"price"`
}

// Params are the chain's tunable numbers; governance can change every one of them.
type Params struct {
	BurnBP            uint64 `json:"burn_bp"`             // burned from every transfer and job payment
	FeeBP             uint64 `json:"fee_bp"`              // protocol fee on job payments
	MinNodeStake      uint64 `json:"min_node_stake"`      // uomni
	MinValidatorStake uint64 `json:"min_validator_stake"` // uomni
	MinBilledMillis   uint64 `json:"min_billed_millis"`   // smallest GPU time billed per job
	UnbondingSeconds  uint64 `json:"unbonding_seconds"`   // block time until unstaked tokens return

	// Fee split: validators (pro rata to stake) and the buy-back fund; the rest goes to
	// the ecosystem treasury.
	ValidatorFeeShareBP uint64 `json:"validator_fee_share_bp"`
	BuybackFeeShareBP   uint64 `json:"buyback_fee_share_bp"`
	QuarterBlocks       uint64 `json:"quarter_blocks"` // buy-back settles every this many blocks
	BuybackBurn         bool   `json:"buyback_burn"`   // true: burn the fund; false: move it to the treasury

	// Network rewards: RewardPerGPUHour uomni per verified GPU-hour, multiplied by
	// (10000-RewardDecayBP)/10000 every RewardDecayBlocks blocks.
	RewardPerGPUHour  uint64 `json:"reward_per_gpu_hour"`
	RewardDecayBP     uint64 `json:"reward_decay_bp"`
	RewardDecayBlocks uint64 `json:"reward_decay_blocks"`

	// Slashing.
	FraudSlashBP       uint64 `json:"fraud_slash_bp"`        // of a node's stake, for a result proven wrong
	VerifierRewardBP   uint64 `json:"verifier_reward_bp"`    // of the slashed amount, to the verifiers; the rest burns
	FalseAttestSlashBP uint64 `json:"false_attest_slash_bp"` // of a validator's stake, for attesting a wrong result
	DoubleSignSlashBP  uint64 `json:"double_sign_slash_bp"`  // of a validator's stake, for CometBFT double-sign evidence

	// Governance.
	GovQuorumBP     uint64 `json:"gov_quorum_bp"`     // share of all stake that must vote
	GovThresholdBP  uint64 `json:"gov_threshold_bp"`  // share of yes among yes+no needed to pass
	GovVotingBlocks uint64 `json:"gov_voting_blocks"` // voting period

	// Off-chain services read these from the chain.
	RouterWeights RouterWeights  `json:"router_weights"`
	AuditRateBP   uint64         `json:"audit_rate_bp"`  // share of challenge-level jobs audited
	CommitteeSize uint64         `json:"committee_size"` // validators drawn per verification; 0 = all
	Routers       []keys.Address `json:"routers"`
	// ValidatorAuditBP is the share of settled jobs whose passing attestations carry
	// transcripts that are drawn for an audit of validators (attestaudit.go).
	ValidatorAuditBP uint64 `json:"validator_audit_bp"`
}

// DefaultParams follow the whitepaper where it gives numbers (2% burn, 500 and 10,000
// OMNI minimum stakes, 10% of fees to validators, 15% to buy-backs, quarterly). The rest
// are our defaults until governance sets them: a 5% protocol fee, 21 days unbonding,
// 10% fraud slash, 5% double-sign slash, 33.4% quorum and 50% threshold over ~1 day, and
// 1% of checked jobs' attestations audited.
func DefaultParams() Params {
	return Params{
		BurnBP: 200, FeeBP: 500,
		MinNodeStake: 500 * UomniPerOMNI, MinValidatorStake: 10_000 * UomniPerOMNI,
		MinBilledMillis: 1000, UnbondingSeconds: 21 * 24 * 3600,
		ValidatorFeeShareBP: 1000, BuybackFeeShareBP: 1500,
		QuarterBlocks: 7_776_000, BuybackBurn: true, // ~90 days of 1 s blocks
		RewardPerGPUHour: 1 * UomniPerOMNI, RewardDecayBP: 2000, RewardDecayBlocks: 31_536_000, // -20% a year
		FraudSlashBP: 1000, VerifierRewardBP: 5000, FalseAttestSlashBP: 500, DoubleSignSlashBP: 500,
		GovQuorumBP: 3340, GovThresholdBP: 5000, GovVotingBlocks: 86_400,
		RouterWeights: RouterWeights{Compute: 3500, Latency: 3000, Reliability: 2000, Price: 1500},
		AuditRateBP:   100, CommitteeSize: 0, ValidatorAuditBP: 100,
	}
}

// Validate checks that the parameters can be applied.
func (p Params) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMsg}, args...)...)
	}
	for name, bp := range map[string]uint64{
		"burn_bp": p.BurnBP, "fee_bp": p.FeeBP, "validator_fee_share_bp": p.ValidatorFeeShareBP,
		"buyback_fee_share_bp": p.BuybackFeeShareBP, "reward_decay_bp": p.RewardDecayBP,
		"fraud_slash_bp": p.FraudSlashBP, "verifier_reward_bp": p.VerifierRewardBP,
		"false_attest_slash_bp": p.FalseAttestSlashBP, "double_sign_slash_bp": p.DoubleSignSlashBP,
		"gov_quorum_bp": p.GovQuorumBP, "gov_threshold_bp": p.GovThresholdBP, "audit_rate_bp": p.AuditRateBP,
		"validator_audit_bp": p.ValidatorAuditBP,
	} {
		if bp > BasisPoints {
			return bad("%s is %d, above 10000 basis points", name, bp)
		}
	}
	switch {
	case p.BurnBP+p.FeeBP > BasisPoints:
		return bad("burn_bp + fee_bp exceeds 10000")
	case p.ValidatorFeeShareBP+p.BuybackFeeShareBP > BasisPoints:
		return bad("validator_fee_share_bp + buyback_fee_share_bp exceeds 10000")
	case p.MinNodeStake == 0 || p.MinValidatorStake < UomniPerOMNI:
		return bad("min_node_stake must be positive and min_validator_stake at least 1 OMNI")
	case p.QuarterBlocks == 0 || p.RewardDecayBlocks == 0 || p.GovVotingBlocks == 0:
		return bad("quarter_blocks, reward_decay_blocks and gov_voting_blocks must be positive")
	case uint64(p.RouterWeights.Compute)+uint64(p.RouterWeights.Latency)+uint64(p.RouterWeights.Reliability)+uint64(p.RouterWeights.Price) != BasisPoints:
		return bad("router_weights must add up to 10000")
	}
	for _, r := range p.Routers {
		if err := r.Validate(); err != nil {
			return bad("router: %v", err)
		}
	}
	return nil
}

// Store key layout.
var (
	keyChainID    = []byte("meta/chain_id")
	keyParams     = []byte("meta/params")
	keySupply     = []byte("meta/supply")
	prefixAcct    = []byte("acct/")
	prefixNode    = []byte("node/")
	prefixVal     = []byte("val/")
	prefixJob     = []byte("job/")
	prefixJobExp  = []byte("jobexp/")
	prefixVest    = []byte("vest/")
	prefixValCon  = []byte("valcons/")
	prefixUnbond  = []byte("unbond/")
	prefixProp    = []byte("prop/")
	prefixPropEnd = []byte("propend/")
	prefixVote    = []byte("vote/")
	keyCounters   = []byte("meta/counters")
	keyBlockTime  = []byte("meta/block_time")
)

// counters hands out sequential ids.
type counters struct {
	Unbonding uint64 `json:"unbonding"`
	Proposal  uint64 `json:"proposal"`
}

func unbondKey(mature int64, id uint64) []byte {
	return []byte(fmt.Sprintf("%s%016x/%016x", prefixUnbond, uint64(mature), id))
}
func propKey(id uint64) []byte { return []byte(fmt.Sprintf("%s%016x", prefixProp, id)) }
func propEndKey(h int64, id uint64) []byte {
	return []byte(fmt.Sprintf("%s%016x/%016x", prefixPropEnd, uint64(h), id))
}
func voteKey(id uint64, a keys.Address) []byte {
	return []byte(fmt.Sprintf("%s%016x/%s", prefixVote, id, a))
}
func valConsKey(consAddr []byte) []byte {
	return append(append([]byte{}, prefixValCon...), []byte(hex.EncodeToString(consAddr))...)
}

func acctKey(a keys.Address) []byte { return joinKey(prefixAcct, string(a)) }
func nodeKey(a keys.Address) []byte { return joinKey(prefixNode, string(a)) }
func valKey(a keys.Address) []byte  { return joinKey(prefixVal, string(a)) }
func jobKey(id string) []byte       { return joinKey(prefixJob, id) }

// joinKey is prefix followed by id, in one allocation.
func joinKey(prefix []byte, id string) []byte {
	return append(append(make([]byte, 0, len(prefix)+len(id)), prefix...), id...)
}

// jobExpKey sorts by deadline so expiry scans stop at the first future entry.
func jobExpKey(deadline int64, id string) []byte {
	k := make([]byte, 0, len(prefixJobExp)+17+len(id))
	k = append(k, prefixJobExp...)
	k = appendHex16(k, uint64(deadline))
	return append(append(k, '/'), id...)
}

// appendHex16 appends v as 16 lower-case hex digits, so keys sort by v.
func appendHex16(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

// state is typed access to a Reader (and, through kv, writes).
type state struct {
	kv kv
}

func getRecord[T any](r Reader, key []byte) (T, bool, error) {
	var v T
	b, err := r.Get(key)
	if err != nil || b == nil {
		return v, false, err
	}
	if err := decodeRecord(b, &v); err != nil {
		return v, false, fmt.Errorf("corrupt state at %q: %w", key, err)
	}
	return v, true, nil
}

func (s state) put(key []byte, v any) error {
	b, err := encodeRecord(v)
	if err != nil {
		return err
	}
	switch w := s.kv.(type) { // a fresh buffer: no need to copy it
	case *overlay:
		w.put(string(key), b)
		return nil
	case *journal:
		w.put(string(key), b)
		return nil
	}
	return s.kv.Set(key, b)
}

func (s state) account(a keys.Address) (Account, error) {
	acc, _, err := getRecord[Account](s.kv, acctKey(a))
	acc.Address = a
	return acc, err
}

func (s state) setAccount(acc Account) error { return s.put(acctKey(acc.Address), acc) }

func (s state) params() (Params, error) {
	p, ok, err := getRecord[Params](s.kv, keyParams)
	if err == nil && !ok {
		err = fmt.Errorf("params missing: chain not initialised")
	}
	return p, err
}

func (s state) supply() (Supply, error) {
	sp, ok, err := getRecord[Supply](s.kv, keySupply)
	if err == nil && !ok {
		err = fmt.Errorf("supply missing: chain not initialised")
	}
	return sp, err
}

func (s state) job(id string) (Job, error) {
	j, ok, err := getRecord[Job](s.kv, jobKey(id))
	if err == nil && !ok {
		err = fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	return j, err
}

func (s state) node(a keys.Address) (Node, bool, error) { return getRecord[Node](s.kv, nodeKey(a)) }

func (s state) validator(a keys.Address) (Validator, bool, error) {
	return getRecord[Validator](s.kv, valKey(a))
}

func eachRecord[T any](r Reader, prefix []byte, fn func(T) bool) error {
	var derr error
	err := r.Iterate(prefix, func(_, b []byte) bool {
		var v T
		if derr = decodeRecord(b, &v); derr != nil {
			return false
		}
		return fn(v)
	})
	if err == nil {
		err = derr
	}
	return err
}

// validators lists every validator record in address order.
func (s state) validators() ([]Validator, error) {
	var out []Validator
	err := eachRecord(s.kv, prefixVal, func(v Validator) bool { out = append(out, v); return true })
	return out, err
}

// unbondings visits an account's unbonding entries.
func (s state) unbondings(a keys.Address, fn func(Unbonding) bool) error {
	return eachRecord(s.kv, unbondAcctPrefix(a), fn)
}

func unbondAcctPrefix(a keys.Address) []byte {
	return []byte(fmt.Sprintf("unbondacct/%s/", a))
}

func unbondAcctKey(a keys.Address, id uint64) []byte {
	return []byte(fmt.Sprintf("unbondacct/%s/%016x", a, id))
}

func (s state) counters() (counters, error) {
	c, _, err := getRecord[counters](s.kv, keyCounters)
	return c, err
}

// stakeOf is an account's voting weight: its bonded node and validator stake.
func (s state) stakeOf(a keys.Address) (uint64, error) {
	n, _, err := s.node(a)
	if err != nil {
		return 0, err
	}
	v, _, err := s.validator(a)
	return n.Stake + v.Stake, err
}

// credit adds to a balance and keeps the supply's Liquid bucket in step.
func (s state) credit(sp *Supply, a keys.Address, amt uint64) error {
	if amt == 0 {
		return nil
	}
	acc, err := s.account(a)
	if err != nil {
		return err
	}
	if acc.Balance, err = add(acc.Balance, amt); err != nil {
		return err
	}
	if sp.Liquid, err = add(sp.Liquid, amt); err != nil {
		return err
	}
	return s.setAccount(acc)
}

// debit takes from a balance. Unless lockedOK (staking), tokens that vesting still locks
// at time now cannot leave the account.
func (s state) debit(sp *Supply, a keys.Address, amt uint64, now int64, lockedOK bool) error {
	acc, err := s.account(a)
	if err != nil {
		return err
	}
	if acc.Balance < amt {
		return fmt.Errorf("%w: %s has %s OMNI, needs %s OMNI", ErrInsufficientFunds, a, FormatOMNI(acc.Balance), FormatOMNI(amt))
	}
	if !lockedOK && acc.Vesting != nil {
		locked, err := s.lockedInBalance(acc, now)
		if err != nil {
			return err
		}
		if acc.Balance-amt < locked {
			return fmt.Errorf("%w: %s has %s OMNI still vesting; only %s OMNI can move (locked tokens can be staked)",
				ErrLocked, a, FormatOMNI(locked), FormatOMNI(acc.Balance-locked))
		}
	}
	acc.Balance -= amt
	if sp.Liquid, err = sub(sp.Liquid, amt); err != nil {
		return fmt.Errorf("liquid supply underflow: %w", err)
	}
	return s.setAccount(acc)
}

// pool moves amt into (or, with a negative sign via takePool, out of) a module account.
func addPool(sp *Supply, name string, amt uint64) error {
	v, err := add(sp.Pools[name], amt)
	if err != nil {
		return err
	}
	sp.setPool(name, v)
	return nil
}

func takePool(sp *Supply, name string, amt uint64) error {
	if sp.Pools[name] < amt {
		return fmt.Errorf("%w: pool %s holds %s OMNI, needs %s", ErrInsufficientFunds, name, FormatOMNI(sp.Pools[name]), FormatOMNI(amt))
	}
	sp.setPool(name, sp.Pools[name]-amt)
	return nil
}
