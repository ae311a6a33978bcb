package scheduler

import "slices"

// Rejection reasons, as they appear in Rejection.Reason and, counted, in the
// ErrNoFeasibleNode message.
const (
	ReasonExcluded       = "excluded by the job"
	ReasonFreeGPUs       = "not enough free gpus"
	ReasonVRAM           = "not enough vram per gpu"
	ReasonTFLOPS         = "below the minimum tflops"
	ReasonRegion         = "outside the requested region"
	ReasonPrice          = "bid above the price ceiling"
	ReasonLatencyUnknown = "latency unknown and the job has a ceiling"
	ReasonLatency        = "latency above the ceiling"
)

// reason is a checker's verdict as a small code, so that a pass over a
// million nodes records verdicts without allocating or creating pointers
// for the garbage collector to scan.
type reason uint8

const (
	feasibleNode reason = iota
	rejectExcluded
	rejectFreeGPUs
	rejectVRAM
	rejectTFLOPS
	rejectRegion
	rejectPrice
	rejectLatencyUnknown
	rejectLatency
	numReasons
)

func (r reason) String() string {
	switch r {
	case rejectExcluded:
		return ReasonExcluded
	case rejectFreeGPUs:
		return ReasonFreeGPUs
	case rejectVRAM:
		return ReasonVRAM
	case rejectTFLOPS:
		return ReasonTFLOPS
	case rejectRegion:
		return ReasonRegion
	case rejectPrice:
		return ReasonPrice
	case rejectLatencyUnknown:
		return ReasonLatencyUnknown
	case rejectLatency:
		return ReasonLatency
	default:
		return "feasible"
	}
}

// candidate is a node on its way through the pipeline, with what the
// checkers measured about it for the scorers.
type candidate struct {
	node         *Node
	latency      uint32 // µs; meaningful only when latencyKnown
	latencyKnown bool
}

// A checker says why c cannot run the job, or feasibleNode if it can.
type checker func(r *request, c *candidate) reason

// feasibilityCheckers lists the checkers in the order they run: cheap and
// specific first, the latency estimate (trigonometry) last.
func feasibilityCheckers() []checker {
	return []checker{
		checkExcluded,
		checkFreeGPUs,
		checkVRAM,
		checkTFLOPS,
		checkRegion,
		checkPrice,
		checkLatency,
	}
}

func checkExcluded(r *request, c *candidate) reason {
	if _, found := slices.BinarySearch(r.exclude, c.node.ID); found {
		return rejectExcluded
	}
	return feasibleNode
}

func checkFreeGPUs(r *request, c *candidate) reason {
	if c.node.FreeGPUs < r.job.GPUs {
		return rejectFreeGPUs
	}
	return feasibleNode
}

func checkVRAM(r *request, c *candidate) reason {
	if c.node.VRAMMiB < r.job.VRAMMiB {
		return rejectVRAM
	}
	return feasibleNode
}

func checkTFLOPS(r *request, c *candidate) reason {
	if c.node.TFLOPSMilli < r.job.MinTFLOPSMilli {
		return rejectTFLOPS
	}
	return feasibleNode
}

func checkRegion(r *request, c *candidate) reason {
	if r.job.Region != "" && c.node.Region != r.job.Region {
		return rejectRegion
	}
	return feasibleNode
}

func checkPrice(r *request, c *candidate) reason {
	if c.node.PricePerHourUomni > r.job.MaxPricePerHourUomni {
		return rejectPrice
	}
	return feasibleNode
}

// checkLatency measures the node's latency to the job's origin (the
// measured RTT when the router has one, else the distance estimate) and
// records it for the latency scorer. A node whose latency cannot be known
// is infeasible only for a job with a latency ceiling.
func checkLatency(r *request, c *candidate) reason {
	c.latency, c.latencyKnown = latencyTo(r.job.Origin, c.node)
	return latencyVerdict(r.job.MaxLatencyMicros, c.latency, c.latencyKnown)
}

// latencyVerdict is checkLatency's decision on a latency it measured.
func latencyVerdict(ceiling, us uint32, known bool) reason {
	switch {
	case ceiling == 0:
		return feasibleNode
	case !known:
		return rejectLatencyUnknown
	case us > ceiling:
		return rejectLatency
	}
	return feasibleNode
}

func latencyTo(origin Location, n *Node) (uint32, bool) {
	return latencyFrom(origin, n.RTTMicros, n.Location)
}

// latencyFrom is latencyTo for a node with this measured RTT (0: none) and
// position (the Index passes them from its hot data).
func latencyFrom(origin Location, rtt uint32, at Location) (uint32, bool) {
	if rtt > 0 {
		return rtt, true
	}
	if us := EstimateLatencyMicros(origin, at); us > 0 {
		return us, true
	}
	return 0, false
}

// feasible is a node that passed every checker, with the latency the
// pipeline measured. It holds an index, not a pointer, so a long list of
// them is not scanned by the garbage collector.
type feasible struct {
	index        int
	latency      uint32
	latencyKnown bool
}

// filter runs every node through the checkers and returns the feasible
// ones, the rejections in snapshot order, and the best TFLOPS among the
// feasible.
func filter(req *request, nodes []Node) (fits []feasible, rejected []Rejection, bestTFLOPS uint64) {
	// Verdicts are kept per node and turned into Rejections at the end, so
	// that the Rejected slice is allocated once at its final size.
	verdicts := make([]reason, len(nodes))
	checkers := feasibilityCheckers()
	c := new(candidate) // one, reused: a pointer passed to a func value escapes
	for i := range nodes {
		*c = candidate{node: &nodes[i]}
		for _, check := range checkers {
			if verdicts[i] = check(req, c); verdicts[i] != feasibleNode {
				break
			}
		}
		if verdicts[i] == feasibleNode {
			fits = append(fits, feasible{index: i, latency: c.latency, latencyKnown: c.latencyKnown})
			bestTFLOPS = max(bestTFLOPS, c.node.TFLOPSMilli)
		}
	}
	if n := len(nodes) - len(fits); n > 0 {
		rejected = make([]Rejection, 0, n)
		for i, v := range verdicts {
			if v != feasibleNode {
				rejected = append(rejected, Rejection{NodeID: nodes[i].ID, Reason: v.String()})
			}
		}
	}
	return fits, rejected, bestTFLOPS
}
