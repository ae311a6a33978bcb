// Package zk proves, with Groth16 over BN254 (gnark), that an output vector is a committed
// int8 MLP applied to a private input: the `zk` verification level of issue #13.
//
// What a proof says. For public (model commitment, input commitment, output) it shows that
// the prover knows weights, biases, an int8 input and a salt such that the weights and
// biases hash to the model commitment, the salt and input hash to the input commitment, and
// [Model.Forward] of that input is the output, computed with the exact integer arithmetic
// of this package (multiplications, the bias, the floor shift, ReLU and the clamp to int8 are
// all constrained; every int8 and int32 witness is range-checked). The input stays private:
// the verifier sees only its salted hash, which the consumer who chose the input can
// recompute, so a node cannot prove the model on an input of its own choosing. The weights
// are private witnesses too; only their hash is public.
//
// Keys. A circuit depends on the model's [Shape] only, so one setup serves every model of
// that shape; the model commitment (which also hashes the shape) pins the model.
// [KeyCache] makes keys once per shape and keeps them in memory and, optionally, in a
// directory shared by a deployment's nodes and validators; verifiers read verifying keys
// only ([KeyCache.VerifyingKey]) and never make them.
//
// Jobs. The model and its encoding are tensor's ([Model] is tensor.MLP, shared with the
// freivalds level, which checks the kernel layer by layer without a proof); the zk level's
// own blobs are encoded here (blob.go): the salted input ([Input.MarshalBinary]) and the
// node's output, a [Result] of the output vector and the proof; the decoders are fuzzed.
//
// What it must not do: this is the only package that imports gnark or gnark-crypto (an
// architecture test enforces it), so the ledger, scheduler and other cores never link a
// prover. It does no network I/O; the key cache's directory is its only file access.
package zk
