package ledger

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/omnisync/omnisync/internal/keys"
)

// MsgTransfer moves Amount uomni from the signer to To; BurnBP of it is destroyed on the way.
type MsgTransfer struct {
	To     keys.Address `json:"to"`
	Amount uint64       `json:"amount"`
}

// Hardware is what a node declares about itself at registration.
type Hardware struct {
	GPUModel    string `json:"gpu_model"`
	GPUs        uint32 `json:"gpus"`
	VRAMMiB     uint64 `json:"vram_mib"`
	TFLOPSMilli uint64 `json:"tflops_milli"`
	Region      string `json:"region"`
	LatE6       int32  `json:"lat_e6"`
	LonE6       int32  `json:"lon_e6"`
}

// MsgRegisterNode stakes Stake uomni from the signer and registers it as a compute node
// bidding PricePerHour uomni per GPU-hour. Registering again adds stake and updates the
// price and hardware.
type MsgRegisterNode struct {
	Stake        uint64   `json:"stake"`
	PricePerHour uint64   `json:"price_per_hour"`
	Hardware     Hardware `json:"hardware"`
}

// Verification levels a job may ask for. Freivalds: one node computes and a committee of
// validators checks its result with Freivalds' algorithm. Redundant: the router places the
// job on RedundantReplicas nodes, each seals its result and reveals it once all have
// sealed, and the ledger pays every replica that reveals the result at least
// RedundantQuorum of them agree on; it is the level for work nothing else can check.
// Challenge: the router hides challenge rows in a tensor job's input and commits to them
// when it assigns the job (MsgAssignJob.Challenge); after the node commits its result the
// router reveals them (MsgRevealChallenge) and the committee checks those rows, and the
// whole product too when the job is audited. Audit: one node computes; the block that
// records its result decides, by its hash, whether the job is audited (AuditRateBP of
// jobs): an audited job's committee re-executes it, any other settles at once. ZK: on
// chain a zk job is a freivalds job (one node, a committee attests, a failure slashes);
// its committee verifies the Groth16 proof the node returned with its output instead of
// recomputing anything, and states the model's operations.
const (
	VerifyFreivalds = "freivalds"
	VerifyRedundant = "redundant"
	VerifyChallenge = "challenge"
	VerifyAudit     = "audit"
	VerifyZK        = "zk"
)

// verificationLevels are the levels MsgCreateJob accepts.
var verificationLevels = []string{VerifyChallenge, VerifyFreivalds, VerifyAudit, VerifyRedundant, VerifyZK}

// A redundant job runs on RedundantReplicas distinct nodes and settles on the result digest
// RedundantQuorum or more of them reveal: once all have revealed, or at its deadline.
const (
	RedundantReplicas = 3
	RedundantQuorum   = 2
)

// MsgCreateJob locks Budget uomni in escrow for a job whose full spec hashes to SpecHash.
type MsgCreateJob struct {
	SpecHash        string `json:"spec_hash"`
	Budget          uint64 `json:"budget"`
	MaxPricePerHour uint64 `json:"max_price_per_hour"`
	Verification    string `json:"verification"`
	TimeoutSeconds  uint64 `json:"timeout_seconds"`
}

// MsgAssignJob records the router's placement of a job on a node. For a freivalds job the
// node replaces any earlier one. For a redundant job it is one more replica, or, with
// Replaces, the replacement of a replica that has not sealed a result (the router
// re-placing work whose node failed); once all have sealed the replicas are fixed. Replaces
// must be empty for a freivalds job.
//
// A challenge job's assignment carries Challenge, the router's commitment to the challenge
// rows it hid in the input it dispatches (ChallengeCommitment); every other level's
// carries none. A challenge job assigned again keeps its first commitment unless the new
// assignment brings another.
type MsgAssignJob struct {
	JobID     string       `json:"job_id"`
	Node      keys.Address `json:"node"`
	ScoreBP   uint32       `json:"score_bp"`
	Replaces  keys.Address `json:"replaces,omitempty"`
	Challenge string       `json:"challenge,omitempty"`
}

// MsgCommitResult is an assigned node's commitment to its output and the GPU time it used.
// The node of a freivalds job commits its ResultDigest. A replica of a redundant job
// commits only a Seal, ResultSeal of its digest, and reveals the digest later
// (MsgRevealResult): commits are public, and a digest committed in the open could be
// copied by a replica that never ran the job. Exactly one of the two is set.
type MsgCommitResult struct {
	JobID        string `json:"job_id"`
	ResultDigest string `json:"result_digest,omitempty"`
	Seal         string `json:"seal,omitempty"`
	GPUMillis    uint64 `json:"gpu_millis"`
}

