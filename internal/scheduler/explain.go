package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
// 3 are beyond the latency ceiling (50 ms)".
func (m *misfits) err(job *Job) error {
	if m.nodes == 0 {
		return fmt.Errorf("%w: the snapshot has no nodes", ErrNoFeasibleNode)
	}
	var reasons []reason
	for r := rejectExcluded; r < numReasons; r++ {
		if m.counts[r] > 0 {
			reasons = append(reasons, r)
		}
	}
	slices.SortStableFunc(reasons, func(a, b reason) int { return cmp.Compare(m.counts[b], m.counts[a]) })
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = r.explain(m.counts[r], job)
	}
	return fmt.Errorf("%w: all %d nodes rejected: %s", ErrNoFeasibleNode, m.nodes, strings.Join(parts, ", "))
}

// explain says what n nodes failing r have in common, with the job's limit.
func (r reason) explain(n int, j *Job) string {
	one := n == 1
	verb := func(singular, plural string) string {
		if one {
			return strconv.Itoa(n) + " " + singular
		}
		return strconv.Itoa(n) + " " + plural
	}
	switch r {
	case rejectExcluded:
		return verb("is", "are") + " excluded by the job"
	case rejectFreeGPUs:
		return verb("has", "have") + fmt.Sprintf(" too few free GPUs (need %d)", j.GPUs)
	case rejectVRAM:
		return verb("has", "have") + " too little VRAM (need " + mebibytes(j.VRAMMiB) + " per GPU)"
	case rejectTFLOPS:
		return verb("is", "are") + " too slow (need " + decimal(j.MinTFLOPSMilli, 1000) + " TFLOPS per GPU)"
	case rejectRegion:
		return verb("is", "are") + " outside region " + j.Region
	case rejectPrice:
		return verb("bids", "bid") + " above the price ceiling (" + decimal(j.MaxPricePerHourUomni, 1_000_000) + " OMNI per GPU-hour)"
	case rejectLatencyUnknown:
		return verb("has", "have") + " no known latency, and the job has a ceiling"
	case rejectLatency:
		return verb("is", "are") + " beyond the latency ceiling (" + decimal(uint64(j.MaxLatencyMicros), 1000) + " ms)"
	}
	return verb("is", "are") + " " + r.String()
}

// mebibytes writes whole GiB as such ("24 GiB") and anything else in MiB.
func mebibytes(mib uint64) string {
	if mib%1024 == 0 {
		return strconv.FormatUint(mib/1024, 10) + " GiB"
	}
	return strconv.FormatUint(mib, 10) + " MiB"
}

// decimal writes v/unit without trailing zeros: decimal(1_500_000,
// 1_000_000) is "1.5". unit is a power of ten.
func decimal(v, unit uint64) string {
	whole := strconv.FormatUint(v/unit, 10)
	if v%unit == 0 {
		return whole
	}
	digits := len(strconv.FormatUint(unit, 10)) - 1
	frac := strconv.FormatUint(unit+v%unit, 10)[1:] // zero-padded to digits
	return whole + "." + strings.TrimRight(frac[:digits], "0")
}
