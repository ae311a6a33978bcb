package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Workload kinds.
const (
	WorkloadTensor    = "tensor"
	WorkloadContainer = "container"
)

// Workload names what runs. For "tensor" workloads Kernel is a built-in verifiable kernel
// (e.g. "matmul-int8") and Inputs are its operands in order.
//
// A "container" workload runs Image with Command (the image's own entrypoint and command
// when empty) and Env, its inputs mounted read-only under /inputs by name, no network, and
// everything it writes to /outputs returned as one deterministic tar (see
// OutputArchive). ImageID, the sha256 image id, pins exactly which image every replica runs;
// ImageArchive instead names an input that carries a `docker save` tarball of the image,
// for nodes that do not have it (no node pulls from a registry).
type Workload struct {
	Kind         string   `json:"kind"`
	Kernel       string   `json:"kernel,omitempty"`
	Image        string   `json:"image,omitempty"`
	ImageID      string   `json:"image_id,omitempty"`
	ImageArchive string   `json:"image_archive,omitempty"`
	Command      []string `json:"command,omitempty"`
	Env          []string `json:"env,omitempty"`
}

// Input is one content-addressed input.
type Input struct {
	Name   string `json:"name"`
	Digest string `json:"digest"` // sha256:<hex>
	Size   int64  `json:"size"`
}

// Resources a job needs from one node. A container job may ask for no GPU (GPUs 0): it
// still takes one of the node's job slots, of which a node has one per GPU. CPUMilli and
// MemoryMiB bound a container (zero: the node's defaults).
type Resources struct {
	GPUs      int    `json:"gpus"`
	VRAMMiB   uint64 `json:"vram_mib"`
	CPUMilli  uint64 `json:"cpu_milli,omitempty"`
	MemoryMiB uint64 `json:"memory_mib,omitempty"`
}

// Slots is how many of a node's job slots (one per GPU) the job holds: its GPUs, and at
// least one.
func (r Resources) Slots() int { return max(r.GPUs, 1) }

// Placement constrains where a job may run.
type Placement struct {
	Region       string `json:"region,omitempty"`
	LatE6        int32  `json:"lat_e6,omitempty"`
	LonE6        int32  `json:"lon_e6,omitempty"`
	MaxLatencyMs uint32 `json:"max_latency_ms,omitempty"`
}

// JobSpec is everything a consumer asks for. Its SHA-256 (see Hash) is committed on chain
// in the consumer's signed create_job transaction, so nobody can alter it after signing.
type JobSpec struct {
	Workload        Workload  `json:"workload"`
	Inputs          []Input   `json:"inputs"`
	Resources       Resources `json:"resources"`
	Placement       Placement `json:"placement"`
	MaxPricePerHour uint64    `json:"max_price_per_hour"` // uomni per GPU-hour
	Budget          uint64    `json:"budget"`             // uomni locked in escrow
	TimeoutSeconds  uint64    `json:"timeout_seconds"`
	Verification    string    `json:"verification"`
	// ZK is the public statement of a zk job (and only of one); absent, a spec hashes as
	// it did before the level existed.
	ZK *ZKStatement `json:"zk,omitempty"`
}

// ZKStatement is what a zk job's proof is checked against, committed by the consumer with
// the spec: the model's shape (a zk.Shape ID such as "64x32s7-32x10s6"), the model's
// commitment and the salted commitment of the input, each 64 lower-case hex digits
// (zk.ModelCommitment, zk.InputCommitment). The node proves that its output is the
// committed model applied to the committed input; a validator checks that from this and
// the output alone, without reading the model or the input.
type ZKStatement struct {
	Shape           string `json:"shape"`
	ModelCommitment string `json:"model_commitment"`
	InputCommitment string `json:"input_commitment"`
}

