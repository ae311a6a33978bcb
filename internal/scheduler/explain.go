package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

// misfits explains a job that fits nowhere: how many of the snapshot's
// nodes fail each criterion. Each criterion is counted on its own, so a node
// with too little VRAM and too high a bid counts under both: the counts then
// say how many nodes each of the job's limits rules out, whatever order the
// checkers run in, and the Index can keep them with one counter per
// criterion instead of visiting every node. (Plan.Rejected, from Place,
// still gives each node's first failing checker.)
type misfits struct {
	nodes  int
	counts [numReasons]int // by reason; counts[feasibleNode] is unused
}

// tallyMisfits runs every checker on every node, not stopping at the first
// that fails.
func tallyMisfits(req *request, nodes []Node) *misfits {
	m := &misfits{nodes: len(nodes)}
	checkers := feasibilityCheckers()
	c := new(candidate)
	for i := range nodes {
		*c = candidate{node: &nodes[i]}
		for _, check := range checkers {
			m.counts[check(req, c)]++
		}
	}
	return m
}

// err is ErrNoFeasibleNode with the counts, most common first, each with
// the job's limit: "all 855 nodes rejected: 812 have too little VRAM (need
// 24 GiB per GPU), 40 bid above the price ceiling (1.5 OMNI per GPU-hour),
// 3 are beyond the latency ceiling (50 ms)". The message is appended to one
// buffer: a job that fits nowhere is answered in a few microseconds, and
// formatting each part as a string of its own took one of them.
func (m *misfits) err(job *Job) error {
	if m.nodes == 0 {
		return fmt.Errorf("%w: the snapshot has no nodes", ErrNoFeasibleNode)
	}
	reasons := make([]reason, 0, numReasons)
	for r := rejectExcluded; r < numReasons; r++ {
		if m.counts[r] > 0 {
			reasons = append(reasons, r)
		}
	}
	slices.SortStableFunc(reasons, func(a, b reason) int { return cmp.Compare(m.counts[b], m.counts[a]) })
	msg := make([]byte, 0, 64+64*len(reasons))
	msg = append(msg, "all "...)
	msg = strconv.AppendInt(msg, int64(m.nodes), 10)
	msg = append(msg, " nodes rejected: "...)
	for i, r := range reasons {
		if i > 0 {
			msg = append(msg, ", "...)
		}
		msg = r.appendExplanation(msg, m.counts[r], job)
	}
	return fmt.Errorf("%w: %s", ErrNoFeasibleNode, msg)
}

// appendExplanation appends what n nodes failing r have in common, with
// the job's limit.
func (r reason) appendExplanation(b []byte, n int, j *Job) []byte {
	b = strconv.AppendInt(b, int64(n), 10)
	verb := func(singular, plural string) []byte {
		if n == 1 {
			return append(append(b, ' '), singular...)
		}
		return append(append(b, ' '), plural...)
	}
	switch r {
	case rejectExcluded:
		return append(verb("is", "are"), " excluded by the job"...)
	case rejectFreeGPUs:
		b = append(verb("has", "have"), " too few free GPUs (need "...)
		return append(strconv.AppendInt(b, int64(j.GPUs), 10), ')')
	case rejectVRAM:
		b = append(verb("has", "have"), " too little VRAM (need "...)
		return append(appendMebibytes(b, j.VRAMMiB), " per GPU)"...)
	case rejectTFLOPS:
		b = append(verb("is", "are"), " too slow (need "...)
		return append(appendDecimal(b, j.MinTFLOPSMilli, 1000), " TFLOPS per GPU)"...)
	case rejectRegion:
		return append(append(verb("is", "are"), " outside region "...), j.Region...)
	case rejectPrice:
		b = append(verb("bids", "bid"), " above the price ceiling ("...)
		return append(appendDecimal(b, j.MaxPricePerHourUomni, 1_000_000), " OMNI per GPU-hour)"...)
	case rejectLatencyUnknown:
		return append(verb("has", "have"), " no known latency, and the job has a ceiling"...)
	case rejectLatency:
		b = append(verb("is", "are"), " beyond the latency ceiling ("...)
		return append(appendDecimal(b, uint64(j.MaxLatencyMicros), 1000), " ms)"...)
	}
	return append(append(verb("is", "are"), ' '), r.String()...)
}

// appendMebibytes writes whole GiB as such ("24 GiB") and anything else in
// MiB.
func appendMebibytes(b []byte, mib uint64) []byte {
	if mib%1024 == 0 {
		return append(strconv.AppendUint(b, mib/1024, 10), " GiB"...)
	}
	return append(strconv.AppendUint(b, mib, 10), " MiB"...)
}

// appendDecimal writes v/unit without trailing zeros: 1_500_000 over
// 1_000_000 is "1.5". unit is a power of ten.
func appendDecimal(b []byte, v, unit uint64) []byte {
	b = strconv.AppendUint(b, v/unit, 10)
	if v%unit == 0 {
		return b
	}
	b = append(b, '.')
	for frac, digit := v%unit, unit/10; frac != 0; digit /= 10 { // down to the last digit not zero
		b = append(b, byte('0'+frac/digit))
		frac %= digit
	}
	return b
}
