package tensor

import "fmt"

// MaxInner is the largest inner dimension k for which an int8 product
// accumulates exactly in int32 whatever the inputs: the largest term is
// (-128)·(-128) = 2^14, and k·2^14 must stay below 2^31.
const MaxInner = (1<<31 - 1) / (128 * 128)

// MatMulInt8 returns a·b with exact int32 accumulation.
//
// It is single-threaded and portable Go. Two output columns share one int64
// accumulator ("SIMD within a register"): the packed lane holds
// b[p][j] + b[p][j+1]·2^32, so one multiply-add advances both sums. All
// arithmetic wraps modulo 2^64, and because each final sum S fits in int32
// (MaxInner), the total T = S0 + S1·2^32 (mod 2^64) gives back S0 as its low
// 32 bits and S1 as (T−S0)>>32. The packed copy of b costs 4× b's size.
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
	k, n := a.Cols, b.Cols
	packed, h := packPairs(b)
	acc := make([]int64, h)
	for i := 0; i < a.Rows; i++ {
		clear(acc)
		arow := a.Data[i*k : i*k+k]
		p := 0
		// Four rows of b per pass over acc quarter its loads and stores.
		for ; p+4 <= k; p += 4 {
			x0, x1, x2, x3 := int64(arow[p]), int64(arow[p+1]), int64(arow[p+2]), int64(arow[p+3])
			b0 := packed[p*h:][:len(acc)]
			b1 := packed[(p+1)*h:][:len(acc)]
			b2 := packed[(p+2)*h:][:len(acc)]
			b3 := packed[(p+3)*h:][:len(acc)]
			for j := range acc {
				acc[j] += x0*b0[j] + x1*b1[j] + x2*b2[j] + x3*b3[j]
			}
		}
		for ; p < k; p++ {
			x := int64(arow[p])
			b0 := packed[p*h:][:len(acc)]
			for j := range acc {
				acc[j] += x * b0[j]
			}
		}
		unpackPairs(acc, c.Data[i*n:i*n+n])
	}
	return c, nil
}

// packPairs returns b with columns 2j and 2j+1 of each row packed into one
// int64 lane, and the number of lanes per row.
func packPairs(b *Int8Matrix) ([]int64, int) {
	n := b.Cols
	h := (n + 1) / 2
	packed := make([]int64, b.Rows*h)
	for p := 0; p < b.Rows; p++ {
		row := b.Data[p*n : p*n+n]
		lanes := packed[p*h : p*h+h]
		for j := range lanes {
			lo := int64(row[2*j])
			var hi int64
			if 2*j+1 < n {
				hi = int64(row[2*j+1])
			}
			lanes[j] = lo + hi<<32
		}
	}
	return packed, h
}

// unpackPairs splits packed accumulators back into two int32 columns each.
func unpackPairs(acc []int64, row []int32) {
	for j, t := range acc {
		lo := int32(t)
		row[2*j] = lo
		if 2*j+1 < len(row) {
			row[2*j+1] = int32((t - int64(lo)) >> 32)
		}
	}
}