// Hash is the spec's commitment: sha256 over its JSON encoding (Go's encoder writes struct
// fields in declaration order, so the encoding is canonical for a given spec).
func (s JobSpec) Hash() string {
	b, _ := json.Marshal(s) // cannot fail: plain data
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// FieldError says which field of a request is wrong and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrInvalidSpec is wrapped by every FieldError returned from Validate.
var ErrInvalidSpec = errors.New("invalid job spec")

func (e *FieldError) Unwrap() error { return ErrInvalidSpec }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Limits on what a spec may ask for.
const (
	MaxInputs      = 16
	MaxInputBytes  = 64 << 20
	MaxTimeout     = 7 * 24 * 3600
	MaxCommandArgs = 256
	MaxEnv         = 128
	// MaxWorkloadText bounds the image, each argument and each environment entry.
	MaxWorkloadText = 4096
)

// Verification levels. Freivalds' check applies to matrix products only; redundant runs
// the job on three nodes of distinct operators and pays on two matching outputs, so it
// is the level for containers, whose work nothing else can check. Challenge (matrix
// products) hides challenge rows among the first input's rows, which the router commits
// to before dispatch and reveals after the result, and audits a share of jobs in full.
// Audit (any job) has a validator re-execute a governable share of jobs, drawn after the
// result is committed; the others settle unchecked. ZK is for the mlp-int8 kernel only:
// its node returns a Groth16 proof that its output is the committed model applied to the
// committed input (JobSpec.ZK), and validators verify the proof. The mlp-int8 kernel also
// runs at freivalds and audit on [model, X], a batch: its node returns every layer's
// accumulators, which validators check layer by layer.
const (
	VerifyFreivald  = "freivalds"
	VerifyRedundant = "redundant"
	VerifyChallenge = "challenge"
	VerifyAudit     = "audit"
	VerifyZK        = "zk"
)

// KernelMLPInt8 is the int8 MLP kernel, tensor.KernelMLPInt8 (this package imports nothing
// internal): the one kernel the zk level proves, inputs [model, salted input], and at
// freivalds and audit a batch inference, inputs [model, X].
const KernelMLPInt8 = "mlp-int8"

// KernelMatMulFP32 is the float32 matrix product, tensor.KernelMatMulFloat32. Its output
// depends on the order of the node's sums, so it is checked within a rounding bound at the
// freivalds and audit levels; the challenge level (exact int8 rows) and the redundant level
// (outputs compared bit for bit) refuse it.
const KernelMatMulFP32 = "matmul-fp32"

// zkHex is the length of a commitment's hex, and maxZKShape bounds a shape's name.
const (
	zkHex      = 64
	maxZKShape = 256
)

// Validate checks a spec and names the first field that is wrong.
func (s JobSpec) Validate() error {
	w := s.Workload
	switch w.Kind {
	case WorkloadTensor:
		if w.Kernel == "" {
			return fieldErr("workload.kernel", "required for tensor workloads")
		}
		if w.Image != "" || w.ImageID != "" || w.ImageArchive != "" || len(w.Command) > 0 || len(w.Env) > 0 {
			return fieldErr("workload", "image, command and env are for container workloads")
		}
		if len(s.Inputs) == 0 {
			return fieldErr("inputs", "at least one input is required")
		}
	case WorkloadContainer:
		if err := s.validateContainer(); err != nil {
			return err
		}
	case "":
		return fieldErr("workload.kind", "required (one of: tensor, container)")
	default:
		return fieldErr("workload.kind", "%q is not supported (one of: tensor, container)", w.Kind)
	}
	if len(s.Inputs) > MaxInputs {
		return fieldErr("inputs", "at most %d inputs", MaxInputs)
	}
	for i, in := range s.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		if !validInputName(in.Name) {
			return fieldErr(f+".name", "must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'")
		}
		for _, prev := range s.Inputs[:i] {
			if prev.Name == in.Name {
				return fieldErr(f+".name", "%q is given twice", in.Name)
			}
		}
		if !validDigest(in.Digest) {
			return fieldErr(f+".digest", "must be sha256:<64 lower-case hex digits>")
		}
		if in.Size <= 0 || in.Size > MaxInputBytes {
			return fieldErr(f+".size", "must be between 1 and %d bytes", MaxInputBytes)
		}
	}
	minGPUs := 1
	if w.Kind == WorkloadContainer {
		minGPUs = 0
	}
	if s.Resources.GPUs < minGPUs || s.Resources.GPUs > 64 {
		return fieldErr("resources.gpus", "must be between %d and 64", minGPUs)
	}
	if s.Placement.LatE6 < -90_000_000 || s.Placement.LatE6 > 90_000_000 {
		return fieldErr("placement.lat_e6", "latitude out of range")
	}
	if s.Placement.LonE6 < -180_000_000 || s.Placement.LonE6 > 180_000_000 {
		return fieldErr("placement.lon_e6", "longitude out of range")
	}
	if s.MaxPricePerHour == 0 {
		return fieldErr("max_price_per_hour", "must be positive (uomni per GPU-hour)")
	}
	if s.Budget == 0 {
		return fieldErr("budget", "must be positive (uomni)")
	}
	if s.TimeoutSeconds == 0 || s.TimeoutSeconds > MaxTimeout {
		return fieldErr("timeout_seconds", "must be between 1 and %d", MaxTimeout)
	}
	switch {
	case s.Verification == VerifyZK:
		return s.validateZK()
	case s.ZK != nil:
		return fieldErr("zk", "is for verification %q only", VerifyZK)
	case w.Kernel == KernelMLPInt8 && (s.Verification == VerifyFreivald || s.Verification == VerifyAudit):
		if len(s.Inputs) != 2 {
			return fieldErr("inputs", "%s takes 2 inputs [model, X], got %d", KernelMLPInt8, len(s.Inputs))
		}
	case w.Kernel == KernelMLPInt8:
		return fieldErr("verification", "the %s kernel is checked layer by layer (%q, or %q for a share of jobs) or by its proof (%q)", KernelMLPInt8, VerifyFreivald, VerifyAudit, VerifyZK)
	case w.Kernel == KernelMatMulFP32 && s.Verification == VerifyChallenge:
		return fieldErr("verification", "%q hides exact int8 rows and cannot check %s: use %q or %q", VerifyChallenge, KernelMatMulFP32, VerifyFreivald, VerifyAudit)
	case w.Kernel == KernelMatMulFP32 && s.Verification == VerifyRedundant:
		return fieldErr("verification", "%q compares outputs bit for bit, and honest GPUs sum %s in different orders: use %q or %q", VerifyRedundant, KernelMatMulFP32, VerifyFreivald, VerifyAudit)
	case s.Verification == VerifyRedundant || s.Verification == VerifyAudit:
	case (s.Verification == VerifyFreivald || s.Verification == VerifyChallenge) && w.Kind == WorkloadTensor:
	case s.Verification == VerifyFreivald || s.Verification == VerifyChallenge:
		return fieldErr("verification", "%s checks matrix products only; a container job needs %q or %q", s.Verification, VerifyRedundant, VerifyAudit)
	default:
		return fieldErr("verification", "%q is not supported (one of: %s, %s, %s, %s, %s)", s.Verification, VerifyChallenge, VerifyFreivald, VerifyAudit, VerifyRedundant, VerifyZK)
	}
	return nil
}

