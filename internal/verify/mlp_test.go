package verify

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

// mlpCase is a model with random int8 weights and small biases, a batch for it and the
// honest trace.
func mlpCase(t testing.TB, s tensor.MLPShape, rows int, seed uint64) (*tensor.MLP, *tensor.Int8Matrix, *tensor.MLPTrace) {
	t.Helper()
	m := &tensor.MLP{Layers: make([]tensor.MLPLayer, len(s))}
	for li, ls := range s {
		w, err := tensor.RandomInt8(ls.Out, ls.In, seed*31+uint64(li))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := tensor.RandomInt8(1, ls.Out, seed*37+uint64(li))
		l := tensor.MLPLayer{LayerShape: ls, Weights: w.Data, Biases: make([]int32, ls.Out)}
		for j, v := range b.Data {
			l.Biases[j] = int32(v) * 64
		}
		m.Layers[li] = l
	}
	x, err := tensor.RandomInt8(rows, s[0].In, seed*41)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := m.Trace(x)
	if err != nil {
		t.Fatal(err)
	}
	return m, x, tr
}

var mlpTestShape = tensor.MLPShape{{In: 64, Out: 32, Shift: 10}, {In: 32, Out: 16, Shift: 9}, {In: 16, Out: 10, Shift: 9}}

func cloneTrace(t *tensor.MLPTrace) *tensor.MLPTrace {
	c := &tensor.MLPTrace{Output: &tensor.Int8Matrix{Rows: t.Output.Rows, Cols: t.Output.Cols, Data: append([]int8(nil), t.Output.Data...)}}
	for _, a := range t.Acc {
		c.Acc = append(c.Acc, &tensor.Int32Matrix{Rows: a.Rows, Cols: a.Cols, Data: append([]int32(nil), a.Data...)})
	}
	return c
}

func countDistinct(v []int8) int {
	seen := map[int8]bool{}
	for _, x := range v {
		seen[x] = true
	}
	return len(seen)
}

func TestCheckMLP(t *testing.T) {
	m, x, honest := mlpCase(t, mlpTestShape, 16, 1)
	// A case whose activations the ReLU and the clamp flatten would test little.
	if h := tensor.RequantizeMatrix(honest.Acc[1], m.Layers[1].Shift, 0); countDistinct(h.Data) < 20 || countDistinct(honest.Output.Data) < 20 {
		t.Fatalf("degenerate case: %d distinct hidden activations, %d outputs", countDistinct(h.Data), countDistinct(honest.Output.Data))
	}
	if v, err := CheckMLP(m, x, honest, [32]byte{1}, DefaultRounds); err != nil || !v.OK || v.BadRow != -1 {
		t.Fatalf("honest trace: %+v, %v", v, err)
	}
	cases := []struct {
		name   string
		lie    func(tr *tensor.MLPTrace)
		reason string
		row    int
	}{
		{"one accumulator of layer 0", func(tr *tensor.MLPTrace) { tr.Acc[0].Data[5*32+7]++ }, "layer 0 accumulators, row 5,", 5},
		{"one accumulator of layer 1", func(tr *tensor.MLPTrace) { tr.Acc[1].Data[9*16+3] -= 1 << 20 }, "layer 1 accumulators, row 9,", 9},
		{"one accumulator of the last layer", func(tr *tensor.MLPTrace) { tr.Acc[2].Data[15*10+9] ^= 1 }, "layer 2 accumulators, row 15,", 15},
		{"one output element", func(tr *tensor.MLPTrace) { tr.Output.Data[3*10+4]++ }, "output row 3, column 4,", 3},
		{"layer 1 without its bias", func(tr *tensor.MLPTrace) {
			for i := range tr.Acc[1].Data {
				tr.Acc[1].Data[i] -= m.Layers[1].Biases[i%16]
			}
		}, "layer 1 accumulators, row 0,", 0},
		{"a lazy node's random trace", func(tr *tensor.MLPTrace) {
			for li, a := range tr.Acc {
				r, _ := tensor.RandomInt8(a.Rows, a.Cols, uint64(li))
				for i, v := range r.Data {
					a.Data[i] = int32(v) << 8
				}
			}
		}, "layer 0 accumulators, row 0,", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := cloneTrace(honest)
			c.lie(tr)
			for seed := range byte(20) {
				v, err := CheckMLP(m, x, tr, [32]byte{seed}, DefaultRounds)
				if err != nil {
					t.Fatal(err)
				}
				if v.OK || v.BadRow != c.row || !strings.Contains(v.Reason, c.reason) {
					t.Fatalf("seed %d: %+v, want a failure at row %d with %q", seed, v, c.row, c.reason)
				}
			}
		})
	}
}

