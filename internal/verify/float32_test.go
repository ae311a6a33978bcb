package verify

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
)

// distribution fills a float32 matrix; the calibration draws A and B from each.
type distribution struct {
	name string
	draw func(rng *rand.Rand) float32
}

var distributions = []distribution{
	{"uniform [-1,1]", func(rng *rand.Rand) float32 { return float32(2*rng.Float64() - 1) }},
	{"normal (0,1)", func(rng *rand.Rand) float32 { return float32(rng.NormFloat64()) }},
	// No cancellation: every partial sum grows, the worst case for relative error.
	{"uniform [0,1]", func(rng *rand.Rand) float32 { return float32(rng.Float64()) }},
	// Magnitudes over twelve decades: errors dominated by a few large terms.
	{"±2^U[-20,20]", func(rng *rand.Rand) float32 {
		v := float32(math.Exp2(40*rng.Float64() - 20))
		if rng.IntN(2) == 0 {
			return -v
		}
		return v
	}},
	// Every term and every rounding alike: errors accumulate systematically.
	{"all 0.1", func(*rand.Rand) float32 { return 0.1 }},
}

func randomFloat32(t testing.TB, rows, cols int, d distribution, seed uint64) *tensor.Float32Matrix {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x0f32))
	m, err := tensor.NewFloat32(rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Data {
		m.Data[i] = d.draw(rng)
	}
	return m
}

// summation is an honest node's way to add up one element's k terms: a GPU tiles, splits
// K across thread blocks, fuses multiply-adds or accumulates wider, and gets other bits.
type summation struct {
	name string
	dot  func(a, b []float32) float32 // a row of A, a column of B
}

var summations = []summation{
	{"fp64 sums, rounded once", func(a, b []float32) float32 {
		var s float64
		for p := range a {
			s += float64(a[p]) * float64(b[p])
		}
		return float32(s)
	}},
	{"fp32 FMA, reverse k", func(a, b []float32) float32 {
		var s float32
		for p := len(a) - 1; p >= 0; p-- {
			s = float32(math.FMA(float64(a[p]), float64(b[p]), float64(s)))
		}
		return s
	}},
	{"fp32 split-K, 32-term tiles", func(a, b []float32) float32 {
		var total float32
		for lo := 0; lo < len(a); lo += 32 {
			var s float32
			for p := lo; p < min(lo+32, len(a)); p++ {
				s += float32(a[p] * b[p])
			}
			total += s
		}
		return total
	}},
	{"fp32 pairwise", pairwise},
}

func pairwise(a, b []float32) float32 {
	if len(a) <= 2 {
		var s float32
		for p := range a {
			s += float32(a[p] * b[p])
		}
		return s
	}
	h := len(a) / 2
	return pairwise(a[:h], b[:h]) + pairwise(a[h:], b[h:])
}

// productBy computes a·b with every element summed by dot.
func productBy(a, b *tensor.Float32Matrix, dot func(a, b []float32) float32) *tensor.Float32Matrix {
	bt := make([]float32, len(b.Data)) // columns of b, contiguous
	for p := 0; p < b.Rows; p++ {
		for j := 0; j < b.Cols; j++ {
			bt[j*b.Rows+p] = b.Data[p*b.Cols+j]
		}
	}
	c := &tensor.Float32Matrix{Rows: a.Rows, Cols: b.Cols, Data: make([]float32, a.Rows*b.Cols)}
	for i := 0; i < a.Rows; i++ {
		for j := 0; j < b.Cols; j++ {
			c.Data[i*c.Cols+j] = dot(a.Data[i*a.Cols:][:a.Cols], bt[j*b.Rows:][:b.Rows])
		}
	}
	return c
}

// residuals runs the check and returns, per row, the largest residual's share of its
// bound and the smallest and largest bound over the rounds.
func residuals(a, b, c *tensor.Float32Matrix, seed [32]byte, rounds int) (share, tolMin, tolMax []float64) {
	share, tolMin, tolMax = make([]float64, a.Rows), make([]float64, a.Rows), make([]float64, a.Rows)
	for i := range tolMin {
		tolMin[i] = math.Inf(1)
	}
	float32Rounds(a, b, c, seed, rounds, func(_, i int, _, residual, tol float64) bool {
		share[i] = max(share[i], residual/tol)
		tolMin[i], tolMax[i] = min(tolMin[i], tol), max(tolMax[i], tol)
		return true
	})
	return share, tolMin, tolMax
}

