package scheduler

import "errors"

var (
	// ErrInvalidWeights reports scoring weights that do not sum to 10000 bp.
	ErrInvalidWeights = errors.New("invalid scoring weights")
	// ErrInvalidJob reports a job that cannot be placed whatever the nodes.
	ErrInvalidJob = errors.New("invalid job")
	// ErrNoFeasibleNode reports that every node was rejected; the message
	// counts the nodes that fail each of the job's limits.
	ErrNoFeasibleNode = errors.New("no feasible node")
	// ErrNotEnoughOperators reports fewer distinct operators among the
	// feasible nodes than the job's replicas.
	ErrNotEnoughOperators = errors.New("not enough operators")
	// ErrDuplicateNode reports two nodes with one ID in an Index's
	// snapshot.
	ErrDuplicateNode = errors.New("duplicate node id")
)
