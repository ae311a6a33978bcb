package verify

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

// missLog2 is log2 of the probability that rounds rounds of FreivaldsInt8 pass a product
// with one wrong element. Only that element's row of D = A·B − C is nonzero, and it holds
// one nonzero entry d_ij (|d_ij| < 2^32 < p, so d_ij ≢ 0 mod p): a round passes exactly
// when d_ij·r_j ≡ 0, that is when r_j = 0, with probability 1/p for r_j uniform in F_p.
// Any other wrong C passes a round with probability at most 1/p (a nonzero row of D is a
// nonzero linear form in r). Rounds draw independent vectors, so the bound is p^-rounds;
// this models the seeded xoshiro256** stream as uniform, which holds against a node that
// committed C before the seed (a later block hash) was known.
func missLog2(rounds int) float64 { return -float64(rounds) * math.Log2(modulus) }

// The validator's default rounds meet the goal: one wrong element missed with
// probability at most 2^-60.
func TestDefaultRoundsMissAtMost2ToMinus60(t *testing.T) {
	if got := missLog2(DefaultRounds); got > -60 {
		t.Fatalf("%d rounds miss with probability 2^%.1f, want at most 2^-60", DefaultRounds, got)
	}
	// One round alone is just above the goal's edge: 1/(2^61 − 1) < 2^-60.
	if got := missLog2(1); got > -60 || got < -61.01 {
		t.Fatalf("one round misses with probability 2^%.2f, want about 2^-61", got)
	}
}

// challengeRows is how many challenge (ringer) rows the cost benchmark prices: rows whose
// outputs someone must compute in advance and the node computes again among the real ones.
const challengeRows = 32

// BenchmarkFreivaldsCost prices verification against the work it checks, in one run: the
// node's int8 product (tensor.RunKernel, decoding and encoding included), the validator's
// check of it (CheckKernel with DefaultRounds), and computing the expected outputs of
// challengeRows challenge rows. It reports each as a percentage of the product, and the
// check's probability of missing one wrong element as log2. n = 4096 runs unless -short.
//
//	go test ./internal/verify -run '^$' -bench FreivaldsCost -benchtime 1x
func BenchmarkFreivaldsCost(b *testing.B) {
	sizes := []int{1024, 2048}
	if !testing.Short() {
		sizes = append(sizes, 4096)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, y, inputs := encodedOperands(b, n)
			ringers := &tensor.Int8Matrix{Rows: challengeRows, Cols: n, Data: x.Data[:challengeRows*n]}
			var product, check, challenge time.Duration
			for b.Loop() {
				start := time.Now()
				out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
				if err != nil {
					b.Fatal(err)
				}
				product += time.Since(start)

				start = time.Now()
				v, err := CheckKernel(tensor.KernelMatMulInt8, inputs, out, seedOf(n), DefaultRounds)
				if err != nil || !v.OK {
					b.Fatal(v, err)
				}
				check += time.Since(start)

				start = time.Now()
				if _, err := tensor.MatMulInt8(ringers, y); err != nil {
					b.Fatal(err)
				}
				challenge += time.Since(start)
			}
			runs := float64(b.N)
			b.ReportMetric(product.Seconds()/runs, "product-s")
			b.ReportMetric(1000*check.Seconds()/runs, "check-ms")
			b.ReportMetric(100*float64(check)/float64(product), "check-%")
			b.ReportMetric(100*float64(challenge)/float64(product), "challenge-%")
			b.ReportMetric(missLog2(DefaultRounds), "miss-log2")
		})
	}
}

// encodedOperands makes random n×n int8 operands and their kernel encoding.
func encodedOperands(b *testing.B, n int) (x, y *tensor.Int8Matrix, inputs [][]byte) {
	b.Helper()
	for i, m := range []**tensor.Int8Matrix{&x, &y} {
		var err error
		if *m, err = tensor.RandomInt8(n, n, uint64(n+i)); err != nil {
			b.Fatal(err)
		}
		enc, err := (*m).MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, enc)
	}
	return x, y, inputs
}
