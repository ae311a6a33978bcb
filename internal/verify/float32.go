package verify

import (
	"fmt"

	"github.com/omnisync/omnisync/internal/tensor"
)

// Unit roundoffs: half an ulp of 1, the largest relative error of one rounding.
const (
	unitFloat32 = 0x1p-24
	unitFloat64 = 0x1p-53
)

// Float32Safety multiplies FreivaldsFloat32's rounding-error bound. The bound is already
// rigorous for every summation order; the factor leaves room for what its model leaves
// out (the float64 rounding of the bound itself, double rounding in an emulated FMA).
const Float32Safety = 2

// underflowPerTerm bounds the absolute error one term of an honest fp32 product adds
// beyond the relative bound: a product or a partial sum that underflows is off by less
// than 2^-126 even when flushed to zero (a GPU's FTZ mode), so a term adds at most 2^-125.
const underflowPerTerm = 0x1p-125

// gamma is γ_n = n·u/(1 − n·u), the classic bound on the relative error of n roundings
// (Higham, Accuracy and Stability of Numerical Algorithms, §3.1); n·u < 1 here, as
// tensor.MaxInner keeps k·2^-24 below 0.008.
func gamma(n int, u float64) float64 {
	x := float64(n) * u
	return x / (1 - x)
}

// FreivaldsFloat32 checks c ≈ a·b for the fp32 kernel with Freivalds' algorithm in
// float64, within a bound on the rounding error of an honest product. Float checks catch
// only errors above the rounding noise: an element off by less than its row's bound
// passes, and the check cannot tell it from an honest product summed in another order.
//
// Each round draws r with r_j = ±(1 + m·2^-20), m uniform in [0, 2^20) and the sign
// uniform (products with float32 values stay exact in float64), computes y = A·(B·r) and
// z = C·r in float64, and fails row i when |y_i − z_i| > tol_i, where
//
//	tol_i = Float32Safety · (ε·(|A|·(|B|·|r|))_i + k·2^-125·Σ_j |r_j|)
//	ε     = γ_k(2^-24) + γ_{n+k}(2^-53) + γ_n(2^-53)·(1 + γ_k(2^-24))
//
// for an m×k by k×n product. The first term of ε is the standard bound
// |fl(A·B) − A·B| ≤ γ_k·|A|·|B| elementwise, which holds for every order of the k sums
// (sequential, blocked, split-K, pairwise, with or without FMA) and for float64
// accumulation rounded once to float32; the other two bound this check's own float64
// sums. The last term covers results that underflow (tensor.CheckMatMulFloat32 refuses
// subnormal inputs and inputs whose sums could overflow). So an honest product computed
// with IEEE fp32 products and fp32-or-wider sums, in any order, never fails. A TF32 or
// bf16 tensor-core product is a different computation and may fail.
//
// What it sees: an element c_ij off by δ moves y_i − z_i by δ·r_j with |r_j| ≥ 1, so
// every round catches it when |δ| > tol_i·(1 + 1/Float32Safety); changes well below tol_i
// pass. Several changes in one row that cancel for some r pass a round with probability
// about tol_i / their size, not 1/2 as they would with ±1 vectors. The check is
// bit-for-bit reproducible (no fused multiply-adds), so validators agree on borderline
// rows. The bound depends on the inputs alone, never on the node's answer.
//
// seed, rounds and the treatment of malformed outputs and operands are as for
// FreivaldsInt8.
func FreivaldsFloat32(a, b, c *tensor.Float32Matrix, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	if err := tensor.CheckMatMulFloat32(a, b); err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err := c.Validate(); err != nil {
		return failed(0, -1, "output is malformed: %v", err), nil
	}
	if c.Rows != a.Rows || c.Cols != b.Cols {
		return failed(0, -1, "output is %dx%d, want %dx%d", c.Rows, c.Cols, a.Rows, b.Cols), nil
	}
	worst := 0.0
	var bad *Verdict
	t := newTranscript(tensor.KernelMatMulFloat32)
	float32Rounds(a, b, c, seed, rounds, func(round, i int, y, residual, tol float64) bool {
		if round == 1 {
			t.float(y)
		}
		if !(residual <= tol) {
			v := failed(round, i, "row %d of the output is wrong: |a·(b·r) − c·r| = %.6g exceeds its fp32 rounding bound %.6g (%.3g×) in round %d", i, residual, tol, residual/tol, round)
			bad = &v
			return false
		}
		worst = max(worst, residual/tol)
		return true
	})
	if bad != nil {
		return *bad, nil
	}
	return Verdict{OK: true, Rounds: rounds, BadRow: -1, Reason: fmt.Sprintf("a·(b·r) = c·r within the fp32 rounding bound in all %d rounds (largest residual %.3g of its row's bound)", rounds, worst), Transcript: t.sum()}, nil
}

// float32Rounds runs rounds of FreivaldsFloat32's check on conforming, valid operands and
// calls visit with each row's y_i, residual |y_i − z_i| and bound tol_i, round by round,
// until visit returns false.
func float32Rounds(a, b, c *tensor.Float32Matrix, seed [32]byte, rounds int, visit func(round, row int, y, residual, tol float64) bool) {
	k, n := a.Cols, b.Cols
	eps := gamma(k, unitFloat32) + gamma(n+k, unitFloat64) + gamma(n, unitFloat64)*(1+gamma(k, unitFloat32))
	rng := newXoshiro256(seed)
	r := make([]float64, n)
	br, bAbs := make([]float64, k), make([]float64, k)
	for round := 1; round <= rounds; round++ {
		var rAbsSum float64
		for j := range r {
			v := rng.next()
			r[j] = 1 + float64(v>>44)*0x1p-20 // 20 bits of magnitude
			rAbsSum += r[j]
			if v&1 != 0 {
				r[j] = -r[j]
			}
		}
		// b_pj·r_j and c_ij·r_j are exact (24 + 21 significant bits), so only the
		// sums round, and a fused multiply-add could not change them.
		for p := range br {
			var s, t float64
			for j, x := range b.Data[p*n : p*n+n] {
				v := float64(x) * r[j]
				s += v
				t += abs(v)
			}
			br[p], bAbs[p] = s, t
		}
		absTerm := float64(k) * underflowPerTerm * rAbsSum
		for i := 0; i < a.Rows; i++ {
			var y, bound, z float64
			for p, x := range a.Data[i*k : i*k+k] {
				// Explicit conversions round each product, so no platform fuses them.
				y += float64(float64(x) * br[p])
				bound += float64(abs(float64(x)) * bAbs[p])
			}
			for j, x := range c.Data[i*n : i*n+n] {
				z += float64(x) * r[j]
			}
			tol := Float32Safety * (eps*bound + absTerm)
			if !visit(round, i, y, abs(y-z), tol) {
				return
			}
		}
	}
}

// abs is |x|, branch-free: the signs here are random, and a branch on them mispredicts.
func abs(x float64) float64 { return max(x, -x) }
