package tensor

import "fmt"

// MaxInner is the largest inner dimension k for which an int8 product
// accumulates exactly in int32 whatever the inputs: the largest term is
// (-128)·(-128) = 2^14, and k·2^14 must stay below 2^31.
const MaxInner = (1<<31 - 1) / (128 * 128)

// MatMulInt8 returns a·b with exact int32 accumulation (mulInt8).
func MatMulInt8(a, b *Int8Matrix) (*Int32Matrix, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("left operand: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("right operand: %w", err)
	}
	if a.Cols != b.Rows {
		return nil, fmt.Errorf("%w: cannot multiply %dx%d by %dx%d", ErrShape, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if a.Cols > MaxInner {
		return nil, fmt.Errorf("%w: inner dimension %d exceeds %d, int32 could overflow", ErrShape, a.Cols, MaxInner)
	}
	c, err := NewInt32(a.Rows, b.Cols)
	if err != nil {
		return nil, err
	}
	m, n := a.Rows, b.Cols
	mulInt8(a.Data, b.Data, m, a.Cols, n, func(i int, sums []int64) {
		for j, t := range sums {
			lo, hi := splitPair(t)
			c.Data[i*n+j] = lo
			if i+1 < m {
				c.Data[(i+1)*n+j] = hi
			}
		}
	})
	return c, nil
}

// mulInt8 computes the product of a (m×k) and b (k×n), int8 elements held as E, with
// exact int32 sums, and hands it to put two rows at a time: put(i, sums) gets sums[j]
// packing elements (i, j) and (i+1, j) (splitPair); for the last row of an odd m, the
// second is meaningless. sums is reused: put must not keep it.
//
// It is single-threaded and portable Go. Two output rows share one int64 accumulator
// ("SIMD within a register"): row p of b is multiplied by a[i][p] + a[i+1][p]·2^32, so
// one multiply-add advances both sums. All arithmetic wraps modulo 2^64, and because
// each final sum S fits in int32 (MaxInner), the total T = S0 + S1·2^32 (mod 2^64) gives
// back S0 as its low 32 bits and S1 as (T−S0)>>32. Pairing rows of a, not columns of b,
// packs k values per pair of rows where pairing columns packed a copy of b at 4× its
// size; b is read where it lies, an encoding's bytes as they are.
func mulInt8[E int8 | byte](a, b []E, m, k, n int, put func(i int, sums []int64)) {
	scratch := make([]int64, k+n)
	xs, acc := scratch[:k], scratch[k:]
	for i := 0; i < m; i += 2 {
		for p, x := range a[i*k : i*k+k] {
			xs[p] = int64(int8(x))
		}
		if i+1 < m {
			for p, x := range a[(i+1)*k : (i+1)*k+k] {
				xs[p] += int64(int8(x)) << 32
			}
		}
		clear(acc)
		p := 0
		// Eight rows of b per pass over acc cut its loads and stores eightfold.
		for ; p+8 <= k; p += 8 {
			x0, x1, x2, x3 := xs[p], xs[p+1], xs[p+2], xs[p+3]
			x4, x5, x6, x7 := xs[p+4], xs[p+5], xs[p+6], xs[p+7]
			b0 := b[p*n:][:len(acc)]
			b1 := b[(p+1)*n:][:len(acc)]
			b2 := b[(p+2)*n:][:len(acc)]
			b3 := b[(p+3)*n:][:len(acc)]
			b4 := b[(p+4)*n:][:len(acc)]
			b5 := b[(p+5)*n:][:len(acc)]
			b6 := b[(p+6)*n:][:len(acc)]
			b7 := b[(p+7)*n:][:len(acc)]
			for j := range acc {
				acc[j] += x0*int64(int8(b0[j])) + x1*int64(int8(b1[j])) + x2*int64(int8(b2[j])) + x3*int64(int8(b3[j])) +
					x4*int64(int8(b4[j])) + x5*int64(int8(b5[j])) + x6*int64(int8(b6[j])) + x7*int64(int8(b7[j]))
			}
		}
		for ; p < k; p++ {
			x := xs[p]
			b0 := b[p*n:][:len(acc)]
			for j := range acc {
				acc[j] += x * int64(int8(b0[j]))
			}
		}
		put(i, acc)
	}
}

// splitPair returns the two int32 sums packed in t = lo + hi·2^32 (mod 2^64).
func splitPair(t int64) (lo, hi int32) {
	lo = int32(t)
	return lo, int32((t - int64(lo)) >> 32)
}
