// Package scheduler owns OmniRouter's placement policy (whitepaper §3.3):
// which nodes can run a job, how the feasible ones are scored, and which are
// chosen. It is pure: a snapshot of nodes and a job go in, a Plan comes out,
// and the router applies it (Nomad's "decide purely, apply once").
//
// Feasibility is a pipeline of small checkers (feasible.go), ranking a set of
// scorers combined with weights in basis points (rank.go). Index (index.go)
// holds a snapshot that changes a node at a time and answers exactly as
// Place's full scan would, opening a few hundred boxes of a tree of bounds
// rather than visiting a million nodes.
//
// The package must not do I/O, read the clock, start goroutines, keep
// mutable package state or draw random numbers: the same snapshot, job and
// weights always give the same Plan, and everything that decides a
// placement is integer arithmetic. Two floating-point computations remain,
// neither part of consensus: EstimateLatencyMicros, an estimate rounded to
// whole microseconds, and the Index's bounds, which are taken with margins
// and decide only which boxes it need not open, never what it places.
package scheduler
