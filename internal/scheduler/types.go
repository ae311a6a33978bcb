package scheduler

import "fmt"

// BasisPoints is 100%: every score and weight is an integer in 0..10000.
const BasisPoints = 10000

// MaxReplicas bounds Job.Replicas. Redundant verification needs three;
// the bound keeps selection linear in the number of nodes.
const MaxReplicas = 64

// Weights are the scoring weights in basis points; they must sum to 10000.
// On a network they are chain parameters.
type Weights struct {
	Compute, Latency, Reliability, Price uint32
}

// DefaultWeights returns the whitepaper's weights: 0.35 compute, 0.30
// latency, 0.20 reliability, 0.15 price.
func DefaultWeights() Weights {
	return Weights{Compute: 3500, Latency: 3000, Reliability: 2000, Price: 1500}
}

// Validate reports whether the weights sum to exactly 10000 bp.
func (w Weights) Validate() error {
	sum := uint64(w.Compute) + uint64(w.Latency) + uint64(w.Reliability) + uint64(w.Price)
	if sum != BasisPoints {
		return fmt.Errorf("%w: weights sum to %d bp, want %d", ErrInvalidWeights, sum, BasisPoints)
	}
	return nil
}

// Location is a point on Earth in microdegrees. The zero value means
// unknown.
type Location struct {
	LatE6, LonE6 int32
}

// Known reports whether l is set and within range.
func (l Location) Known() bool {
	return l != Location{} &&
		l.LatE6 >= -90_000_000 && l.LatE6 <= 90_000_000 &&
		l.LonE6 >= -180_000_000 && l.LonE6 <= 180_000_000
}

// Node is one supplier in the router's snapshot. GPU figures are per GPU:
// VRAMMiB and TFLOPSMilli describe each of its free GPUs.
type Node struct {
	ID, Operator string
	FreeGPUs     int
	// GPUs is how many GPUs the node has, free or not; 0 when unknown.
	// Placement reads only FreeGPUs; the Index keeps nodes that may have
	// many free apart (Index.big), and a GPUs below FreeGPUs is no error.
	GPUs        int
	VRAMMiB     uint64
	TFLOPSMilli uint64 // TFLOPS × 1000
	Region      string
	Location    Location
	// RTTMicros is the measured round trip to the consumer's region, or 0
	// when not measured.
	RTTMicros uint32
	// ReliabilityBP (0..10000) comes from uptime and verification history.
	ReliabilityBP uint32
	// PricePerHourUomni is the node's bid per GPU-hour.
	PricePerHourUomni uint64
}

// Job is what is to be placed. VRAMMiB and MinTFLOPSMilli are per GPU.
type Job struct {
	GPUs                 int
	VRAMMiB              uint64
	MinTFLOPSMilli       uint64
	MaxPricePerHourUomni uint64
	Region               string // "" = any; otherwise must equal Node.Region
	Origin               Location
	MaxLatencyMicros     uint32 // 0 = no ceiling
	Replicas             int    // distinct operators required, 1..MaxReplicas
	Exclude              []string
}

// Validate reports why no snapshot could satisfy the job.
func (j *Job) Validate() error {
	switch {
	case j.GPUs < 1:
		return fmt.Errorf("%w: gpus %d, need at least 1", ErrInvalidJob, j.GPUs)
	case j.Replicas < 1 || j.Replicas > MaxReplicas:
		return fmt.Errorf("%w: replicas %d, want 1..%d", ErrInvalidJob, j.Replicas, MaxReplicas)
	case j.MaxPricePerHourUomni == 0:
		return fmt.Errorf("%w: price ceiling per gpu-hour must be positive", ErrInvalidJob)
	case j.Origin != Location{} && !j.Origin.Known():
		return fmt.Errorf("%w: origin %d,%d µdeg is out of range", ErrInvalidJob, j.Origin.LatE6, j.Origin.LonE6)
	}
	return nil
}

// Scores are a node's per-criterion scores and their weighted total, in
// basis points.
type Scores struct {
	Compute, Latency, Reliability, Price, Total uint32
}

// Placement is one chosen node.
type Placement struct {
	NodeID string
	Scores Scores
}

// Rejection says why a node was infeasible.
type Rejection struct {
	NodeID string
	Reason string
}

// Plan is the scheduler's decision: the chosen nodes, best first, and every
// rejected node with its reason, in snapshot order.
type Plan struct {
	Placements []Placement
	Rejected   []Rejection
}