// A node that changes a hidden layer and computes every later layer honestly from its
// changed activations is caught at the layer it changed: each layer is checked against
// the activations the checked accumulators before it requantise to.
func TestCheckMLPCatchesAConsistentLie(t *testing.T) {
	m, x, honest := mlpCase(t, mlpTestShape, 8, 2)
	tr := cloneTrace(honest)
	tr.Acc[0].Data[2*32+1] += 1 << 12
	h := tensor.RequantizeMatrix(tr.Acc[0], m.Layers[0].Shift, 0)
	rest := &tensor.MLP{Layers: m.Layers[1:]}
	rt, err := rest.Trace(h)
	if err != nil {
		t.Fatal(err)
	}
	tr.Acc = append(tr.Acc[:1], rt.Acc...)
	tr.Output = rt.Output
	v, err := CheckMLP(m, x, tr, [32]byte{3}, 1)
	if err != nil || v.OK || v.BadRow != 2 || !strings.Contains(v.Reason, "layer 0") {
		t.Fatalf("%+v, %v; want layer 0 row 2", v, err)
	}
}

func TestCheckMLPShapes(t *testing.T) {
	m, x, honest := mlpCase(t, mlpTestShape, 4, 3)
	other, _, _ := mlpCase(t, tensor.MLPShape{{In: 64, Out: 32, Shift: 10}, {In: 32, Out: 10, Shift: 9}}, 4, 3)
	_, _, fewer := mlpCase(t, mlpTestShape, 3, 3)
	for name, tr := range map[string]*tensor.MLPTrace{
		"another model's trace": func() *tensor.MLPTrace { tr, _ := other.Trace(x); return tr }(),
		"a trace of 3 rows":     fewer,
		"no trace":              nil,
		"no output":             {Acc: honest.Acc},
	} {
		v, err := CheckMLP(m, x, tr, [32]byte{}, 1)
		if err != nil || v.OK || v.Rounds != 0 {
			t.Errorf("%s: %+v, %v; want a failure before any round", name, v, err)
		}
	}
	if _, err := CheckMLP(m, x, honest, [32]byte{}, 0); err == nil {
		t.Error("0 rounds accepted")
	}
	narrow, _ := tensor.RandomInt8(4, 63, 1)
	if _, err := CheckMLP(m, narrow, honest, [32]byte{}, 1); err == nil {
		t.Error("a batch the model does not take is the prover's fault")
	}
}

