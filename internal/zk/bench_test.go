package zk

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	cryptomimc "github.com/consensys/gnark-crypto/ecc/bn254/fr/mimc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/mimc"
)

// go test -run XXX -bench ZK -benchtime 1x ./internal/zk
//
// Issue #13's goal: prove an MLP of at least 64→32→10 ten times faster than the 27 s it
// took to prove a 2,400-weight MLP with a MiMC commitment. The baseline is that circuit,
// built here the straightforward way and measured in the same run: the same MLP
// constraints, but MiMC absorbing one weight per call and range checks by bit
// decomposition. "ours" is this package's circuit: Poseidon2 over 31 weights per element,
// range checks by log-derivative lookup.

var benchShapes = []struct {
	name     string
	shape    Shape
	baseline bool
}{
	{"ours/64-32-10", Shape{{In: 64, Out: 32, Shift: 8}, {In: 32, Out: 10, Shift: 8}}, false},
	{"ours/56-40-4", Shape{{In: 56, Out: 40, Shift: 8}, {In: 40, Out: 4, Shift: 8}}, false},         // 2,400 weights
	{"baseline-mimc/56-40-4", Shape{{In: 56, Out: 40, Shift: 8}, {In: 40, Out: 4, Shift: 8}}, true}, // the same, naively
}

// mimcGadgets is the baseline: MiMC, one value per field element, bit decomposition.
func mimcGadgets(api frontend.API) (gadgets, error) {
	h, err := mimc.New(api)
	if err != nil {
		return gadgets{}, err
	}
	return gadgets{h: h, rc: plainRangeChecker{api}, packBits: 0}, nil
}

func mimcHash(elems []*big.Int) []byte {
	h := cryptomimc.NewMiMC()
	for _, e := range elems {
		var x fr.Element
		x.SetBigInt(e)
		b := x.Bytes()
		h.Write(b[:])
	}
	return h.Sum(nil)
}

// benchWitness is a random model and input of the shape with its full assignment.
func benchWitness(b *testing.B, s Shape, baseline bool) (*mlpCircuit, Statement) {
	rng := rand.New(rand.NewPCG(7, 7))
	m, in := randomModel(rng, s), randomInput(rng, s[0].In)
	out, err := m.Forward(in.Values)
	if err != nil {
		b.Fatal(err)
	}
	a := assignment(b, m, in, out)
	if baseline {
		a.ModelCommitment = mimcHash(append(modelHeader(s), packItems(modelItems(m), 0)...))
		a.InputCommitment = mimcHash(append(inputHeader(in.Salt, len(in.Values)), packItems(inputItems(in.Values), 0)...))
	}
	var st Statement
	st.Output = out
	copy(st.Model[:], bigBytes(a.ModelCommitment))
	copy(st.Input[:], bigBytes(a.InputCommitment))
	return a, st
}

func bigBytes(v frontend.Variable) []byte {
	var x fr.Element
	switch v := v.(type) {
	case []byte:
		x.SetBytes(v)
	default:
		panic(fmt.Sprintf("unexpected %T", v))
	}
	b := x.Bytes()
	return b[:]
}

func BenchmarkZK(b *testing.B) {
	for _, bs := range benchShapes {
		c := newCircuit(bs.shape)
		if bs.baseline {
			c.gadgets = mimcGadgets
		}
		var keys *Keys
		b.Run("setup/"+bs.name, func(b *testing.B) {
			for range b.N {
				k, err := setupCircuit(c)
				if err != nil {
					b.Fatal(err)
				}
				keys = k
			}
			b.ReportMetric(float64(keys.Constraints()), "constraints")
			b.ReportMetric(float64(bs.shape.Weights()), "params")
		})
		if keys == nil {
			continue
		}
		a, st := benchWitness(b, bs.shape, bs.baseline)
		var proof []byte
		b.Run("prove/"+bs.name, func(b *testing.B) {
			for range b.N {
				p, err := proveAssignment(keys, a)
				if err != nil {
					b.Fatal(err)
				}
				proof = p
			}
			b.ReportMetric(float64(len(proof)), "proof-bytes")
		})
		b.Run("verify/"+bs.name, func(b *testing.B) {
			for range b.N {
				if err := Verify(keys.VerifyingKey(), st, proof); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
