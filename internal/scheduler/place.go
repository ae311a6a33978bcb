package scheduler

import (
	"fmt"
	"slices"
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
		return plan, tallyMisfits(req, nodes).err(&job)
	}
	top := rank(&job, nodes, fits, bestTFLOPS, w)
	plan.Placements = placements(top)
	if len(top) < job.Replicas {
		return plan, notEnoughOperators(&job, len(top), len(fits))
	}
	return plan, nil
}

func placements(top []ranked) []Placement {
	out := make([]Placement, len(top))
	for i, c := range top {
		out[i] = Placement{NodeID: c.node.ID, Scores: c.scores}
	}
	return out
}

func notEnoughOperators(job *Job, placed, feasible int) error {
	return fmt.Errorf("%w: need %d distinct operators, found %d among %d feasible nodes",
		ErrNotEnoughOperators, job.Replicas, placed, feasible)
}
