// Package verify owns Proof-of-Computation checks: given a kernel's inputs
// and a node's claimed output, it decides whether the output is right,
// without trusting the node and, where possible, without redoing the work
// (Freivalds' check costs O(n²) against the kernel's O(n³)). For the challenge level
// it also builds challenge rows to hide among a product's input rows
// (BuildChallenge), commits to them (Challenge.Commitment) and checks a node's output
// at them (CheckChallenge), recomputing the expected rows rather than trusting the
// router that hid them. A passing check carries a transcript of its first round
// (transcript.go), which an attestation states so that audits of validators can tell a
// validator that checked from one that did not.
//
// It is a deterministic core: validators on different machines must reach
// the same verdict from the same inputs and seed. It must not do I/O, read
// the clock, start goroutines or keep mutable package state, and it uses floating
// point only to check the fp32 kernel, with every rounding explicit (no fused
// multiply-add) so that validators agree bit for bit; randomness comes only from the
// caller's seed (a block hash the prover could not predict when it committed its result).
package verify