// calibrationRows is how many rows of A the calibration multiplies: a row's residual and
// bound depend on that row of A and on all of B, so a few rows of a large product
// calibrate it as well as all of them, at a fraction of the time.
const calibrationRows = 48

// TestFloat32BoundHoldsForEveryHonestOrder is the bound's calibration: for A and B from
// five distributions at n = 64 … 1024 (n×n by n×n, the first calibrationRows rows), the
// product summed in five honest orders (the kernel's k-order fp32, fp64 rounded once, fp32
// FMA in reverse, split-K tiles, pairwise) passes, and its residual uses a small share of
// the bound. It logs each case's largest share and the bound's size against the product's
// elements (the smallest single-element change the check surely sees, in units of a
// typical element).
func TestFloat32BoundHoldsForEveryHonestOrder(t *testing.T) {
	sizes := []int{64, 256, 512}
	if !testing.Short() {
		sizes = append(sizes, 1024)
	}
	overall := 0.0
	t.Logf("| distribution | n | order | largest residual / bound | bound / mean |c_ij| |")
	for _, d := range distributions {
		for _, n := range sizes {
			a := randomFloat32(t, min(n, calibrationRows), n, d, uint64(n))
			b := randomFloat32(t, n, n, d, uint64(n)+1)
			kernel, err := tensor.MatMulFloat32(a, b)
			if err != nil {
				t.Fatal(err)
			}
			orders := []struct {
				name string
				c    *tensor.Float32Matrix
			}{{"fp32 k-order (the kernel)", kernel}}
			for _, s := range summations {
				orders = append(orders, struct {
					name string
					c    *tensor.Float32Matrix
				}{s.name, productBy(a, b, s.dot)})
			}
			for _, o := range orders {
				v, err := FreivaldsFloat32(a, b, o.c, seedOf(n), DefaultRounds)
				if err != nil || !v.OK {
					t.Fatalf("%s, n=%d, %s: an honest product failed: %+v %v", d.name, n, o.name, v, err)
				}
				share, tolMin, _ := residuals(a, b, o.c, seedOf(n), DefaultRounds)
				worst := slices.Max(share)
				overall = max(overall, worst)
				if worst > 1/float64(Float32Safety) {
					t.Errorf("%s, n=%d, %s: residual reached %.3g of the bound, beyond the rigorous part", d.name, n, o.name, worst)
				}
				t.Logf("| %s | %d | %s | %.2e | %.3g |", d.name, n, o.name, worst, median(tolMin)/meanAbs(o.c))
			}
		}
	}
	t.Logf("largest honest residual over every case: %.2e of the bound (the bound is %.0f× it)", overall, 1/overall)
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

func meanAbs(c *tensor.Float32Matrix) float64 {
	var s float64
	for _, v := range c.Data {
		s += math.Abs(float64(v))
	}
	return s / float64(len(c.Data))
}

// A single element changed by well over its row's bound is caught in every round, whatever
// the seed; one changed by well under it passes, as any check within rounding noise must.
func TestFloat32CheckSeesChangesAboveTheBoundOnly(t *testing.T) {
	d := distributions[0]
	for _, n := range []int{64, 256} {
		a := randomFloat32(t, n, n, d, 1)
		b := randomFloat32(t, n, n, d, 2)
		c, err := tensor.MatMulFloat32(a, b)
		if err != nil {
			t.Fatal(err)
		}
		_, tolMin, tolMax := residuals(a, b, c, seedOf(0), DefaultRounds)
		for _, at := range [][2]int{{0, 0}, {n / 2, n/3 + 1}, {n - 1, n - 1}} {
			i, j := at[0], at[1]
			// The bound for any r lies in [tol1, 2·tol1] (|r_j| in [1, 2)), and an honest
			// residual in [0, tol/Float32Safety]: 4·tolMax ≥ 4·tol1 always shows, tolMin/8 ≤
			// tol1/4 never does.
			for _, tc := range []struct {
				name   string
				delta  float64
				caught bool
			}{
				{"4× the bound", 4 * tolMax[i], true},
				{"-4× the bound", -4 * tolMax[i], true},
				{"1/8 of the bound", tolMin[i] / 8, false},
			} {
				bad := &tensor.Float32Matrix{Rows: n, Cols: n, Data: slices.Clone(c.Data)}
				bad.Data[i*n+j] += float32(tc.delta)
				for seed := range 20 {
					v, err := FreivaldsFloat32(a, b, bad, seedOf(1000+seed), DefaultRounds)
					if err != nil {
						t.Fatal(err)
					}
					if v.OK == tc.caught || (tc.caught && (v.Rounds != 1 || v.BadRow != i)) {
						t.Fatalf("n=%d, (%d, %d) off by %s (%.3g, element %.3g): %+v", n, i, j, tc.name, tc.delta, c.Data[i*n+j], v)
					}
				}
			}
		}
		t.Logf("n=%d: the bound at row 0 is %.3g (|r| = 1) for elements of mean size %.3g", n, tolMin[0]/2, meanAbs(c))
	}
}

// Two changes in one row that cancel when r_j1 = r_j2 would pass half the rounds of a ±1
// vector; with |r_j| drawn from [1, 2) they pass a round with probability about
// bound/size. At 100× the bound, none of 200 seeds misses them in DefaultRounds rounds.
func TestFloat32CheckSeesCancellingChanges(t *testing.T) {
	const n = 64
	d := distributions[0]
	a := randomFloat32(t, n, n, d, 3)
	b := randomFloat32(t, n, n, d, 4)
	c, err := tensor.MatMulFloat32(a, b)
	if err != nil {
		t.Fatal(err)
	}
	_, _, tolMax := residuals(a, b, c, seedOf(0), DefaultRounds)
	bad := &tensor.Float32Matrix{Rows: n, Cols: n, Data: slices.Clone(c.Data)}
	delta := float32(100 * tolMax[5])
	bad.Data[5*n+10] += delta
	bad.Data[5*n+40] -= delta
	for seed := range 200 {
		if v, err := FreivaldsFloat32(a, b, bad, seedOf(seed), DefaultRounds); err != nil || v.OK {
			t.Fatalf("seed %d: cancelling pair missed: %+v %v", seed, v, err)
		}
	}
}

func TestCheckKernelFloat32(t *testing.T) {
	a, b := randomFloat32(t, 5, 4, distributions[1], 1), randomFloat32(t, 4, 3, distributions[1], 2)
	inputs := [][]byte{encode(t, a), encode(t, b)}
	honest, err := tensor.RunKernel(tensor.KernelMatMulFloat32, inputs)
	if err != nil {
		t.Fatal(err)
	}
	nan := slices.Clone(honest)
	copy(nan[len(nan)-4:], []byte{0, 0, 0xc0, 0x7f})
	wrong := slices.Clone(honest)
	wrong[len(wrong)-1] ^= 0x40 // an exponent bit: the last element is off by far
	int8Out, _ := tensor.RunKernel(tensor.KernelMatMulInt8, [][]byte{encode(t, mustInt8(t, 5, 4)), encode(t, mustInt8(t, 4, 3))})
	for _, tc := range []struct {
		name   string
		output []byte
		ok     bool
		row    int
	}{
		{"honest output", honest, true, -1},
		{"last element far off", wrong, false, 4},
		{"NaN element", nan, false, -1},
		{"int8 kernel's output", int8Out, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := CheckKernel(tensor.KernelMatMulFloat32, inputs, tc.output, seedOf(1), DefaultRounds)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK != tc.ok || v.BadRow != tc.row || v.Ops != tensor.MatMulOps(5, 4, 3) {
				t.Fatalf("verdict %+v", v)
			}
			t.Log(v.Reason)
		})
	}
	// Inputs the kernel refuses are the caller's problem, not the node's.
	sub := &tensor.Float32Matrix{Rows: 4, Cols: 3, Data: slices.Clone(b.Data)}
	sub.Data[0] = 1e-40
	for name, in := range map[string][][]byte{
		"subnormal input": {inputs[0], encode(t, sub)},
		"one input":       inputs[:1],
	} {
		if _, err := CheckKernel(tensor.KernelMatMulFloat32, in, honest, seedOf(1), 1); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}

func mustInt8(t testing.TB, rows, cols int) *tensor.Int8Matrix {
	t.Helper()
	m, err := tensor.RandomInt8(rows, cols, 1)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
