package scheduler

import (
	"math"
	"math/bits"
	"slices"
)

// DefaultLatencyCeilingMicros is where the latency score reaches 0 for a job
// without its own ceiling: 300 ms, roughly the worst intercontinental round
// trip, so every reachable node scores above 0.
const DefaultLatencyCeilingMicros = 300_000

// ranked is a scored candidate with its snapshot position, the last
// tie-breaker.
type ranked struct {
	node   *Node
	index  int
	scores Scores
	// opHash is a hash of node.Operator in 1..65535, or 0 when not known:
	// two candidates with different hashes have different operators, so
	// offer need not read their names (the index keeps one per node).
	opHash uint16
}

// sameOperator reports whether a and b have one operator.
func (a *ranked) sameOperator(b *ranked) bool {
	if a.opHash != b.opHash && a.opHash != 0 && b.opHash != 0 {
		return false
	}
	return a.node.Operator == b.node.Operator
}

func (a *ranked) better(b *ranked) bool {
	if a.scores.Total != b.scores.Total {
		return a.scores.Total > b.scores.Total
	}
	if a.node.ID != b.node.ID {
		return a.node.ID < b.node.ID
	}
	return a.index < b.index
}

// rank scores the feasible candidates and returns the best of each
// operator, up to job.Replicas of them, best first.
func rank(job *Job, nodes []Node, fits []feasible, bestTFLOPS uint64, w Weights) []ranked {
	top := topList{want: job.Replicas, entries: make([]ranked, 0, job.Replicas)}
	for _, f := range fits {
		x := ranked{node: &nodes[f.index], index: f.index}
		x.scores = score(job, x.node, f, bestTFLOPS, w)
		top.offer(x)
	}
	return top.entries
}

// topList keeps a sorted list rather than sorting every candidate: entries
// is always the best want of the per-operator bests offered so far, best
// first. The scan (rank) and the index (Index.Place) both select through it,
// so they agree on ties and on operators by construction.
type topList struct {
	entries []ranked
	want    int
}

// full reports whether a candidate must beat last() to enter.
func (t *topList) full() bool { return len(t.entries) == t.want }

func (t *topList) last() *ranked { return &t.entries[len(t.entries)-1] }

// offer considers x. A candidate whose operator is already listed replaces
// that entry if better; otherwise it enters only by beating the last entry,
// because an operator that was dropped had its best below everything
// listed. So the last entry, once the list is full, only ever improves: a
// candidate that cannot beat it now can never be placed.
func (t *topList) offer(x ranked) {
	top := t.entries
	if t.full() && !x.better(t.last()) {
		return
	}
	pos := slices.IndexFunc(top, func(r ranked) bool { return r.sameOperator(&x) })
	switch {
	case pos >= 0 && !x.better(&top[pos]):
		return
	case pos >= 0:
		top[pos] = x
	case len(top) < t.want:
		top = append(top, x)
		pos = len(top) - 1
	default:
		pos = len(top) - 1
		top[pos] = x
	}
	for ; pos > 0 && top[pos].better(&top[pos-1]); pos-- {
		top[pos], top[pos-1] = top[pos-1], top[pos]
	}
	t.entries = top
}

// The scorers. Each maps one criterion to 0..10000 bp with integer
// arithmetic only, so every router ranks a snapshot identically.

// computeScore is the node's per-GPU TFLOPS as a share of the fastest
// feasible node's (10000 for the fastest). VRAM is not scored: a node with
// too little is infeasible, and more than enough does not make a job faster.
func computeScore(tflops, best uint64) uint32 {
	return share(tflops, best)
}

// latencyScore falls linearly from 10000 at 0 µs to 0 at the ceiling: the
// job's own ceiling when it has one, else DefaultLatencyCeilingMicros. An
// unknown latency scores 0, so a node the router can measure is preferred
// to one it cannot.
func latencyScore(us uint32, known bool, ceiling uint32) uint32 {
	if ceiling == 0 {
		ceiling = DefaultLatencyCeilingMicros
	}
	if !known || us >= ceiling {
		return 0
	}
	return share(uint64(ceiling-us), uint64(ceiling))
}

// reliabilityScore is the node's reliability record, capped at 10000.
func reliabilityScore(bp uint32) uint32 {
	return min(bp, BasisPoints)
}

// priceScore is the share of the consumer's ceiling the bid leaves unspent:
// 10000 for a free node, 0 for a bid at the ceiling.
func priceScore(bid, ceiling uint64) uint32 {
	if bid >= ceiling {
		return 0
	}
	return share(ceiling-bid, ceiling)
}

// score runs the four scorers over a feasible node and weights them.
func score(job *Job, n *Node, f feasible, bestTFLOPS uint64, w Weights) Scores {
	return scoreOf(job, n.TFLOPSMilli, n.ReliabilityBP, n.PricePerHourUomni, f, bestTFLOPS, w)
}

// scoreOf is score for a node with these TFLOPS, reliability record and
// bid (the Index passes them from its hot data).
func scoreOf(job *Job, tflops uint64, reliabilityBP uint32, bid uint64, f feasible, bestTFLOPS uint64, w Weights) Scores {
	s := Scores{
		Compute:     computeScore(tflops, bestTFLOPS),
		Latency:     latencyScore(f.latency, f.latencyKnown, job.MaxLatencyMicros),
		Reliability: reliabilityScore(reliabilityBP),
		Price:       priceScore(bid, job.MaxPricePerHourUomni),
	}
	s.Total = total(s, w)
	return s
}

// total weights the four scores; weights sum to 10000, so the result is in
// 0..10000 (rounded down).
func total(s Scores, w Weights) uint32 {
	sum := uint64(w.Compute)*uint64(s.Compute) +
		uint64(w.Latency)*uint64(s.Latency) +
		uint64(w.Reliability)*uint64(s.Reliability) +
		uint64(w.Price)*uint64(s.Price)
	return uint32(sum / BasisPoints)
}

// share returns num/den in basis points, rounded down, for num ≤ den; 0 when
// den is 0. The product is taken in 128 bits, so any uint64 inputs are safe.
func share(num, den uint64) uint32 {
	if den == 0 {
		return 0
	}
	num = min(num, den)
	if num <= math.MaxUint64/BasisPoints {
		return uint32(num * BasisPoints / den)
	}
	hi, lo := bits.Mul64(num, BasisPoints)
	q, _ := bits.Div64(hi, lo, den) // hi < den because num ≤ den
	return uint32(q)
}
