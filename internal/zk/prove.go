package zk

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	groth16 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/frontend"
)

var (
	// ErrInvalidProof is returned when a proof does not verify for the statement.
	ErrInvalidProof = errors.New("zk: invalid proof")
	// ErrMalformed is returned for bytes that are not an encoded proof or verifying key.
	ErrMalformed = errors.New("zk: malformed encoding")
)

// Input is what the consumer gives the node: the input vector and the salt of its
// commitment. Neither appears in the proof.
type Input struct {
	Values []int8
	Salt   Salt
}

// Statement is what a proof is checked against: all of it is public.
type Statement struct {
	Model  Commitment // ModelCommitment of the model the job names
	Input  Commitment // InputCommitment the consumer published with the job
	Output []int8     // the result the node committed
}

// Prove runs the model on the input and proves the result. The keys must be for the
// model's shape.
func Prove(k *Keys, m *Model, in Input) (output []int8, proof []byte, err error) {
	output, err = m.Forward(in.Values)
	if err != nil {
		return nil, nil, err
	}
	if got, want := m.Shape().ID(), k.shape.ID(); got != want {
		return nil, nil, fmt.Errorf("%w: keys are for shape %s, the model is %s", ErrInvalidModel, want, got)
	}
	mc, err := ModelCommitment(m)
	if err != nil {
		return nil, nil, err
	}
	a := witness(k.shape, mc, m, in, output)
	proof, err = proveAssignment(k, a)
	if err != nil {
		return nil, nil, err
	}
	return output, proof, nil
}

// proveAssignment proves a full witness; the solver refuses one that breaks a constraint.
func proveAssignment(k *Keys, a *mlpCircuit) ([]byte, error) {
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("zk: witness: %w", err)
	}
	p, err := groth16.Prove(k.ccs, k.pk, w)
	if err != nil {
		return nil, fmt.Errorf("zk: prove: %w", err)
	}
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("zk: encode proof: %w", err)
	}
	return buf.Bytes(), nil
}

// Verify checks a proof against a statement: nil means the output is the committed model
// applied to the committed input. It takes milliseconds whatever the model's size.
func Verify(vk *VerifyingKey, st Statement, proof []byte) (err error) {
	p, err := DecodeProof(proof)
	if err != nil {
		return err
	}
	public, err := publicWitness(st)
	if err != nil {
		return err
	}
	if err := vk.fits(p, len(public)); err != nil {
		return err
	}
	defer func() {
		// gnark's verifier was not written for hostile keys; a panic is a rejection.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: verifier: %v", ErrInvalidProof, r)
		}
	}()
	if err := groth16.Verify(p, &vk.vk, public); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidProof, err)
	}
	return nil
}

// publicWitness lays the statement out as the circuit's public inputs, in the order of
// mlpCircuit's public fields.
func publicWitness(st Statement) (fr.Vector, error) {
	v := make(fr.Vector, 2+len(st.Output))
	for i, c := range []Commitment{st.Model, st.Input} {
		if err := v[i].SetBytesCanonical(c[:]); err != nil {
			return nil, fmt.Errorf("%w: commitment %d is not a BN254 scalar", ErrInvalidProof, i)
		}
	}
	for i, y := range st.Output {
		v[2+i].SetInt64(int64(y))
	}
	return v, nil
}

// witness is the circuit's full assignment: the model (committed to by mc) applied to in,
// claiming output.
func witness(shape Shape, mc Commitment, m *Model, in Input, output []int8) *mlpCircuit {
	a := newCircuit(shape)
	a.ModelCommitment = new(big.Int).SetBytes(mc[:])
	ic := InputCommitment(in.Values, in.Salt)
	a.InputCommitment = new(big.Int).SetBytes(ic[:])
	a.Salt = new(big.Int).SetBytes(in.Salt[:])
	for i, v := range output {
		a.Output[i] = int64(v)
	}
	for i, v := range in.Values {
		a.Input[i] = int64(v)
	}
	for li, l := range m.Layers {
		for i, w := range l.Weights {
			a.Weights[li][i] = int64(w)
		}
		for i, b := range l.Biases {
			a.Biases[li][i] = int64(b)
		}
	}
	return a
}
