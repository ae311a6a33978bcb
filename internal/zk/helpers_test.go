package zk

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"
)

// plainRangeChecker range-checks by bit decomposition: one constraint per bit.
type plainRangeChecker struct{ api frontend.API }

func (c plainRangeChecker) Check(v frontend.Variable, n int) {
	bits.ToBinary(c.api, v, bits.WithNbDigits(n))
}

// tinyShape keeps unit tests fast; the benchmark uses 64→32→10.
var tinyShape = Shape{{In: 8, Out: 4, Shift: 7}, {In: 4, Out: 2, Shift: 6}}

// randomModel draws weights over the whole int8 range and biases mostly small, sometimes
// at the int32 extremes, so that the clamp's three cases all occur.
func randomModel(rng *rand.Rand, s Shape) *Model {
	m := &Model{Layers: make([]Layer, len(s))}
	for li, ls := range s {
		l := Layer{LayerShape: ls, Weights: make([]int8, ls.In*ls.Out), Biases: make([]int32, ls.Out)}
		for i := range l.Weights {
			l.Weights[i] = int8(rng.IntN(256) - 128)
		}
		for i := range l.Biases {
			switch rng.IntN(10) {
			case 0:
				l.Biases[i] = -1 << 31
			case 1:
				l.Biases[i] = 1<<31 - 1
			default:
				l.Biases[i] = int32(rng.IntN(1<<14) - 1<<13)
			}
		}
		m.Layers[li] = l
	}
	return m
}

func randomInput(rng *rand.Rand, n int) Input {
	in := Input{Values: make([]int8, n)}
	for i := range in.Values {
		in.Values[i] = int8(rng.IntN(256) - 128)
	}
	for i := range in.Salt {
		in.Salt[i] = byte(rng.IntN(256))
	}
	return in
}

var (
	tinyKeysOnce sync.Once
	tinyKeys     *Keys
	tinyKeysErr  error
)

// sharedTinyKeys makes one setup for the tiny shape per test binary.
func sharedTinyKeys(tb testing.TB) *Keys {
	tb.Helper()
	tinyKeysOnce.Do(func() { tinyKeys, tinyKeysErr = Setup(tinyShape) })
	if tinyKeysErr != nil {
		tb.Fatal(tinyKeysErr)
	}
	return tinyKeys
}

// honestProof returns a model, input, statement and proof that verify.
func honestProof(tb testing.TB, seed uint64) (*Model, Input, Statement, []byte) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	m, in := randomModel(rng, tinyShape), randomInput(rng, tinyShape[0].In)
	out, proof, err := Prove(sharedTinyKeys(tb), m, in)
	if err != nil {
		tb.Fatal(err)
	}
	mc, err := ModelCommitment(m)
	if err != nil {
		tb.Fatal(err)
	}
	return m, in, Statement{Model: mc, Input: InputCommitment(in.Values, in.Salt), Output: out}, proof
}