// validateZK checks a zk job: the mlp-int8 kernel on [model, input], and a statement whose
// fields are well formed (the node and the validators parse the shape and check that the
// commitments are field elements).
func (s JobSpec) validateZK() error {
	if s.Workload.Kind != WorkloadTensor || s.Workload.Kernel != KernelMLPInt8 {
		return fieldErr("verification", "%q proves the %s kernel only", VerifyZK, KernelMLPInt8)
	}
	if len(s.Inputs) != 2 {
		return fieldErr("inputs", "%s takes 2 inputs [model, input], got %d", KernelMLPInt8, len(s.Inputs))
	}
	z := s.ZK
	if z == nil {
		return fieldErr("zk", "required for verification %q: the shape and the model and input commitments", VerifyZK)
	}
	if z.Shape == "" || len(z.Shape) > maxZKShape || strings.Trim(z.Shape, "0123456789xs-") != "" {
		return fieldErr("zk.shape", "must name the model's shape, e.g. 64x32s7-32x10s6")
	}
	for _, c := range []struct{ field, hex string }{{"zk.model_commitment", z.ModelCommitment}, {"zk.input_commitment", z.InputCommitment}} {
		if len(c.hex) != zkHex || strings.Trim(c.hex, "0123456789abcdef") != "" {
			return fieldErr(c.field, "must be %d lower-case hex digits", zkHex)
		}
	}
	return nil
}

