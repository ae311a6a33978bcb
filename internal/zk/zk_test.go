package zk

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
)

func TestHonestProofVerifies(t *testing.T) {
	m, in, st, proof := honestProof(t, 1)
	want, err := m.Forward(in.Values)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(int8Bytes(st.Output), int8Bytes(want)) {
		t.Fatalf("Prove output %v, Forward %v", st.Output, want)
	}
	vk := sharedTinyKeys(t).VerifyingKey()
	if err := Verify(vk, st, proof); err != nil {
		t.Fatalf("honest proof: %v", err)
	}
	// The verifying key survives its encoding.
	b, err := vk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeVerifyingKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(decoded, st, proof); err != nil {
		t.Fatalf("with the decoded key: %v", err)
	}
	if decoded.Outputs() != tinyShape[len(tinyShape)-1].Out {
		t.Fatalf("Outputs() = %d", decoded.Outputs())
	}
	t.Logf("constraints %d, proof %d bytes, verifying key %d bytes", sharedTinyKeys(t).Constraints(), len(proof), len(b))
}

// The statement is laid out as gnark lays out the circuit's public fields.
func TestPublicWitnessOrder(t *testing.T) {
	_, _, st, _ := honestProof(t, 1)
	a := newCircuit(tinyShape)
	a.ModelCommitment, a.InputCommitment = st.Model[:], st.Input[:]
	for i, y := range st.Output {
		a.Output[i] = int64(y)
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		t.Fatal(err)
	}
	got, err := publicWitness(st)
	if err != nil {
		t.Fatal(err)
	}
	if want := w.Vector().(fr.Vector); !slices.Equal(got, want) {
		t.Fatalf("public witness %v, gnark's %v", got, want)
	}
}

// A node that did not run the committed model on the consumer's input cannot get a proof
// past Verify, whatever it changes.
func TestAttackerCannotProveAnythingElse(t *testing.T) {
	keys := sharedTinyKeys(t)
	vk := keys.VerifyingKey()
	m, in, st, proof := honestProof(t, 1)
	otherModel, otherIn, otherSt, otherProof := honestProof(t, 2)

	flip := func(out []int8, i int) []int8 {
		out = append([]int8(nil), out...)
		out[i]++
		return out
	}
	other, err := Setup(tinyShape) // a second, independent setup of the same shape
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		vk    *VerifyingKey
		st    Statement
		proof []byte
		want  error
	}{
		{"wrong output", vk, Statement{st.Model, st.Input, flip(st.Output, 0)}, proof, ErrInvalidProof},
		{"wrong last output", vk, Statement{st.Model, st.Input, flip(st.Output, 1)}, proof, ErrInvalidProof},
		{"output of another job", vk, Statement{st.Model, st.Input, otherSt.Output}, proof, ErrInvalidProof},
		{"proof for a different model", vk, Statement{st.Model, st.Input, otherSt.Output}, otherProof, ErrInvalidProof},
		{"different model claimed", vk, Statement{otherSt.Model, st.Input, st.Output}, proof, ErrInvalidProof},
		{"proof on an input of its choosing", vk, Statement{st.Model, otherSt.Input, st.Output}, proof, ErrInvalidProof},
		{"too few outputs", vk, Statement{st.Model, st.Input, st.Output[:1]}, proof, ErrInvalidProof},
		{"too many outputs", vk, Statement{st.Model, st.Input, append(st.Output, 0)}, proof, ErrInvalidProof},
		{"commitment not a field element", vk, Statement{Commitment{0xff}, st.Input, st.Output}, proof, ErrInvalidProof},
		{"keys from another setup", other.VerifyingKey(), st, proof, ErrInvalidProof},
		{"empty proof", vk, st, nil, ErrMalformed},
		{"truncated proof", vk, st, proof[:len(proof)-1], ErrMalformed},
		{"proof with a byte appended", vk, st, append(append([]byte(nil), proof...), 0), ErrMalformed},
	}
	for i := range proof {
		for _, bit := range []byte{0x01, 0x80} {
			tampered := append([]byte(nil), proof...)
			tampered[i] ^= bit
			cases = append(cases, struct {
				name  string
				vk    *VerifyingKey
				st    Statement
				proof []byte
				want  error
			}{"tampered proof", vk, st, tampered, nil})
		}
	}
	for _, c := range cases {
		err := Verify(c.vk, c.st, c.proof)
		if err == nil {
			t.Fatalf("%s: verified", c.name)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if c.want == nil && !errors.Is(err, ErrInvalidProof) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: err = %v, want ErrInvalidProof or ErrMalformed", c.name, err)
		}
	}

	// A prover that claims a wrong output cannot even build a proof: the solver refuses.
	a := assignment(t, m, in, flip(st.Output, 0))
	if _, err := proveAssignment(keys, a); err == nil {
		t.Fatal("proved a wrong output")
	}
	// Nor can it pass off another model's weights as the committed model.
	a = assignment(t, otherModel, otherIn, otherSt.Output)
	a.ModelCommitment = st.Model[:]
	if _, err := proveAssignment(keys, a); err == nil {
		t.Fatal("proved with weights that do not match the commitment")
	}
	// Nor keep the model and change an input value outside int8.
	a = assignment(t, m, in, st.Output)
	a.Input[0] = 200
	if _, err := proveAssignment(keys, a); err == nil {
		t.Fatal("proved with an input outside int8")
	}
}

func TestProveRefusesMismatchedKeys(t *testing.T) {
	m := randomModel(rand.New(rand.NewPCG(3, 3)), Shape{{In: 8, Out: 4, Shift: 6}, {In: 4, Out: 2, Shift: 6}})
	if _, _, err := Prove(sharedTinyKeys(t), m, Input{Values: make([]int8, 8)}); !errors.Is(err, ErrInvalidModel) {
		t.Fatalf("err = %v, want ErrInvalidModel", err)
	}
}

func TestKeyCacheStoresAndReloads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two setups' worth of work")
	}
	dir := t.TempDir()
	s := Shape{{In: 4, Out: 2, Shift: 5}}
	first, err := NewKeyCache(dir).Keys(s)
	if err != nil {
		t.Fatal(err)
	}
	cache := NewKeyCache(dir) // a restarted process
	again, err := cache.Keys(s)
	if err != nil {
		t.Fatal(err)
	}
	if same, err := cache.Keys(s); err != nil || same != again {
		t.Fatalf("second lookup: %p, %v; want the cached %p", same, err, again)
	}
	a, _ := first.VerifyingKey().MarshalBinary()
	b, _ := again.VerifyingKey().MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatal("reloaded verifying key differs")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	m, in := randomModel(rng, s), randomInput(rng, 4)
	out, proof, err := Prove(again, m, in) // proves with the reloaded proving key
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := ModelCommitment(m)
	if err := Verify(first.VerifyingKey(), Statement{mc, InputCommitment(in.Values, in.Salt), out}, proof); err != nil {
		t.Fatalf("proof from reloaded keys: %v", err)
	}
}
