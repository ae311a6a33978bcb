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

// budgetJobs and budgetCheatShare are the yardstick for detection: a node that
// cheats on 1% of its jobs, over 1,000 jobs, so on 10 of them.
const (
	budgetJobs       = 1000
	budgetCheatShare = 0.01
)

// defaultAuditShare is the chain's default audit_rate_bp (100) as a share.
const defaultAuditShare = 0.01

// caught is the probability of catching a node on at least one of its cheated jobs, when
// each is caught with probability p on its own.
func caught(p float64) float64 {
	return 1 - math.Pow(1-p, budgetJobs*budgetCheatShare)
}

// BenchmarkVerificationBudget prices every tensor level per second of the node's work and
// states its chance of catching a node that cheats on 1% of 1,000 jobs, at the default
// audit rate, all from one run's measurements: the product A'·B (the node's work, with
// DefaultChallengeRows challenge rows in it), Freivalds' check of all of it (CheckKernel,
// DefaultRounds) and the check of the challenge rows alone (CheckChallenge). Costs are
// validator-seconds per second of the node's work on like hardware (both on this CPU); a
// cheat is "lazy" (any wrong output on the challenge rows: a random or copied product) or
// "subtle" (one wrong element in a random row). The table is logged; the metrics are the
// challenge level's, the cheapest that catches a lazy node surely.
//
//	go test ./internal/verify -run '^$' -bench VerificationBudget -benchtime 1x -v
func BenchmarkVerificationBudget(b *testing.B) {
	sizes := []int{1024}
	if !testing.Short() {
		sizes = append(sizes, 2048)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, y, _ := encodedOperands(b, n)
			rows := ChallengeRowsFor(n, n, n)
			aPrime, ch, _, err := BuildChallenge(x, y, rows, seedOf(n))
			if err != nil {
				b.Fatal(err)
			}
			encA, _ := aPrime.MarshalBinary()
			encB, _ := y.MarshalBinary()
			inputs := [][]byte{encA, encB}
			var product, full, rowsOnly time.Duration
			for b.Loop() {
				start := time.Now()
				out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
				if err != nil {
					b.Fatal(err)
				}
				product += time.Since(start)
				start = time.Now()
				if v, err := CheckKernel(tensor.KernelMatMulInt8, inputs, out, seedOf(n), DefaultRounds); err != nil || !v.OK {
					b.Fatal(v, err)
				}
				full += time.Since(start)
				start = time.Now()
				if v, err := CheckChallenge(aPrime, y, out, ch.Positions); err != nil || !v.OK {
					b.Fatal(v, err)
				}
				rowsOnly += time.Since(start)
			}
			f := float64(full) / float64(product)     // Freivalds per second of work
			c := float64(rowsOnly) / float64(product) // challenge rows per second of work
			hit := float64(rows) / float64(n+rows)    // a random row is a challenge row
			a := defaultAuditShare
			type level struct {
				name         string
				cost         float64
				lazy, subtle float64 // per cheated job
			}
			levels := []level{
				{"freivalds (every job)", f, 1, 1},
				{"challenge (rows every job, 1% audited)", c + a*f, 1, hit + (1-hit)*a},
				{"audit (1% re-checked)", a * f, a, a},
				{"redundant (3 runs, one cheater)", 2, 1, 1},
			}
			b.Logf("n=%d, %d challenge rows; Freivalds %.2f%%, challenge rows %.2f%% of the product", n, rows, 100*f, 100*c)
			b.Logf("| level | validator s per node s | caught, 1%% lazy of 1,000 | caught, 1%% subtle of 1,000 |")
			for _, l := range levels {
				b.Logf("| %s | %.3f%% | %.4f | %.4f |", l.name, 100*l.cost, caught(l.lazy), caught(l.subtle))
			}
			// The audit share a subtle cheat needs for 99.9% over its 10 cheated jobs, and
			// what checking that share costs.
			need := 1 - math.Pow(0.001, 1/(budgetJobs*budgetCheatShare))
			b.Logf("99.9%% against a subtle cheat needs an audit share of %.1f%%: %.2f%% of the work in Freivalds checks", 100*need, 100*need*f)
			b.ReportMetric(100*(c+a*f), "challenge-cost-%")
			b.ReportMetric(caught(1), "challenge-lazy-caught")
			b.ReportMetric(caught(hit+(1-hit)*a), "challenge-subtle-caught")
		})
	}
}