// validateContainer checks a container workload: an image named or carried, and bounded
// text everywhere a node will pass it to its engine.
func (s JobSpec) validateContainer() error {
	w := s.Workload
	if w.Kernel != "" {
		return fieldErr("workload.kernel", "is for tensor workloads")
	}
	if w.Image == "" && w.ImageID == "" {
		return fieldErr("workload.image", "required (or workload.image_id) for container workloads")
	}
	if len(w.Image) > MaxWorkloadText || strings.ContainsAny(w.Image, " \t\n\x00") {
		return fieldErr("workload.image", "must be an image reference (name:tag) without spaces")
	}
	if w.ImageID != "" && !validDigest(w.ImageID) {
		return fieldErr("workload.image_id", "must be sha256:<64 lower-case hex digits>")
	}
	if w.ImageArchive != "" && !slices.ContainsFunc(s.Inputs, func(in Input) bool { return in.Name == w.ImageArchive }) {
		return fieldErr("workload.image_archive", "names no input (%q)", w.ImageArchive)
	}
	if len(w.Command) > MaxCommandArgs {
		return fieldErr("workload.command", "at most %d arguments", MaxCommandArgs)
	}
	for i, a := range w.Command {
		if len(a) > MaxWorkloadText || strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("workload.command[%d]", i), "at most %d bytes and no NUL", MaxWorkloadText)
		}
	}
	if len(w.Env) > MaxEnv {
		return fieldErr("workload.env", "at most %d entries", MaxEnv)
	}
	for i, e := range w.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || len(e) > MaxWorkloadText || strings.ContainsRune(e, 0) {
			return fieldErr(fmt.Sprintf("workload.env[%d]", i), "must be KEY=VALUE, at most %d bytes", MaxWorkloadText)
		}
		if strings.HasPrefix(k, "NVIDIA_") {
			return fieldErr(fmt.Sprintf("workload.env[%d]", i), "NVIDIA_* is reserved for the node's runtime")
		}
	}
	return nil
}

