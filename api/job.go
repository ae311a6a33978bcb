package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Workload kinds.
const (
	WorkloadTensor = "tensor"
)

// Workload names what runs. For "tensor" workloads Kernel is a built-in verifiable kernel
// (e.g. "matmul-int8") and Inputs are its operands in order.
type Workload struct {
	Kind   string `json:"kind"`
	Kernel string `json:"kernel,omitempty"`
}

// Input is one content-addressed input.
type Input struct {
	Name   string `json:"name"`
	Digest string `json:"digest"` // sha256:<hex>
	Size   int64  `json:"size"`
}

// Resources a job needs from one node.
type Resources struct {
	GPUs    int    `json:"gpus"`
	VRAMMiB uint64 `json:"vram_mib"`
}

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
	VerifyFreivald = "freivalds"
)

// Validate checks a spec and names the first field that is wrong.
func (s JobSpec) Validate() error {
	switch s.Workload.Kind {
	case WorkloadTensor:
		if s.Workload.Kernel == "" {
			return fieldErr("workload.kernel", "required for tensor workloads")
		}
	case "":
		return fieldErr("workload.kind", "required (one of: tensor)")
	default:
		return fieldErr("workload.kind", "%q is not supported (one of: tensor)", s.Workload.Kind)
	}
	if len(s.Inputs) == 0 {
		return fieldErr("inputs", "at least one input is required")
	}
	if len(s.Inputs) > MaxInputs {
		return fieldErr("inputs", "at most %d inputs", MaxInputs)
	}
	for i, in := range s.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		if in.Name == "" {
			return fieldErr(f+".name", "required")
		}
		if !validDigest(in.Digest) {
			return fieldErr(f+".digest", "must be sha256:<64 lower-case hex digits>")
		}
		if in.Size <= 0 || in.Size > MaxInputBytes {
			return fieldErr(f+".size", "must be between 1 and %d bytes", MaxInputBytes)
		}
	}
	if s.Resources.GPUs < 1 || s.Resources.GPUs > 64 {
		return fieldErr("resources.gpus", "must be between 1 and 64")
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
	if s.Verification != VerifyFreivald {
		return fieldErr("verification", "%q is not supported (one of: freivalds)", s.Verification)
	}
	return nil
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
	Attempts     int               `json:"attempts"`
	Error        string            `json:"error,omitempty"`
	Events       []Event           `json:"events,omitempty"`
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
	PricePerHour  uint64    `json:"price_per_hour"`
	Stake         uint64    `json:"stake"`
	Status        string    `json:"status"` // on chain: active, or inactive (stake below the minimum)
	Online        bool      `json:"online"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitempty"` // by the router's clock
	Running       []string  `json:"running,omitempty"`        // jobs its last heartbeat listed
	JobsVerified  uint64    `json:"jobs_verified"`
	JobsFailed    uint64    `json:"jobs_failed"`
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