// CheckKernel decodes [model, X] and the trace, checks it and states the model's
// operations on the batch, what the node is billed for.
func TestCheckKernelMLP(t *testing.T) {
	m, x, honest := mlpCase(t, mlpTestShape, 16, 4)
	mb, _ := m.MarshalBinary()
	xb, _ := x.MarshalBinary()
	out, err := tensor.RunKernel(tensor.KernelMLPInt8, [][]byte{mb, xb})
	if err != nil {
		t.Fatal(err)
	}
	wantOps := uint64(2 * 16 * (64*32 + 32*16 + 16*10))
	v, err := CheckKernel(tensor.KernelMLPInt8, [][]byte{mb, xb}, out, [32]byte{5}, DefaultRounds)
	if err != nil || !v.OK || v.Ops != wantOps {
		t.Fatalf("honest: %+v, %v; want OK with %d ops", v, err, wantOps)
	}
	tr := cloneTrace(honest)
	tr.Acc[1].Data[0]++
	bad, _ := tr.MarshalBinary()
	for name, output := range map[string][]byte{"a wrong accumulator": bad, "garbage": out[1:], "a product's output": xb} {
		v, err := CheckKernel(tensor.KernelMLPInt8, [][]byte{mb, xb}, output, [32]byte{5}, DefaultRounds)
		if err != nil || v.OK || v.Ops != wantOps {
			t.Errorf("%s: %+v, %v; want a failure that states %d ops", name, v, err, wantOps)
		}
	}
	if _, err := CheckKernel(tensor.KernelMLPInt8, [][]byte{xb, mb}, out, [32]byte{}, 1); err == nil {
		t.Error("inputs swapped: no caller error")
	}
}

// BenchmarkCheckMLP times, in one run, the node's forward pass with every layer's
// accumulators (tensor.MLP.Trace, the portable Go int8 product) and CheckMLP with
// DefaultRounds for a 1024→1024→1024→10 model at B = 64 and 256, and reports the check
// as a percentage of the forward pass:
//
//	go test ./internal/verify -run '^$' -bench CheckMLP -benchtime 1x -v
func BenchmarkCheckMLP(b *testing.B) {
	shape := tensor.MLPShape{{In: 1024, Out: 1024, Shift: 12}, {In: 1024, Out: 1024, Shift: 12}, {In: 1024, Out: 10, Shift: 12}}
	for _, rows := range []int{64, 256} {
		b.Run(fmt.Sprintf("B=%d", rows), func(b *testing.B) {
			m, x, _ := mlpCase(b, shape, rows, 7)
			var fwd, check time.Duration
			for range b.N {
				start := time.Now()
				tr, err := m.Trace(x)
				fwd += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				v, err := CheckMLP(m, x, tr, [32]byte{byte(rows)}, DefaultRounds)
				check += time.Since(start)
				if err != nil || !v.OK {
					b.Fatalf("%+v, %v", v, err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(fwd.Seconds()*1e3/n, "forward-ms")
			b.ReportMetric(check.Seconds()*1e3/n, "check-ms")
			b.ReportMetric(100*check.Seconds()/fwd.Seconds(), "check-%")
			b.Logf("B=%d: forward %v, check (%d rounds) %v: %.2f%%", rows, fwd/time.Duration(b.N), DefaultRounds, check/time.Duration(b.N), 100*check.Seconds()/fwd.Seconds())
		})
	}
}

// mulVecTransposed is mulVec on the transposed matrix, exactly, at the extremes too.
func TestMulVecTransposed(t *testing.T) {
	for _, dims := range [][2]int{{1, 1}, {7, 5}, {4096, 3}, {9, 4096}} {
		rows, cols := dims[0], dims[1]
		l := tensor.MLPLayer{LayerShape: tensor.LayerShape{In: cols, Out: rows}, Weights: make([]int8, rows*cols)}
		rng := newXoshiro256([32]byte{byte(rows), byte(cols)})
		for i := range l.Weights {
			l.Weights[i] = int8(rng.next())
			if rows == 4096 {
				l.Weights[i] = -128 // the largest sums
			}
		}
		v := make([]uint64, rows)
		for i := range v {
			v[i] = rng.fieldElement()
			if rows == 4096 {
				v[i] = modulus - 1
			}
		}
		got, want := make([]uint64, cols), make([]uint64, cols)
		mulVecTransposed(got, l.Weights, v)
		mulVec(want, l.Transposed().Data, v, int8Offset)
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("%dx%d: column %d is %d, want %d", rows, cols, k, got[k], want[k])
			}
		}
	}
}
