package verify

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

func seedOf(n int) [32]byte {
	var s [32]byte
	s[0], s[1] = byte(n), byte(n>>8)
	return s
}

// instance returns a random m×k by k×n problem and its honest product.
func instance(t testing.TB, m, k, n int, seed uint64) (a, b *tensor.Int8Matrix, c *tensor.Int32Matrix) {
	t.Helper()
	var err error
	if a, err = tensor.RandomInt8(m, k, seed); err != nil {
		t.Fatal(err)
	}
	if b, err = tensor.RandomInt8(k, n, seed+1); err != nil {
		t.Fatal(err)
	}
	if c, err = tensor.MatMulInt8(a, b); err != nil {
		t.Fatal(err)
	}
	return a, b, c
}

func clone(c *tensor.Int32Matrix) *tensor.Int32Matrix {
	return &tensor.Int32Matrix{Rows: c.Rows, Cols: c.Cols, Data: slices.Clone(c.Data)}
}

func TestFreivaldsHonestProductPasses(t *testing.T) {
	for _, s := range [][3]int{{1, 1, 1}, {1, 9, 1}, {3, 5, 7}, {16, 16, 16}, {33, 2, 65}} {
		a, b, c := instance(t, s[0], s[1], s[2], 7)
		v, err := FreivaldsInt8(a, b, c, seedOf(1), 3)
		if err != nil {
			t.Fatal(err)
		}
		if !v.OK || v.Rounds != 3 || v.BadRow != -1 {
			t.Fatalf("%v: honest product gave %+v", s, v)
		}
	}
}

func TestFreivaldsCatchesOneWrongElement(t *testing.T) {
	const m, n = 6, 5
	a, b, c := instance(t, m, 4, n, 11)
	tests := []struct {
		name  string
		index int
		delta int32
	}{
		{"first element +1", 0, 1},
		{"first element -1", 0, -1},
		{"last element +1", m*n - 1, 1},
		{"last element of first row", n - 1, 1},
		{"first element of last row", (m - 1) * n, -1},
		{"middle element", 2*n + 3, 1000},
		{"wrapped by 2^31", 2*n + 1, math.MinInt32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := clone(c)
			bad.Data[tt.index] += tt.delta
			v, err := FreivaldsInt8(a, b, bad, seedOf(2), 1)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || v.Rounds != 1 || v.BadRow != tt.index/n {
				t.Fatalf("verdict %+v, want a failure at row %d", v, tt.index/n)
			}
		})
	}
}

func TestFreivaldsWrongOutputShapeFails(t *testing.T) {
	a, b, c := instance(t, 4, 3, 5, 3)
	tests := []struct {
		name string
		c    *tensor.Int32Matrix
	}{
		{"transposed", &tensor.Int32Matrix{Rows: 5, Cols: 4, Data: c.Data}},
		{"one row short", &tensor.Int32Matrix{Rows: 3, Cols: 5, Data: c.Data[:15]}},
		{"data shorter than dims", &tensor.Int32Matrix{Rows: 4, Cols: 5, Data: c.Data[:19]}},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := FreivaldsInt8(a, b, tt.c, seedOf(3), 2)
			if err != nil {
				t.Fatalf("a bad output must be a verdict, got error %v", err)
			}
			if v.OK || v.BadRow != -1 || v.Reason == "" {
				t.Fatalf("verdict %+v, want a failure with a reason", v)
			}
		})
	}
}

func TestFreivaldsMisuse(t *testing.T) {
	a, b, c := instance(t, 2, 3, 2, 5)
	tests := []struct {
		name   string
		a, b   *tensor.Int8Matrix
		rounds int
	}{
		{"zero rounds", a, b, 0},
		{"negative rounds", a, b, -1},
		{"inputs do not conform", a, a, 1},
		{"nil input", nil, b, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := FreivaldsInt8(tt.a, tt.b, c, seedOf(4), tt.rounds); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("error = %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// TestFreivaldsProperty checks, over many random small instances, that the
// honest product always passes and that a random corruption always fails at
// the corrupted row, and that verdicts depend only on the inputs and seed.
func TestFreivaldsProperty(t *testing.T) {
	rng := newXoshiro256(seedOf(99))
	for trial := range 300 {
		m, k, n := 1+int(rng.next()%9), 1+int(rng.next()%9), 1+int(rng.next()%9)
		a, b, c := instance(t, m, k, n, rng.next())
		seed := seedOf(trial)
		if v, err := FreivaldsInt8(a, b, c, seed, 2); err != nil || !v.OK {
			t.Fatalf("trial %d: honest %dx%dx%d gave %+v, %v", trial, m, k, n, v, err)
		}
		bad := clone(c)
		first := len(bad.Data)
		for range 1 + rng.next()%3 {
			i := int(rng.next() % uint64(len(bad.Data)))
			delta := int32(rng.next()>>32) | 1 // never zero
			bad.Data[i] += delta
			first = min(first, i)
		}
		v1, err := FreivaldsInt8(a, b, bad, seed, 2)
		if err != nil {
			t.Fatal(err)
		}
		v2, _ := FreivaldsInt8(a, b, bad, seed, 2)
		if v1 != v2 {
			t.Fatalf("trial %d: same seed, different verdicts %+v and %+v", trial, v1, v2)
		}
		if v1.OK || v1.BadRow != first/n {
			t.Fatalf("trial %d: corrupted output gave %+v, want failure at row %d", trial, v1, first/n)
		}
	}
}

func BenchmarkFreivalds(b *testing.B) {
	for _, n := range []int{512, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, y, c := instance(b, n, n, n, 1)
			recompute := time.Duration(math.MaxInt64) // best of three
			for range 3 {
				start := time.Now()
				if _, err := tensor.MatMulInt8(x, y); err != nil {
					b.Fatal(err)
				}
				recompute = min(recompute, time.Since(start))
			}
			for b.Loop() {
				if v, err := FreivaldsInt8(x, y, c, seedOf(n), 1); err != nil || !v.OK {
					b.Fatal(v, err)
				}
			}
			check := float64(b.Elapsed()) / float64(b.N)
			b.ReportMetric(float64(recompute)/check, "x-faster-than-recompute")
		})
	}
}
