// Package protocol defines the messages the router, node daemons and validators exchange
// over NATS, and the subjects they use. Every participant (node or validator) owns the
// namespace omni.node.<id>.>, which only it may publish to (the transport package enforces
// this). Participants therefore publish heartbeats and results in their own namespace, and
// the router takes the sender's identity from the subject, never from the payload.
//
// Messages are JSON (a Dispatch or VerifyRequest may carry inputs raw after it); each has
// a Decode function that rejects malformed input, and those decoders are fuzzed.
package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omnisync/omnisync/api"
)

// BlobBucket is the content-addressed object store for inputs and outputs.
const BlobBucket = "blobs"

const nodePrefix = "omni.node."

// Wildcard subjects the router listens on.
const (
	AllHeartbeats = nodePrefix + "*.heartbeat"
	AllResults    = nodePrefix + "*.result"
	AllLogs       = nodePrefix + "*.logs"
)

// HeartbeatSubject is where a participant announces itself.
func HeartbeatSubject(id string) string { return nodePrefix + id + ".heartbeat" }

// ResultSubject is where a node reports a finished job.
func ResultSubject(id string) string { return nodePrefix + id + ".result" }

// LogSubject is where a node streams the logs of the jobs it runs.
func LogSubject(id string) string { return nodePrefix + id + ".logs" }

// SenderOf returns the participant id in a subject of the form omni.node.<id>.<verb>.
func SenderOf(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, nodePrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, ".")
	return id, ok && id != ""
}

// DispatchSubject is where a node receives job requests.
func DispatchSubject(nodeID string) string { return nodePrefix + nodeID + ".job" }

// VerifySubject is where a validator receives verification requests.
func VerifySubject(validatorID string) string { return nodePrefix + validatorID + ".verify" }

// CapacitySubject is where a validator asks a node to prove its capacity (CapacityRequest,
// then SpotRequest). It lies in the node's namespace, where the node alone subscribes,
// and ends in the asking validator's id: every participant may publish to
// omni.node.*.capacity.<its own id> and nothing else of another's (the transport package
// enforces this), so the node reads who asks from the subject, never from the payload.
func CapacitySubject(node, validator string) string {
	return nodePrefix + node + ".capacity." + validator
}

// AllCapacity is the subject a node serves its capacity challenges on.
func AllCapacity(node string) string { return CapacitySubject(node, "*") }

// PaceSubject is where routers tell every participant how often to heartbeat (Pace). Only
// a router publishes there: participants may publish in their own namespace and to
// omni.router.>, never here (the transport package enforces this).
const PaceSubject = "omni.pace"

// Pace is a router's heartbeat interval for its participants: as more participants are
// online it grows, so that the router receives a bounded number of heartbeats a second,
// and it never exceeds a third of the router's heartbeat TTL, so a participant that keeps
// the pace is not counted offline. A participant heartbeats at the slower of the pace
// and its own interval, and at once whenever its state changes.
type Pace struct {
	HeartbeatMillis int64 `json:"heartbeat_ms"`
}

// Interval is the pace as a duration.
func (p Pace) Interval() time.Duration { return time.Duration(p.HeartbeatMillis) * time.Millisecond }

// Roles a participant announces in its heartbeat.
const (
	RoleNode      = "node"
	RoleValidator = "validator"
)

// Heartbeat is published by every participant every few seconds.
type Heartbeat struct {
	ID             string    `json:"id"`
	Role           string    `json:"role"`
	GPUs           int       `json:"gpus"`
	FreeGPUs       int       `json:"free_gpus"`
	Running        []string  `json:"running,omitempty"`
	UtilizationPct int       `json:"utilization_pct"`
	Sent           time.Time `json:"sent"`
	// Containers names a node's container runtime ("docker", or "process" when jobs run
	// unsandboxed for the consumers it trusts); empty when it runs tensor kernels only.
	Containers  string `json:"containers,omitempty"`
	Unsandboxed bool   `json:"unsandboxed,omitempty"`
}

// Dispatch asks a node to run a job it was assigned on chain.
type Dispatch struct {
	JobID string `json:"job_id"`
	// Router is the dispatching router's id: its server's blob service holds the
	// node's rights to the job's inputs and output (transport.Blobs.Server).
	Router         string      `json:"router"`
	Spec           api.JobSpec `json:"spec"`
	TimeoutSeconds uint64      `json:"timeout_seconds"`
	// Cancel asks the node to stop the job if it runs it (a redundant job settled without
	// this replica); it is acknowledged whether or not the job was running.
	Cancel bool `json:"cancel,omitempty"`
	// Inputs carries, in the order of Spec.Inputs, those the router holds in memory (the
	// consumer sent them inline), nil for the rest: the node fetches only those it lacks.
	// Each is used only if it matches its digest in Spec (InlineInput). They travel raw
	// after the JSON (Encode); Inline is set by Encode.
	Inputs [][]byte `json:"-"`
	Inline []int    `json:"inline,omitempty"`
}

