// Package tensor owns OmniSync's built-in verifiable kernels: the matrix types
// they work on, their deterministic wire encoding, and a small registry that
// lets a runtime run a kernel by name. It also owns the int8 MLP (MLP), its exact
// arithmetic and its encodings, shared by the zk level (internal/zk proves it) and the
// freivalds level (verify.CheckMLP checks its per-layer accumulators, MLPTrace).
//
// It is a deterministic core. It must not do I/O, read the clock, start
// goroutines or keep mutable package state. Integer kernel results are exact, so an
// honest node, a validator and a test all compute bit-identical outputs that package
// verify can check. The float32 kernel is deterministic here (one summation order, no
// fused multiply-add), but a node's GPU sums in another order, so verify checks it within
// a bound on the rounding error instead.
package tensor
