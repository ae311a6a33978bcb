package zk

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test"
)

func TestForwardByHand(t *testing.T) {
	m := &Model{Layers: []Layer{
		{LayerShape: LayerShape{In: 2, Out: 3, Shift: 1}, Weights: []int8{1, 2, -1, -1, 127, 127}, Biases: []int32{1, 0, 0}},
		{LayerShape: LayerShape{In: 3, Out: 3, Shift: 0}, Weights: []int8{1, 0, 0, -1, -1, -1, 0, 0, 2}, Biases: []int32{0, -100, 0}},
	}}
	// layer 1 on (3, 5): acc = 14, -8, 1016 → >>1 = 7, -4 (ReLU 0), 508 (clamp 127)
	// layer 2: 7; -100-7-0-127 = -234 → -128; 254 → 127
	got, err := m.Forward([]int8{3, 5})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int8{7, -128, 127}; string(int8Bytes(got)) != string(int8Bytes(want)) {
		t.Fatalf("Forward = %v, want %v", got, want)
	}
	// floor, not truncation: -3 >> 1 = -2
	if got := requantize(-3, 1, -128); got != -2 {
		t.Fatalf("requantize(-3, 1) = %d, want -2", got)
	}
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}

func TestInvalidModelsAndInputs(t *testing.T) {
	good := randomModel(rand.New(rand.NewPCG(1, 1)), tinyShape)
	cases := map[string]func(m *Model){
		"no layers":       func(m *Model) { m.Layers = nil },
		"shift too large": func(m *Model) { m.Layers[0].Shift = MaxShift + 1 },
		"sizes disagree":  func(m *Model) { m.Layers[1].In = 5 },
		"weights missing": func(m *Model) { m.Layers[0].Weights = m.Layers[0].Weights[1:] },
		"too wide":        func(m *Model) { m.Layers[0].In = MaxDim + 1 },
		"biases too many": func(m *Model) { m.Layers[1].Biases = append(m.Layers[1].Biases, 0) },
		"empty layer":     func(m *Model) { m.Layers[1].Out = 0 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			m := &Model{Layers: append([]Layer(nil), good.Layers...)}
			mutate(m)
			if _, err := m.Forward(make([]int8, 8)); !errors.Is(err, ErrInvalidModel) {
				t.Fatalf("Forward: err = %v, want ErrInvalidModel", err)
			}
			if _, err := ModelCommitment(m); !errors.Is(err, ErrInvalidModel) {
				t.Fatalf("ModelCommitment: err = %v, want ErrInvalidModel", err)
			}
		})
	}
	if _, err := good.Forward(make([]int8, 7)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("short input: err = %v, want ErrInvalidInput", err)
	}
}

// assignment is the full witness for a model and input with a claimed output.
func assignment(t testing.TB, m *Model, in Input, out []int8) *mlpCircuit {
	t.Helper()
	mc, err := ModelCommitment(m)
	if err != nil {
		t.Fatal(err)
	}
	return witness(m.Shape(), mc, m, in, out)
}

// The circuit accepts Forward's output and nothing else, on random models and inputs of
// several shapes (checked by gnark's test engine, without a setup).
func TestCircuitAgreesWithForward(t *testing.T) {
	shapes := []Shape{
		tinyShape,
		{{In: 3, Out: 5, Shift: 0}, {In: 5, Out: 5, Shift: 3}, {In: 5, Out: 1, Shift: 31}},
		{{In: 16, Out: 3, Shift: 12}},
	}
	rng := rand.New(rand.NewPCG(2, 2))
	for _, s := range shapes {
		t.Run(s.ID(), func(t *testing.T) {
			for range 3 {
				m, in := randomModel(rng, s), randomInput(rng, s[0].In)
				out, err := m.Forward(in.Values)
				if err != nil {
					t.Fatal(err)
				}
				if err := test.IsSolved(newCircuit(s), assignment(t, m, in, out), ecc.BN254.ScalarField()); err != nil {
					t.Fatalf("circuit rejects Forward's output %v: %v", out, err)
				}
				for j := range out {
					wrong := append([]int8(nil), out...)
					wrong[j] ^= 1
					if test.IsSolved(newCircuit(s), assignment(t, m, in, wrong), ecc.BN254.ScalarField()) == nil {
						t.Fatalf("circuit accepts %v, Forward gives %v", wrong, out)
					}
				}
			}
		})
	}
}

// requantCircuit lets a dishonest prover choose the requantisation's witnesses freely.
type requantCircuit struct {
	Acc, Q, R, Above, Below frontend.Variable
	Y                       frontend.Variable `gnark:",public"`
	shift                   uint8
	lo                      int64
}

func (c *requantCircuit) Define(api frontend.API) error {
	api.AssertIsEqual(c.Y, constrainRequantize(api, plainRangeChecker{api}, c.Acc, c.shift, c.lo, c.Q, c.R, c.Above, c.Below))
	return nil
}

// Only the honest (q, r, above, below) satisfies the requantisation's constraints: every
// alternative near it is refused, also when q and r move together to keep acc = q·2^s + r.
func TestRequantizeConstraintsAreSound(t *testing.T) {
	p := ecc.BN254.ScalarField()
	for _, shift := range []uint8{0, 2} {
		for _, lo := range []int64{0, -128} {
			for _, acc := range []int64{-1000, -513, -129, -5, 0, 6, 127, 509, 512} {
				honest := requantize(acc, shift, lo)
				q := acc >> shift
				r := acc - q<<shift
				b := func(c bool) int64 {
					if c {
						return 1
					}
					return 0
				}
				for dq := int64(-1); dq <= 1; dq++ {
					for dr := int64(-1); dr <= 1; dr++ {
						for above := range int64(2) {
							for below := range int64(2) {
								for dy := range int64(2) {
									c := &requantCircuit{shift: shift, lo: lo}
									a := &requantCircuit{Acc: acc, Q: q + dq, R: r + dr - dq<<shift, Above: above, Below: below, Y: honest + dy}
									wantOK := dq == 0 && dr == 0 && dy == 0 && above == b(q > 127) && below == b(q < lo)
									err := test.IsSolved(c, a, p)
									if (err == nil) != wantOK {
										t.Fatalf("acc=%d shift=%d lo=%d q%+d r%+d above=%d below=%d y%+d: solved=%v, want %v",
											acc, shift, lo, dq, dr, above, below, dy, err == nil, wantOK)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}