// DeclineNoFreeGPU is the Ack.Error of a node that has no GPU free for a dispatched job:
// a capacity race, not a fault, so the router waits and tries again rather than counting
// it as a failed attempt.
const DeclineNoFreeGPU = "no free gpu"

// Ack answers a Dispatch or a VerifyRequest.
type Ack struct {
	Accepted bool   `json:"accepted"`
	Error    string `json:"error,omitempty"`
}

// Result is a node's report that a job finished (or could not).
type Result struct {
	JobID     string `json:"job_id"`
	NodeID    string `json:"node_id"`
	Digest    string `json:"digest,omitempty"`
	GPUMillis uint64 `json:"gpu_millis,omitempty"`
	CommitTx  string `json:"commit_tx,omitempty"`
	Error     string `json:"error,omitempty"`
	// ExitCode is a container job's exit status (also in its output archive).
	ExitCode *int `json:"exit_code,omitempty"`
}

// MaxLogChunk bounds the bytes one LogChunk carries.
const MaxLogChunk = 64 << 10

// LogChunk is the next piece of a job's stdout and stderr, as a node streams it: Offset is
// where Data starts in the job's log, and EOF marks the last chunk.
type LogChunk struct {
	JobID  string `json:"job_id"`
	NodeID string `json:"node_id"`
	Offset int64  `json:"offset"`
	Data   []byte `json:"data,omitempty"`
	EOF    bool   `json:"eof,omitempty"`
}

// VerifyRequest asks a validator to check a committed result.
type VerifyRequest struct {
	JobID  string      `json:"job_id"`
	Router string      `json:"router"` // whose blob service grants the reads (as Dispatch.Router)
	Spec   api.JobSpec `json:"spec"`
	// Inputs and Inline are as Dispatch's: the job's inputs the router holds, in the
	// order of Spec.Inputs, each used only if it matches its digest there.
	Inputs [][]byte `json:"-"`
	Inline []int    `json:"inline,omitempty"`
}

// A Dispatch or VerifyRequest that carries inputs is its JSON, a NUL byte (which JSON
// text never holds), then each input carried, in the order of Spec.Inputs and as many
// bytes as Spec says it has; Inline in the JSON lists which inputs follow. The bytes
// travel raw: as base64 within the JSON, which the decoder scans byte by byte, the inputs
// of a devnet job took a validator longer to decode than to check the job.

// MaxInlineInputs bounds the bytes of the inputs a Dispatch or VerifyRequest carries, so
// that the message stays far below NATS's 1 MiB max_payload.
const MaxInlineInputs = 256 << 10

// ErrInlineMismatch means an input carried in a message does not hash to its digest.
var ErrInlineMismatch = errors.New("inline input does not match its digest")

// InlineInput is input i of those a message carries (Dispatch.Inputs or
// VerifyRequest.Inputs) when it hashes to digest, the one its spec commits to; nil when
// the message carries none for it, and ErrInlineMismatch when the bytes are not the
// input's. Either way the reader fetches the input from the blob store instead, where
// every read is checked against its digest too (JobInputs).
func InlineInput(inputs [][]byte, i int, digest string) ([]byte, error) {
	if i >= len(inputs) || inputs[i] == nil {
		return nil, nil
	}
	if api.DigestOf(inputs[i]) != digest {
		return nil, fmt.Errorf("%w: input %d of %d bytes", ErrInlineMismatch, i, len(inputs[i]))
	}
	return inputs[i], nil
}

// JobInputs is a job's inputs by the digests spec commits to: each one carried (a
// message's Inputs) that matches its digest (InlineInput), the rest fetched by get. A
// carried input that does not match is told to wrong, when not nil, and fetched. A fetch
// that fails ends it with an error that names the input.
func JobInputs(ctx context.Context, spec api.JobSpec, carried [][]byte, get func(ctx context.Context, digest string) ([]byte, error), wrong func(name string, err error)) ([][]byte, error) {
	inputs := make([][]byte, len(spec.Inputs))
	for i, in := range spec.Inputs {
		b, err := InlineInput(carried, i, in.Digest)
		if err != nil && wrong != nil {
			wrong(in.Name, err)
		}
		if b == nil {
			if b, err = get(ctx, in.Digest); err != nil {
				return nil, fmt.Errorf("fetch input %s: %w", in.Name, err)
			}
		}
		inputs[i] = b
	}
	return inputs, nil
}

