// Package chain runs the OMNI ledger on CometBFT: it initialises validator homes and the
// genesis file, adapts ledger.App to ABCI 2.0, embeds a CometBFT node in-process, and gives
// daemons a Client for broadcasting transactions and querying state over the local or the
// HTTP RPC, with proofs checked against committed block headers where asked (proof.go).
//
// It is the only package that imports CometBFT. It holds no consensus rules of its own: it
// translates types and owns the node's lifecycle.
package chain