// MsgRevealResult opens a redundant job's replica's seal: ResultDigest is the digest it
// sealed. Reveals open once all RedundantReplicas replicas have sealed (RevealsOpen), so no
// replica can seal a digest it has seen revealed, and the job is decided once all have
// revealed, or at its deadline on the reveals it has.
type MsgRevealResult struct {
	JobID        string `json:"job_id"`
	ResultDigest string `json:"result_digest"`
}

// MsgRevealChallenge opens a challenge job's commitment once its node has committed a
// result: Salt (64 hex digits), Input (the digest of the matrix the node was given, the
// consumer's with the challenge rows in it), Rows (the challenge rows' indexes in it,
// as the verify package encodes them) and Expected (the digest of their expected output
// rows). The ledger checks that they hash to the commitment (ChallengeCommitment); the
// committee checks the rows. Only a router may reveal.
type MsgRevealChallenge struct {
	JobID    string `json:"job_id"`
	Salt     string `json:"salt"`
	Input    string `json:"input"`
	Rows     string `json:"rows"`
	Expected string `json:"expected"`
}

// MaxChallengeRowsText bounds MsgRevealChallenge.Rows.
const MaxChallengeRowsText = 16 << 10

// MsgAttest is a validator's verdict on a committed result. Ops is the kernel's operation
// count the validator computed from the job's spec and inputs (tensor.MatMulOps for a
// matrix product): the node is billed for that work at its registered rate, not for the
// GPU time it reports (SettlementFor). A passing attestation must state it; a failing
// one may, and it is not used. A container job has no operation count: a validator that
// audited one by running it again states instead the milliseconds its run took (Millis),
// and an audited container job is billed no more than the passing attesters' median.
//
// Transcript shows the work behind a pass (verify.AttestTranscript: the digest of its
// check's first round, bound to the validator's address). A pass that states Ops on a job
// whose committee runs Freivalds' check (transcriptRequired) must carry one, so that an
// audit of the job's attestations can tell whether this validator checked (attestaudit.go).
type MsgAttest struct {
	JobID        string `json:"job_id"`
	ResultDigest string `json:"result_digest"`
	Pass         bool   `json:"pass"`
	Reason       string `json:"reason,omitempty"`
	Ops          uint64 `json:"ops,omitempty"`
	Millis       uint64 `json:"millis,omitempty"`
	Transcript   string `json:"transcript,omitempty"`
}

// MsgCancelJob lets the consumer withdraw a job whose result has not been committed (for a
// redundant job: no replica has sealed one).
type MsgCancelJob struct {
	JobID string `json:"job_id"`
}

func validateDigest(field, d string) error {
	const prefix = "sha256:"
	if !strings.HasPrefix(d, prefix) || len(d) != len(prefix)+64 {
		return fmt.Errorf("%w: %s must be sha256:<64 hex digits>", ErrInvalidMsg, field)
	}
	for _, c := range d[len(prefix):] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w: %s must be lower-case hex", ErrInvalidMsg, field)
		}
	}
	return nil
}

func validateJobID(id string) error {
	if !strings.HasPrefix(id, "job-") || len(id) != 20 {
		return fmt.Errorf("%w: job_id %q is not a job id", ErrInvalidMsg, id)
	}
	return nil
}