// validInputName reports whether name can name an input file: it becomes /inputs/<name>
// in a container, so it is one plain path element.
func validInputName(name string) bool {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	for _, c := range hexPart {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// DigestOf returns the sha256:<hex> digest of data.
func DigestOf(data []byte) string {
	h := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(h[:])
}

// SubmitJobRequest is POST /v1/jobs. Tx is the consumer's signed create_job transaction
// (committing to Spec.Hash(), the budget and price ceiling); InputData carries inline
// inputs by name, each checked against its digest. A declared input left out of InputData
// is uploaded after the job is created (Client.UploadInput), which suits large inputs: the
// JSON body of this request is limited (16 MiB by default).
type SubmitJobRequest struct {
	Spec      JobSpec           `json:"spec"`
	InputData map[string][]byte `json:"input_data,omitempty"`
	Tx        []byte            `json:"tx"`
	// Async asks for the answer once the chain's mempool has admitted the escrow, before
	// its block, rather than once the block has committed it. The tx may then carry any
	// sequence up to ledger.MaxPending past the account's committed one, so a consumer can
	// submit its next job (the next sequence) at once: many jobs a block rather than one.
	// Until the escrow commits the job reads as queued; an escrow its block rejects (the
	// budget no longer there, say) makes the job failed, with the reason, and nothing is
	// escrowed. The budgets of a consumer's Async jobs waiting for their block may
	// together be no more than its balance (ErrInsufficientFunds).
	Async bool `json:"async,omitempty"`
}

// Job statuses as the API reports them (chain statuses plus router progress).
const (
	// StatusAwaitingInputs: the escrow is committed and some declared inputs were not sent
	// inline; the consumer uploads them with PUT /v1/jobs/{id}/inputs/{name}.
	StatusAwaitingInputs = "awaiting_inputs"
	StatusQueued         = "queued"
	StatusAssigned       = "assigned"
	StatusRunning        = "running"
	StatusComputed       = "computed"
	StatusSettled        = "settled"
	StatusFailed         = "failed"
	StatusCancelled      = "cancelled"
	StatusExpired        = "expired"
)

// Statuses lists every status, in a job's order.
var Statuses = []string{StatusAwaitingInputs, StatusQueued, StatusAssigned, StatusRunning, StatusComputed,
	StatusSettled, StatusFailed, StatusCancelled, StatusExpired}

// Final reports whether a status is terminal.
func Final(status string) bool {
	switch status {
	case StatusSettled, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Scores are the placement score components in basis points (0..10000).
type Scores struct {
	Compute     uint32 `json:"compute"`
	Latency     uint32 `json:"latency"`
	Reliability uint32 `json:"reliability"`
	Price       uint32 `json:"price"`
	Total       uint32 `json:"total"`
}

// Payment is how the escrow was divided at settlement, in uomni.
type Payment struct {
	Budget       uint64 `json:"budget"`
	Cost         uint64 `json:"cost"`
	PaidToNode   uint64 `json:"paid_to_node"`
	Burned       uint64 `json:"burned"`
	ProtocolFee  uint64 `json:"protocol_fee"`
	Refunded     uint64 `json:"refunded"`
	BilledMillis uint64 `json:"billed_millis"`
	// NetworkReward is emitted to the node from the network-rewards pool on top of its
	// payment, per verified GPU-hour; it does not come out of the budget.
	NetworkReward uint64 `json:"network_reward"`
}

// Event is one step of a job's progress.
type Event struct {
	Time    time.Time `json:"time"`
	Stage   string    `json:"stage"`
	Message string    `json:"message"`
}

// Job is GET /v1/jobs/{id}.
type Job struct {
	ID           string            `json:"id"`
	Consumer     string            `json:"consumer"`
	Status       string            `json:"status"`
	Node         string            `json:"node,omitempty"`
	Scores       *Scores           `json:"scores,omitempty"`
	ResultDigest string            `json:"result_digest,omitempty"`
	Verified     bool              `json:"verified"`
	Verdict      string            `json:"verdict,omitempty"`
	Payment      *Payment          `json:"payment,omitempty"`
	Txs          map[string]string `json:"txs,omitempty"` // stage -> tx hash
	// Kind is the workload's kind (tensor or container), where the router knows the spec.
	Kind string `json:"kind,omitempty"`
	// Verification is the job's level; a redundant job's runs are its Replicas. Audited
	// says the chain drew a challenge or audit job for a full check; an audit job that was
	// not drawn settles unchecked, and is not Verified.
	Verification string    `json:"verification,omitempty"`
	Audited      bool      `json:"audited,omitempty"`
	Replicas     []Replica `json:"replicas,omitempty"`
	Attempts     int       `json:"attempts"`
	Error        string    `json:"error,omitempty"`
	Events       []Event   `json:"events,omitempty"`
}

// JobQuery filters and pages GET /v1/jobs: jobs in Status (any when empty), newest first,
// at most Limit (DefaultJobListLimit when 0, at most MaxJobListLimit), after the job id
// After (the Next of the previous page).
type JobQuery struct {
	Status string
	Limit  int
	After  string
}

// Limits of GET /v1/jobs.
const (
	DefaultJobListLimit = 50
	MaxJobListLimit     = 500
)

// JobList is GET /v1/jobs: the signer's jobs, without their events. Next, when set, is
// the After of the next page.
type JobList struct {
	Jobs []Job  `json:"jobs"`
	Next string `json:"next,omitempty"`
}

// JobLogs is GET /v1/jobs/{id}/logs: what Node wrote to stdout and stderr while it ran the
// job, from position From to Next (ask again from Next for more). Nodes lists the nodes
// that logged (a redundant job's replicas each do). Truncated means the router no longer
// holds the start asked for (it keeps the last MiB of each); EOF that the node's log is
// complete; Final that the job has ended.
type JobLogs struct {
	JobID     string   `json:"job_id"`
	Node      string   `json:"node,omitempty"`
	Nodes     []string `json:"nodes,omitempty"`
	From      int64    `json:"from"`
	Next      int64    `json:"next"`
	Data      []byte   `json:"data,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
	EOF       bool     `json:"eof,omitempty"`
	Final     bool     `json:"final,omitempty"`
}

// RouterStats is GET /v1/stats: one router's recent work, from the jobs it holds. Jobs
// counts them by status; the window counts are over the last WindowSeconds; Waiting jobs
// have no node yet; placement latency is from escrow to the first node chosen.
type RouterStats struct {
	Router           string         `json:"router"`
	WindowSeconds    int64          `json:"window_seconds"`
	Jobs             map[string]int `json:"jobs"`
	FinishedInWindow int            `json:"finished_in_window"`
	SettledInWindow  int            `json:"settled_in_window"`
	SettledPerMinute float64        `json:"settled_per_minute"`
	Waiting          int            `json:"waiting"`
	Running          int            `json:"running"`
	Placements       int            `json:"placements_in_window"`
	PlacementP50Ms   float64        `json:"placement_p50_ms"`
	PlacementP90Ms   float64        `json:"placement_p90_ms"`
}

// Replica is one run of a redundant job: its node, the output digest it committed, and
// what it was paid once the job settled (nothing for a replica outvoted or too late).
type Replica struct {
	Node         string `json:"node"`
	ResultDigest string `json:"result_digest,omitempty"`
	// Paid is the replica's share of the job's payment, out of the budget; Reward is what
	// the network-rewards pool emitted to it on top (Payment.NetworkReward's share).
	Paid   uint64 `json:"paid,omitempty"`
	Reward uint64 `json:"reward,omitempty"`
}

// Node is one entry of GET /v1/nodes: its chain record joined with live router state.
type Node struct {
	ID            string    `json:"id"`
	GPUModel      string    `json:"gpu_model"`
	GPUs          uint32    `json:"gpus"`
	FreeGPUs      int       `json:"free_gpus"`
	VRAMMiB       uint64    `json:"vram_mib"`
	TFLOPS        float64   `json:"tflops"`
	Region        string    `json:"region"`
	LatE6         int32     `json:"lat_e6,omitempty"` // where it declared it is, millionths of a degree
	LonE6         int32     `json:"lon_e6,omitempty"`
	PricePerHour  uint64    `json:"price_per_hour"`
	Stake         uint64    `json:"stake"`
	Status        string    `json:"status"` // on chain: active, or inactive (stake below the minimum)
	Online        bool      `json:"online"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitempty"` // by the router's clock
	Running       []string  `json:"running,omitempty"`        // jobs its last heartbeat listed
	// Containers is the node's container runtime (docker, or process when its jobs run
	// unsandboxed), from its last heartbeat; empty when it runs tensor kernels only.
	Containers   string `json:"containers,omitempty"`
	Unsandboxed  bool   `json:"unsandboxed,omitempty"`
	JobsVerified uint64 `json:"jobs_verified"`
	JobsFailed   uint64 `json:"jobs_failed"`
}

// Account is GET /v1/accounts/{address}.
type Account struct {
	Address string `json:"address"`
	Balance uint64 `json:"balance"`
	Seq     uint64 `json:"seq"`
}

// Supply is GET /v1/chain/supply, in uomni; the buckets add up to Total at every height.
type Supply struct {
	Total     uint64            `json:"total"`
	Liquid    uint64            `json:"liquid"`
	Vesting   uint64            `json:"vesting"`
	Staked    uint64            `json:"staked"`
	Unbonding uint64            `json:"unbonding"`
	Escrowed  uint64            `json:"escrowed"`
	Pools     map[string]uint64 `json:"pools"`
	Burned    uint64            `json:"burned"`
}

// Error is the body of every non-2xx response.
type Error struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
	Code  string `json:"code,omitempty"`
}
