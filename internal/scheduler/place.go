package scheduler

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// request is a validated job with what the checkers look up per node.
type request struct {
	job     *Job
	exclude []string // sorted, for binary search
}

// Place chooses nodes for job from a snapshot: every node runs through the
// feasibility checkers, the feasible ones are scored, and the best
// job.Replicas nodes of distinct operators are placed, best first. Order is
// by Total descending, then node ID ascending, then snapshot position, so
// the same inputs always give the same plan.
//
// Nodes with an empty Operator count as one operator, so that unattributed
// nodes can never satisfy a redundancy requirement together.
//
// On ErrNoFeasibleNode or ErrNotEnoughOperators the returned Plan still
// lists the rejections, and for the latter the placements that could be
// made, so the caller can explain the failure.
func Place(job Job, nodes []Node, w Weights) (Plan, error) {
	if err := w.Validate(); err != nil {
		return Plan{}, err
	}
	if err := job.Validate(); err != nil {
		return Plan{}, err
	}
	req := &request{job: &job, exclude: slices.Sorted(slices.Values(job.Exclude))}

	fits, rejected, bestTFLOPS := filter(req, nodes)
	plan := Plan{Rejected: rejected}
	if len(fits) == 0 {
		return plan, noFeasibleNode(len(nodes), rejected)
	}
	top := rank(&job, nodes, fits, bestTFLOPS, w)
	plan.Placements = make([]Placement, len(top))
	for i, c := range top {
		plan.Placements[i] = Placement{NodeID: c.node.ID, Scores: c.scores}
	}
	if len(top) < job.Replicas {
		return plan, fmt.Errorf("%w: need %d distinct operators, found %d among %d feasible nodes",
			ErrNotEnoughOperators, job.Replicas, len(top), len(fits))
	}
	return plan, nil
}

// noFeasibleNode builds the error that counts why nodes were rejected, most
// common reason first.
func noFeasibleNode(total int, rejected []Rejection) error {
	if total == 0 {
		return fmt.Errorf("%w: the snapshot has no nodes", ErrNoFeasibleNode)
	}
	counts := map[string]int{}
	for _, r := range rejected {
		counts[r.Reason]++
	}
	reasons := make([]string, 0, len(counts))
	for reason := range counts {
		reasons = append(reasons, reason)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), strings.Compare(a, b))
	})
	parts := make([]string, len(reasons))
	for i, reason := range reasons {
		parts[i] = fmt.Sprintf("%d %s", counts[reason], reason)
	}
	return fmt.Errorf("%w: all %d nodes rejected: %s", ErrNoFeasibleNode, total, strings.Join(parts, ", "))
}