// Verdict is a validator's answer after it attested on chain.
type Verdict struct {
	JobID    string `json:"job_id"`
	Pass     bool   `json:"pass"`
	Reason   string `json:"reason,omitempty"`
	AttestTx string `json:"attest_tx,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Bounds on a capacity challenge sent inline over NATS: a spot answer carries two N×N
// int32 products (OMT1-encoded, 16 bytes of header each), which for N = 256 is 512 KiB, a
// little under 700 KiB as JSON, within NATS's 1 MiB default payload.
const (
	MaxCapacityN       = 256
	MaxCapacityLinks   = 4096
	MaxCapacityProduct = 16 + 4*MaxCapacityN*MaxCapacityN
)

// CapacityRequest challenges a node to prove its declared rate (verify.CapacityChallenge):
// Seed (64 hex digits), N and Links define the chain of products, DeadlineMillis is how
// long the validator waits for the digests.
type CapacityRequest struct {
	Node           string `json:"node"`
	Seed           string `json:"seed"`
	N              int    `json:"n"`
	Links          int    `json:"links"`
	DeadlineMillis int64  `json:"deadline_ms"`
}

// CapacityAnswer is a node's answer: the digest of every link's product, in order, or why
// it has none.
type CapacityAnswer struct {
	Seed    string   `json:"seed"`
	Digests []string `json:"digests,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// SpotRequest asks a node that answered a challenge (by its seed) for the products a
// spot check of Link needs: C_{Link-1} and C_Link.
type SpotRequest struct {
	Seed string `json:"seed"`
	Link int    `json:"link"`
}

// SpotAnswer carries the OMT1 encodings of C_{Link-1} (empty for link 1) and C_Link.
type SpotAnswer struct {
	Prev  []byte `json:"prev,omitempty"`
	Cur   []byte `json:"cur,omitempty"`
	Error string `json:"error,omitempty"`
}

// validSeed reports whether s is 64 lower-case hex digits.
func validSeed(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ErrMalformed is wrapped by every decode error.
var ErrMalformed = errors.New("malformed message")

// Decode parses a message strictly: unknown fields and trailing data are errors, and a
// message without its job id or participant id is rejected.
func Decode[T Heartbeat | Dispatch | Ack | Result | LogChunk | VerifyRequest | Verdict | Pace | CapacityRequest | CapacityAnswer | SpotRequest | SpotAnswer](data []byte) (T, error) {
	var v T
	var tail []byte // the inputs after a Dispatch's or VerifyRequest's JSON
	switch any(&v).(type) {
	case *Dispatch, *VerifyRequest:
		if i := bytes.IndexByte(data, 0); i >= 0 {
			data, tail = data[:i], data[i+1:]
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return v, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	var missing string
	var err error
	switch m := any(&v).(type) {
	case *Heartbeat:
		if m.ID == "" {
			missing = "id"
		}
	case *Dispatch:
		if m.JobID == "" || m.Router == "" {
			missing = "job_id/router"
		} else if m.Inputs, err = inlineInputs(m.Inline, m.Spec, tail); err != nil {
			return v, err
		}
	case *Result:
		if m.JobID == "" || m.NodeID == "" {
			missing = "job_id/node_id"
		}
	case *LogChunk:
		switch {
		case m.JobID == "" || m.NodeID == "":
			missing = "job_id/node_id"
		case m.Offset < 0 || len(m.Data) > MaxLogChunk:
			return v, fmt.Errorf("%w: log chunk at offset %d of %d bytes (at most %d)", ErrMalformed, m.Offset, len(m.Data), MaxLogChunk)
		}
	case *VerifyRequest:
		if m.JobID == "" || m.Router == "" {
			missing = "job_id/router"
		} else if m.Inputs, err = inlineInputs(m.Inline, m.Spec, tail); err != nil {
			return v, err
		}
	case *Verdict:
		if m.JobID == "" {
			missing = "job_id"
		}
	case *Pace:
		if m.HeartbeatMillis <= 0 {
			return v, fmt.Errorf("%w: pace of %d ms (must be positive)", ErrMalformed, m.HeartbeatMillis)
		}
	case *CapacityRequest:
		if m.Node == "" || !validSeed(m.Seed) || m.N < 1 || m.N > MaxCapacityN || m.Links < 1 || m.Links > MaxCapacityLinks || m.DeadlineMillis <= 0 {
			return v, fmt.Errorf("%w: capacity request needs a node, a 64-hex-digit seed, n in 1..%d, links in 1..%d and a positive deadline", ErrMalformed, MaxCapacityN, MaxCapacityLinks)
		}
	case *CapacityAnswer:
		if !validSeed(m.Seed) || len(m.Digests) > MaxCapacityLinks || (len(m.Digests) == 0) == (m.Error == "") {
			return v, fmt.Errorf("%w: capacity answer needs its seed and digests (at most %d) or an error, not both", ErrMalformed, MaxCapacityLinks)
		}
	case *SpotRequest:
		if !validSeed(m.Seed) || m.Link < 1 || m.Link > MaxCapacityLinks {
			return v, fmt.Errorf("%w: spot request needs a seed and a link in 1..%d", ErrMalformed, MaxCapacityLinks)
		}
	case *SpotAnswer:
		if len(m.Prev) > MaxCapacityProduct || len(m.Cur) > MaxCapacityProduct || (len(m.Cur) == 0) == (m.Error == "") {
			return v, fmt.Errorf("%w: spot answer needs products of at most %d bytes or an error, not both", ErrMalformed, MaxCapacityProduct)
		}
	}
	if missing != "" {
		return v, fmt.Errorf("%w: %s is required", ErrMalformed, missing)
	}
	return v, nil
}

// inlineInputs is the inputs that follow a message's JSON (tail, nil without the NUL
// byte), as its Inline lists them: nil when it carries none, and an error when they are
// not exactly what Inline and spec say.
func inlineInputs(inline []int, spec api.JobSpec, tail []byte) ([][]byte, error) {
	if tail == nil && inline == nil {
		return nil, nil
	}
	if len(inline) == 0 {
		return nil, fmt.Errorf("%w: %d bytes after the JSON, and no inputs listed", ErrMalformed, len(tail))
	}
	if len(tail) > MaxInlineInputs {
		return nil, fmt.Errorf("%w: %d bytes of inline inputs (at most %d)", ErrMalformed, len(tail), MaxInlineInputs)
	}
	inputs := make([][]byte, len(spec.Inputs))
	prev := -1
	for _, i := range inline {
		if i <= prev || i >= len(spec.Inputs) {
			return nil, fmt.Errorf("%w: inline inputs %v of a spec of %d: want ascending indexes into it", ErrMalformed, inline, len(spec.Inputs))
		}
		size := spec.Inputs[i].Size
		if size < 0 || size > int64(len(tail)) {
			return nil, fmt.Errorf("%w: inline input %d is %d bytes, %d are left", ErrMalformed, i, size, len(tail))
		}
		inputs[i], tail = tail[:size:size], tail[size:]
		prev = i
	}
	if len(tail) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the inline inputs", ErrMalformed, len(tail))
	}
	return inputs, nil
}

// carried lists the inputs a message carries: those it has of the size spec says, while
// they fit within MaxInlineInputs.
func carried(inputs [][]byte, spec api.JobSpec) []int {
	var inline []int
	total := 0
	for i, b := range inputs {
		if b == nil || i >= len(spec.Inputs) || int64(len(b)) != spec.Inputs[i].Size || total+len(b) > MaxInlineInputs {
			continue
		}
		inline = append(inline, i)
		total += len(b)
	}
	return inline
}

// appendInputs appends to a message's JSON the inputs inline lists, after a NUL byte.
func appendInputs(msg []byte, inline []int, inputs [][]byte) []byte {
	if len(inline) == 0 {
		return msg
	}
	msg = append(msg, 0)
	for _, i := range inline {
		msg = append(msg, inputs[i]...)
	}
	return msg
}

// Encode marshals a message, with the inputs a Dispatch or VerifyRequest carries after
// its JSON (Inline is set to list them); it cannot fail for these plain types.
func Encode(v any) []byte {
	switch m := v.(type) {
	case Dispatch:
		m.Inline = carried(m.Inputs, m.Spec)
		return appendInputs(marshal(m), m.Inline, m.Inputs)
	case VerifyRequest:
		m.Inline = carried(m.Inputs, m.Spec)
		return appendInputs(marshal(m), m.Inline, m.Inputs)
	}
	return marshal(v)
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("protocol: encode %T: %v", v, err))
	}
	return b
}