// ValidateBasic checks a message without state.
func (m Msg) ValidateBasic() error {
	switch {
	case m.Transfer != nil:
		if err := m.Transfer.To.Validate(); err != nil {
			return fmt.Errorf("%w: to: %v", ErrInvalidMsg, err)
		}
		if m.Transfer.Amount == 0 {
			return fmt.Errorf("%w: transfer amount must be positive", ErrInvalidAmount)
		}
	case m.RegisterNode != nil:
		r := m.RegisterNode
		if r.Stake == 0 {
			return fmt.Errorf("%w: stake must be positive", ErrInvalidAmount)
		}
		if r.PricePerHour == 0 {
			return fmt.Errorf("%w: price_per_hour must be positive", ErrInvalidMsg)
		}
		if r.Hardware.GPUs == 0 || r.Hardware.VRAMMiB == 0 || r.Hardware.TFLOPSMilli == 0 {
			return fmt.Errorf("%w: hardware must declare gpus, vram_mib and tflops_milli", ErrInvalidMsg)
		}
		if len(r.Hardware.GPUModel) > 64 || len(r.Hardware.Region) > 32 {
			return fmt.Errorf("%w: gpu_model or region too long", ErrInvalidMsg)
		}
	case m.CreateJob != nil:
		c := m.CreateJob
		if err := validateDigest("spec_hash", c.SpecHash); err != nil {
			return err
		}
		if c.Budget == 0 {
			return fmt.Errorf("%w: budget must be positive", ErrInvalidAmount)
		}
		if c.MaxPricePerHour == 0 {
			return fmt.Errorf("%w: max_price_per_hour must be positive", ErrInvalidMsg)
		}
		if !slices.Contains(verificationLevels, c.Verification) {
			return fmt.Errorf("%w: verification %q is not supported (want one of %s)", ErrInvalidMsg, c.Verification, strings.Join(verificationLevels, ", "))
		}
		if c.TimeoutSeconds == 0 || c.TimeoutSeconds > 7*24*3600 {
			return fmt.Errorf("%w: timeout_seconds must be between 1 and 604800", ErrInvalidMsg)
		}
	case m.AssignJob != nil:
		if err := validateJobID(m.AssignJob.JobID); err != nil {
			return err
		}
		if err := m.AssignJob.Node.Validate(); err != nil {
			return fmt.Errorf("%w: node: %v", ErrInvalidMsg, err)
		}
		if m.AssignJob.ScoreBP > uint32(BasisPoints) {
			return fmt.Errorf("%w: score_bp above 10000", ErrInvalidMsg)
		}
		if r := m.AssignJob.Replaces; r != "" {
			if err := r.Validate(); err != nil {
				return fmt.Errorf("%w: replaces: %v", ErrInvalidMsg, err)
			}
			if r == m.AssignJob.Node {
				return fmt.Errorf("%w: a replica cannot replace itself", ErrInvalidMsg)
			}
		}
		if c := m.AssignJob.Challenge; c != "" {
			if err := validateDigest("challenge", c); err != nil {
				return err
			}
		}
	case m.CommitResult != nil:
		c := m.CommitResult
		if err := validateJobID(c.JobID); err != nil {
			return err
		}
		if (c.ResultDigest == "") == (c.Seal == "") {
			return fmt.Errorf("%w: a commit carries result_digest (freivalds) or seal (redundant), exactly one", ErrInvalidMsg)
		}
		if c.Seal != "" {
			return validateDigest("seal", c.Seal)
		}
		return validateDigest("result_digest", c.ResultDigest)
	case m.RevealResult != nil:
		if err := validateJobID(m.RevealResult.JobID); err != nil {
			return err
		}
		return validateDigest("result_digest", m.RevealResult.ResultDigest)
	case m.Attest != nil:
		if err := validateJobID(m.Attest.JobID); err != nil {
			return err
		}
		if len(m.Attest.Reason) > 256 {
			return fmt.Errorf("%w: reason longer than 256 bytes", ErrInvalidMsg)
		}
		if m.Attest.Pass && m.Attest.Ops == 0 && m.Attest.Millis == 0 {
			return fmt.Errorf("%w: a passing attestation states the operation count it verified (ops), or for a container the milliseconds its run took (millis)", ErrInvalidMsg)
		}
		if t := m.Attest.Transcript; t != "" {
			if !m.Attest.Pass {
				return fmt.Errorf("%w: only a passing attestation carries a transcript", ErrInvalidMsg)
			}
			if err := validateDigest("transcript", t); err != nil {
				return err
			}
		}
		return validateDigest("result_digest", m.Attest.ResultDigest)
	case m.RevealChallenge != nil:
		return m.RevealChallenge.validate()
	case m.CancelJob != nil:
		return validateJobID(m.CancelJob.JobID)
	case m.Stake != nil:
		return m.Stake.validate()
	case m.Unstake != nil:
		return m.Unstake.validate()
	case m.Propose != nil:
		return m.Propose.validate()
	case m.Vote != nil:
		return m.Vote.validate()
	case m.CapacityReport != nil:
		return m.CapacityReport.validate()
	case m.ReportAttestation != nil:
		return m.ReportAttestation.validate()
	case m.AssignJobs != nil || m.AttestJobs != nil || m.CommitResults != nil:
		return validateBatch(m)
	default:
		return fmt.Errorf("%w: no message", ErrInvalidMsg)
	}
	return nil
}

func (m *MsgRevealChallenge) validate() error {
	if err := validateJobID(m.JobID); err != nil {
		return err
	}
	if b, err := hex.DecodeString(m.Salt); err != nil || len(b) != 32 || hex.EncodeToString(b) != m.Salt {
		return fmt.Errorf("%w: salt must be 64 lower-case hex digits", ErrInvalidMsg)
	}
	if m.Rows == "" || len(m.Rows) > MaxChallengeRowsText {
		return fmt.Errorf("%w: rows must be set and at most %d bytes", ErrInvalidMsg, MaxChallengeRowsText)
	}
	if err := validateDigest("input", m.Input); err != nil {
		return err
	}
	return validateDigest("expected", m.Expected)
}
