// Package ledger is the OMNI settlement state machine: accounts, the 2% burn, node stake,
// job escrow, assignment, result commitments, validator attestations and settlement.
//
// A job is verified at one of two levels. Freivalds: one node computes, commits its result
// and a committee of validators attests it; a rejected result fails the job and slashes
// the node. Redundant: the router places the job on three distinct nodes (replacing one
// whose node fails before it seals), each commits a seal of its result (so none can copy
// another's) and reveals it once all three have sealed. Once all three have revealed, two
// or three matching results settle it, every agreeing node paid at its own price for the
// median of their GPU times (the lower of two), and three different results fail it,
// refunded, with no slash. At the deadline a job still waiting on a reveal settles the
// same way if two revealed results already match, the silent node marked failed, and
// otherwise expires, refunded.
//
// Validators are audited too (attestaudit.go): a pass of a Freivalds check carries the
// check's transcript, a share of settled jobs have their attestations drawn for audit,
// and a pass that validators holding more than a third of the eligible stake report false
// is slashed. A validator below the minimum stake sits on no committee.
//
// It is a deterministic core. It imports nothing that does I/O, reads no wall clock (block
// time arrives in Block), iterates no maps where order matters, starts no goroutines and
// uses no floats: every amount is an integer count of uomni with overflow-checked
// arithmetic. State lives in a Store (a versioned Merkle store in production, see package
// store); CometBFT is adapted to this API by package chain, so this package does not import
// CometBFT and its tests run in milliseconds.
//
// FinalizeBlock collects a block's writes in an overlay and stages them in the store's
// working set, sorted, at its end; Commit persists them. A bad transaction gets a numbered
// result Code and a log line; panics are kept for broken invariants. The records every
// transaction touches (accounts, nodes, validators, jobs) are stored in a compact binary
// form (codec.go), the rest as JSON; queries answer in JSON either way.
package ledger
