package tensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
)

// The kernel as it was before it multiplied in place (columns of b packed in pairs, a
// decoded copy of each input, an Int32Matrix then encoded): the reference that pins the
// node's output bytes, and the other half of the paired benchmark.

func pinnedMatMulInt8(a, b *Int8Matrix) *Int32Matrix {
	c, err := pinnedMatMulInt8Full(a, b)
	if err != nil {
		panic(err)
	}
	return c
}

func pinnedMatMulInt8Full(a, b *Int8Matrix) (*Int32Matrix, error) {
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
	packed, h := pinnedPackPairs(b)
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
		unpinnedPackPairs(acc, c.Data[i*n:i*n+n])
	}
	return c, nil
}

// pinnedPackPairs returns b with columns 2j and 2j+1 of each row packed into one
// int64 lane, and the number of lanes per row.
func pinnedPackPairs(b *Int8Matrix) ([]int64, int) {
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

// pinnedUnpackPairs splits packed accumulators back into two int32 columns each.
func unpinnedPackPairs(acc []int64, row []int32) {
	for j, t := range acc {
		lo := int32(t)
		row[2*j] = lo
		if 2*j+1 < len(row) {
			row[2*j+1] = int32((t - int64(lo)) >> 32)
		}
	}
}

func pinnedRunMatMulInt8(inputs [][]byte) ([]byte, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("%w: %s takes 2 inputs [A, B], got %d", ErrKernelInputs, KernelMatMulInt8, len(inputs))
	}
	a, err := pinnedDecodeInt8(inputs[0])
	if err != nil {
		return nil, fmt.Errorf("input A: %w", err)
	}
	b, err := pinnedDecodeInt8(inputs[1])
	if err != nil {
		return nil, fmt.Errorf("input B: %w", err)
	}
	if a.Cols != b.Rows {
		return nil, fmt.Errorf("%w: A is %dx%d and B is %dx%d; A's columns must equal B's rows", ErrShape, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if a.Cols > MaxInner {
		return nil, fmt.Errorf("%w: inner dimension %d exceeds %d (int32 accumulation could overflow)", ErrShape, a.Cols, MaxInner)
	}
	if err := checkDims(a.Rows, b.Cols); err != nil {
		return nil, err
	}
	c := pinnedMatMulInt8(a, b)
	out := appendHeader(make([]byte, 0, headerSize+4*len(c.Data)), dtypeInt32, c.Rows, c.Cols)
	for _, v := range c.Data {
		out = binary.LittleEndian.AppendUint32(out, uint32(v))
	}
	return out, nil
}

func pinnedDecodeInt8(b []byte) (*Int8Matrix, error) {
	rows, cols, data, err := decodeHeader(b, dtypeInt8, 1)
	if err != nil {
		return nil, err
	}
	m := &Int8Matrix{Rows: rows, Cols: cols, Data: make([]int8, len(data))}
	for i, v := range data {
		m.Data[i] = int8(v)
	}
	return m, nil
}

func encodeInt8(t testing.TB, m *Int8Matrix) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The kernel's output is the bytes it was before, byte for byte, at every shape (odd rows
// leave the last row unpaired, inner sizes not a multiple of four the unrolled loop's
// tail) and at the extremes of int8; and MatMulInt8 agrees with it.
func TestMatMulInt8OutputPinned(t *testing.T) {
	shapes := [][3]int{{1, 1, 1}, {1, 5, 1}, {2, 3, 4}, {3, 5, 7}, {7, 4, 1}, {17, 9, 33}, {64, 64, 64}, {5, 130, 3}, {63, 65, 64}, {1, 64, 2}}
	for i, s := range shapes {
		for v, fill := range []func(r, c int, seed uint64) *Int8Matrix{
			func(r, c int, seed uint64) *Int8Matrix { return mustRandom(t, r, c, seed) },
			func(r, c int, _ uint64) *Int8Matrix { return filled(r, c, -128) },
			func(r, c int, _ uint64) *Int8Matrix { return filled(r, c, 127) },
		} {
			a, b := fill(s[0], s[1], uint64(2*i)), fill(s[1], s[2], uint64(2*i+1))
			if v == 2 {
				b = filled(s[1], s[2], -128)
			}
			inputs := [][]byte{encodeInt8(t, a), encodeInt8(t, b)}
			got, err := RunKernel(KernelMatMulInt8, inputs)
			want, werr := pinnedRunMatMulInt8(inputs)
			if err != nil || werr != nil || !bytes.Equal(got, want) {
				t.Fatalf("%v, fill %d: output differs from the pinned kernel's (%v, %v)", s, v, err, werr)
			}
			c, err := MatMulInt8(a, b)
			if err != nil || !slices.Equal(c.Data, pinnedMatMulInt8(a, b).Data) {
				t.Fatalf("%v, fill %d: MatMulInt8 differs from the pinned kernel (%v)", s, v, err)
			}
		}
	}
	big := [][]byte{encodeInt8(t, filled(2, MaxInner, -128)), encodeInt8(t, filled(MaxInner, 3, -128))}
	got, err := RunKernel(KernelMatMulInt8, big)
	want, werr := pinnedRunMatMulInt8(big)
	if err != nil || werr != nil || !bytes.Equal(got, want) {
		t.Fatalf("largest inner dimension: output differs from the pinned kernel's (%v, %v)", err, werr)
	}
}

// Inputs the kernel refuses are refused in the same words as before.
func TestMatMulInt8ErrorsPinned(t *testing.T) {
	ok := encodeInt8(t, filled(2, 3, 1))
	header := func(dtype byte, r, c uint32, n int) []byte {
		b := appendHeader(nil, dtype, int(r), int(c))
		return append(b, make([]byte, n)...)
	}
	cases := map[string][][]byte{
		"one input":           {ok},
		"three inputs":        {ok, ok, ok},
		"short":               {ok[:10], ok},
		"int32 A":             {header(dtypeInt32, 2, 3, 24), ok},
		"truncated B":         {ok, ok[:len(ok)-1]},
		"not conforming":      {ok, ok},
		"inner too large":     {header(dtypeInt8, 1, MaxInner+1, MaxInner+1), header(dtypeInt8, MaxInner+1, 1, MaxInner+1)},
		"product too large":   {header(dtypeInt8, 1<<20, 1, 1<<20), header(dtypeInt8, 1, 1<<20, 1<<20)},
		"reserved bytes":      {append(append([]byte{}, ok[:5]...), append([]byte{1, 0, 0}, ok[8:]...)...), ok},
		"zero rows":           {header(dtypeInt8, 0, 3, 0), ok},
		"trailing data on B":  {ok, append(encodeInt8(t, filled(3, 2, 1)), 0)},
		"elements over limit": {header(dtypeInt8, 1<<13, 1<<14, 0), ok},
	}
	for name, inputs := range cases {
		_, err := RunKernel(KernelMatMulInt8, inputs)
		_, werr := pinnedRunMatMulInt8(inputs)
		if err == nil || werr == nil || err.Error() != werr.Error() {
			t.Errorf("%s: error %v, the pinned kernel's %v", name, err, werr)
		}
	}
}

// The kernel allocates its output and one small scratch of k+n accumulators, whatever
// the size of its inputs: it neither copies them nor builds the product apart from its
// encoding.
func TestRunMatMulInt8Allocations(t *testing.T) {
	inputs := [][]byte{encodeInt8(t, mustRandom(t, 64, 64, 1)), encodeInt8(t, mustRandom(t, 64, 64, 2))}
	if allocs := testing.AllocsPerRun(20, func() {
		if _, err := RunKernel(KernelMatMulInt8, inputs); err != nil {
			t.Fatal(err)
		}
	}); allocs > 2 {
		t.Fatalf("%v allocations per 64×64 product, want 2", allocs)
	}
}

// BenchmarkRunMatMulInt8 pairs the kernel with the one it replaced on the devnet's job, a
// 64×64 product of 4 KiB inputs, and at 256.
func BenchmarkRunMatMulInt8(b *testing.B) {
	for _, n := range []int{64, 256} {
		inputs := [][]byte{encodeInt8(b, mustRandom(b, n, n, 1)), encodeInt8(b, mustRandom(b, n, n, 2))}
		for _, k := range []struct {
			name string
			run  func([][]byte) ([]byte, error)
		}{{"pinned", pinnedRunMatMulInt8}, {"now", runMatMulInt8}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, k.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := k.run(inputs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
