package tensor

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// naiveMatMul is the textbook triple loop: the reference the fast kernel is
// tested and benchmarked against.
func naiveMatMul(a, b *Int8Matrix) *Int32Matrix {
	c := &Int32Matrix{Rows: a.Rows, Cols: b.Cols, Data: make([]int32, a.Rows*b.Cols)}
	for i := 0; i < a.Rows; i++ {
		for j := 0; j < b.Cols; j++ {
			var s int32
			for p := 0; p < a.Cols; p++ {
				s += int32(a.Data[i*a.Cols+p]) * int32(b.Data[p*b.Cols+j])
			}
			c.Data[i*c.Cols+j] = s
		}
	}
	return c
}

func mustRandom(t testing.TB, rows, cols int, seed uint64) *Int8Matrix {
	t.Helper()
	m, err := RandomInt8(rows, cols, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func filled(rows, cols int, v int8) *Int8Matrix {
	m := &Int8Matrix{Rows: rows, Cols: cols, Data: make([]int8, rows*cols)}
	for i := range m.Data {
		m.Data[i] = v
	}
	return m
}

func TestMatMulInt8MatchesNaive(t *testing.T) {
	// Odd widths exercise the unpaired last column, inner sizes that are not
	// multiples of four the unrolled loop's tail.
	shapes := [][3]int{{1, 1, 1}, {1, 5, 1}, {2, 3, 4}, {3, 5, 7}, {7, 4, 1}, {17, 9, 33}, {64, 64, 64}, {5, 130, 3}}
	for i, s := range shapes {
		a := mustRandom(t, s[0], s[1], uint64(2*i))
		b := mustRandom(t, s[1], s[2], uint64(2*i+1))
		got, err := MatMulInt8(a, b)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		want := naiveMatMul(a, b)
		if got.Rows != want.Rows || got.Cols != want.Cols || !slices.Equal(got.Data, want.Data) {
			t.Fatalf("%dx%d·%dx%d: fast kernel differs from the naive loop", s[0], s[1], s[1], s[2])
		}
	}
}

func TestMatMulInt8Extremes(t *testing.T) {
	tests := []struct {
		name string
		a, b int8
		want int32
	}{
		{"largest positive sum", -128, -128, MaxInner * 128 * 128},
		{"largest negative sum", -128, 127, -MaxInner * 128 * 127},
		{"positive", 127, 127, MaxInner * 127 * 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := MatMulInt8(filled(2, MaxInner, tt.a), filled(MaxInner, 3, tt.b))
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range c.Data {
				if v != tt.want {
					t.Fatalf("element = %d, want %d", v, tt.want)
				}
			}
		})
	}
}

func TestMatMulInt8Errors(t *testing.T) {
	tests := []struct {
		name string
		a, b *Int8Matrix
	}{
		{"inner mismatch", filled(2, 3, 1), filled(4, 2, 1)},
		{"nil left", nil, filled(2, 2, 1)},
		{"nil right", filled(2, 2, 1), nil},
		{"data does not match dims", &Int8Matrix{Rows: 2, Cols: 2, Data: make([]int8, 3)}, filled(2, 2, 1)},
		{"inner dimension could overflow int32", filled(1, MaxInner+1, 1), filled(MaxInner+1, 1, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := MatMulInt8(tt.a, tt.b); !errors.Is(err, ErrShape) {
				t.Fatalf("error = %v, want ErrShape", err)
			}
		})
	}
}

func BenchmarkMatMulInt8(b *testing.B) {
	for _, n := range []int{512, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, y := mustRandom(b, n, n, 1), mustRandom(b, n, n, 2)
			start := time.Now()
			naiveMatMul(x, y)
			naive := time.Since(start)
			for b.Loop() {
				if _, err := MatMulInt8(x, y); err != nil {
					b.Fatal(err)
				}
			}
			fast := float64(b.Elapsed()) / float64(b.N)
			b.ReportMetric(float64(naive)/fast, "x-vs-naive")
			b.ReportMetric(float64(n)*float64(n)*float64(n)/fast, "MAC/ns")
		})
	}
}
