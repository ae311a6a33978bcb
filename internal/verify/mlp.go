package verify

import (
	"crypto/sha256"
	"fmt"

	"github.com/omnisync/omnisync/internal/tensor"
)

// CheckMLP checks a node's trace of the mlp-int8 kernel (tensor.MLPTrace) on batch x,
// layer by layer, without running the model. With H_0 = x, for each layer l it checks
//
//	Acc_l = H_{l-1}·W_lᵀ + 1·b_lᵀ
//
// by Freivalds over F_p as FreivaldsInt8 does, the bias a rank-1 term: each round draws r
// and compares Acc_l·r with H_{l-1}·(W_lᵀ·r) + (b_l·r)·1. It then requantises the checked
// Acc_l itself to get H_l, and finally compares the trace's output with H_L element by
// element. A round costs O(B·in + in·out + B·out) per layer against the layer's
// O(B·in·out) product.
//
// The check is exact: the model's accumulators fit in int32 (tensor.MLP.AccumulatorsFitInt32)
// and the trace's are int32, so a wrong one differs from the true one by less than
// 2^32 < p. The first layer whose accumulators are wrong is checked against the true
// activations of the layers before it, so a wrong trace passes with probability at most
// p^-rounds in all, whatever the number of layers.
//
// A trace of the wrong shape is a failed Verdict; an invalid model or batch (one the
// kernel refuses) or rounds < 1 are caller errors. Verdict.BadRow names the first wrong
// row and Reason its layer.
func CheckMLP(m *tensor.MLP, x *tensor.Int8Matrix, t *tensor.MLPTrace, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	if err := m.CheckBatch(x); err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if v, ok := checkTraceShape(m, x.Rows, t); !ok {
		return v, nil
	}
	// Every layer's first round draws from one stream and its later rounds from another,
	// so the first rounds, the transcript's, are the same whatever the number of rounds.
	first, more := newXoshiro256(seed), newXoshiro256(sha256.Sum256(append([]byte(mlpMoreRounds), seed[:]...)))
	tr := newTranscript(tensor.KernelMLPInt8)
	h := x
	for li, l := range m.Layers {
		acc := t.Acc[li]
		r := make([]uint64, l.Out)
		wtr := make([]uint64, l.In)
		hwr := make([]uint64, acc.Rows)
		accr := make([]uint64, acc.Rows)
		var br [1]uint64
		for round := 1; round <= rounds; round++ {
			rng := first
			if round > 1 {
				rng = more
			}
			for j := range r {
				r[j] = rng.fieldElement()
			}
			mulVecTransposed(wtr, l.Weights, r)
			mulVec(hwr, h.Data, wtr, int8Offset)
			mulVec(br[:], l.Biases, r, int32Offset)
			mulVec(accr, acc.Data, r, int32Offset)
			for i := range accr {
				if hwr[i] = addMod(hwr[i], br[0]); accr[i] != hwr[i] {
					return failed(round, i, "layer %d accumulators, row %d, are wrong: acc·r != h·(wᵀ·r) + b·r in round %d", li, i, round), nil
				}
			}
			if round == 1 {
				tr.values(hwr)
			}
		}
		h = tensor.RequantizeMatrix(acc, l.Shift, tensor.ClampLow(li, len(m.Layers)))
	}
	for k, y := range t.Output.Data {
		if y != h.Data[k] {
			i, j := k/h.Cols, k%h.Cols
			return failed(rounds, i, "output row %d, column %d, is %d: the last layer's accumulators requantise to %d", i, j, y, h.Data[k]), nil
		}
	}
	return Verdict{OK: true, Rounds: rounds, BadRow: -1, Reason: fmt.Sprintf("every layer's acc·r = h·(wᵀ·r) + b·r in all %d rounds, and the output is the last requantised", rounds), Transcript: tr.sum()}, nil
}

// mlpMoreRounds separates the stream of CheckMLP's later rounds from its first.
const mlpMoreRounds = "omnisync/verify/mlp/more-rounds"

// checkTraceShape fails a trace that is not one accumulator matrix per layer, B×Out_l,
// and a B×Out_L output.
func checkTraceShape(m *tensor.MLP, rows int, t *tensor.MLPTrace) (Verdict, bool) {
	if t == nil || t.Validate() != nil {
		return failed(0, -1, "trace is malformed"), false
	}
	if len(t.Acc) != len(m.Layers) {
		return failed(0, -1, "trace has %d layers of accumulators, the model %d", len(t.Acc), len(m.Layers)), false
	}
	for li, l := range m.Layers {
		if a := t.Acc[li]; a.Rows != rows || a.Cols != l.Out {
			return failed(0, -1, "layer %d accumulators are %dx%d, want %dx%d", li, a.Rows, a.Cols, rows, l.Out), false
		}
	}
	// Validate holds the output to the last accumulators' shape.
	return Verdict{}, true
}

// mulVecTransposed sets dst = Wᵀ·v mod p for W row-major len(v)×len(dst), reading W row
// by row instead of transposing it. Each v_j is split into 32-bit limbs, v_j = h_j·2^32 +
// l_j, so that every sum accumulates exactly in int64: |w·l_j| < 2^39 and a column has at
// most MLPMaxDim = 2^12 terms, < 2^51.
func mulVecTransposed(dst []uint64, w []int8, v []uint64) {
	n := len(dst)
	lo := make([]int64, n)
	hi := make([]int64, n)
	limbs := func(x uint64) (int64, int64) { return int64(x & (1<<32 - 1)), int64(x >> 32) }
	j := 0
	// Four rows of W per pass over the sums quarter their loads and stores.
	for ; j+4 <= len(v); j += 4 {
		l0, h0 := limbs(v[j])
		l1, h1 := limbs(v[j+1])
		l2, h2 := limbs(v[j+2])
		l3, h3 := limbs(v[j+3])
		w0, w1, w2, w3 := w[j*n:][:n], w[(j+1)*n:][:n], w[(j+2)*n:][:n], w[(j+3)*n:][:n]
		for k := range lo {
			a, b, c, d := int64(w0[k]), int64(w1[k]), int64(w2[k]), int64(w3[k])
			lo[k] += a*l0 + b*l1 + c*l2 + d*l3
			hi[k] += a*h0 + b*h1 + c*h2 + d*h3
		}
	}
	for ; j < len(v); j++ {
		l0, h0 := limbs(v[j])
		for k, a := range w[j*n:][:n] {
			lo[k] += int64(a) * l0
			hi[k] += int64(a) * h0
		}
	}
	for k := range dst {
		dst[k] = addMod(mulMod(fieldOf(hi[k]), 1<<32), fieldOf(lo[k]))
	}
}

// fieldOf maps an integer of magnitude below p into F_p.
func fieldOf(x int64) uint64 {
	if x < 0 {
		return subMod(0, reduce(uint64(-x)))
	}
	return reduce(uint64(x))
}

// MLPOps is the mlp-int8 kernel's operation count on B rows, what its node is billed for:
// 2·B·Σ_l in_l·out_l.
func MLPOps(m *tensor.MLP, rows int) uint64 {
	return uint64(rows) * m.Shape().Ops()
}
