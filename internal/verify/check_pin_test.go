package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
)

// pinnedCheckMatMulInt8 is CheckKernel's matmul-int8 check as it was before it read its
// inputs and the output in place: decoded copies checked by FreivaldsInt8. The reference
// that pins the validator's verdicts, and the other half of the paired benchmark.
func pinnedCheckMatMulInt8(inputs [][]byte, output []byte, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	a, b, err := tensor.DecodeMatMulInt8Inputs(inputs)
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return checkProduct(tensor.MatMulOps(a.Rows, a.Cols, b.Cols), output, tensor.DecodeInt32,
		func(c *tensor.Int32Matrix) (Verdict, error) { return FreivaldsInt8(a, b, c, seed, rounds) })
}

// Every verdict of the matmul-int8 check, its transcript and the row it blames included,
// and every error, is what it was: for right and wrong outputs of several shapes, at the
// extremes of int8 and int32, under several seeds and round counts.
func TestCheckKernelMatMulInt8Pinned(t *testing.T) {
	type product struct {
		inputs [][]byte
		output []byte
	}
	var products []product
	for i, s := range [][3]int{{1, 1, 1}, {5, 4, 3}, {64, 64, 64}, {7, 130, 9}} {
		a, b, _ := instance(t, s[0], s[1], s[2], uint64(30+i))
		inputs := [][]byte{encode(t, a), encode(t, b)}
		out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, product{inputs, out})
	}
	lo, hi := tensor.Int8Matrix{Rows: 3, Cols: 4, Data: make([]int8, 12)}, tensor.Int8Matrix{Rows: 4, Cols: 2, Data: make([]int8, 8)}
	for i := range lo.Data {
		lo.Data[i] = -128
	}
	for i := range hi.Data {
		hi.Data[i] = 127
	}
	extreme := [][]byte{encode(t, &lo), encode(t, &hi)}
	out, _ := tensor.RunKernel(tensor.KernelMatMulInt8, extreme)
	products = append(products, product{extreme, out})

	for pi, p := range products {
		outputs := map[string][]byte{"honest": p.output, "empty": nil, "truncated": p.output[:len(p.output)-1],
			"int8": p.inputs[0], "trailing": append(bytes.Clone(p.output), 0)}
		for _, at := range []int{0, (len(p.output) - 16) / 8, (len(p.output)-16)/4 - 1} {
			for _, v := range []uint32{1, 1 << 31, 0xffffffff} {
				bad := bytes.Clone(p.output)
				w := bad[16+4*at:]
				binary.LittleEndian.PutUint32(w, binary.LittleEndian.Uint32(w)^v)
				outputs[fmt.Sprintf("element %d ^ %#x", at, v)] = bad
			}
		}
		reshaped := bytes.Clone(p.output)
		binary.LittleEndian.PutUint32(reshaped[8:], binary.LittleEndian.Uint32(reshaped[12:]))
		binary.LittleEndian.PutUint32(reshaped[12:], binary.LittleEndian.Uint32(p.output[8:]))
		outputs["transposed shape"] = reshaped
		for name, output := range outputs {
			for _, rounds := range []int{0, 1, 2, 3} {
				for seed := range 3 {
					got, err := CheckKernel(tensor.KernelMatMulInt8, p.inputs, output, seedOf(seed), rounds)
					want, werr := pinnedCheckMatMulInt8(p.inputs, output, seedOf(seed), rounds)
					if got != want || fmt.Sprint(err) != fmt.Sprint(werr) {
						t.Fatalf("product %d, %s, %d rounds, seed %d: %+v, %v; pinned %+v, %v", pi, name, rounds, seed, got, err, want, werr)
					}
				}
			}
		}
	}
	bad := [][][]byte{nil, {products[1].inputs[0]}, {products[1].inputs[0], products[1].inputs[0]}, {products[1].inputs[0], []byte("x")}}
	for i, inputs := range bad {
		_, err := CheckKernel(tensor.KernelMatMulInt8, inputs, products[1].output, seedOf(1), 2)
		_, werr := pinnedCheckMatMulInt8(inputs, products[1].output, seedOf(1), 2)
		if err == nil || err.Error() != werr.Error() {
			t.Fatalf("bad inputs %d: %v, pinned %v", i, err, werr)
		}
	}
}

// The check of a 64×64 product reads its inputs and the output in place: what it
// allocates is its vectors, its transcript's hash and the verdict's words, not copies.
func TestCheckKernelMatMulInt8Allocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	a, b, _ := instance(t, 64, 64, 64, 3)
	inputs := [][]byte{encode(t, a), encode(t, b)}
	out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if v, err := CheckKernel(tensor.KernelMatMulInt8, inputs, out, seedOf(1), 2); err != nil || !v.OK {
			t.Fatalf("%+v, %v", v, err)
		}
	})
	if allocs > 14 { // 2.6 KiB in all; the decoded copies were 24 KiB
		t.Fatalf("%v allocations to check a 64×64 product", allocs)
	}
}

// BenchmarkCheckKernelMatMulInt8 pairs the check with the one it replaced on the devnet's
// job, a 64×64 product, two rounds.
func BenchmarkCheckKernelMatMulInt8(b *testing.B) {
	x, y, _ := instance(b, 64, 64, 64, 3)
	inputs := [][]byte{encode(b, x), encode(b, y)}
	out, err := tensor.RunKernel(tensor.KernelMatMulInt8, inputs)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name  string
		check func([][]byte, []byte, [32]byte, int) (Verdict, error)
	}{{"pinned", pinnedCheckMatMulInt8}, {"now", func(in [][]byte, o []byte, s [32]byte, r int) (Verdict, error) {
		return CheckKernel(tensor.KernelMatMulInt8, in, o, s, r)
	}}} {
		b.Run(k.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v, err := k.check(inputs, out, seedOf(1), 2); err != nil || !v.OK {
					b.Fatal(v, err)
				}
			}
		})
	}
}

// The products over encodings' bytes are mulVec's over the decoded elements, exactly, at
// the extremes of int8, int32 and F_p too.
func TestMulVecBytesIsMulVec(t *testing.T) {
	rng := newXoshiro256(seedOf(9))
	const rows, cols = 3, 37
	v := make([]uint64, cols)
	for j := range v {
		v[j] = rng.fieldElement()
	}
	v[0], v[1] = modulus-1, 0
	i8 := make([]int8, rows*cols)
	i32 := make([]int32, rows*cols)
	for i := range i8 {
		i8[i], i32[i] = int8(rng.fieldElement()), int32(rng.fieldElement())
	}
	i8[0], i8[1], i32[0], i32[1] = -128, 127, -1<<31, 1<<31-1
	b8 := make([]byte, len(i8))
	b32 := make([]byte, 4*len(i32))
	for i := range i8 {
		b8[i] = byte(i8[i])
		binary.LittleEndian.PutUint32(b32[4*i:], uint32(i32[i]))
	}
	got, want := make([]uint64, rows), make([]uint64, rows)
	mulVecInt8Bytes(got, b8, v)
	mulVec(want, i8, v, int8Offset)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("int8: %v, mulVec %v", got, want)
	}
	mulVecInt32Bytes(got, b32, v)
	mulVec(want, i32, v, int32Offset)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("int32: %v, mulVec %v", got, want)
	}
}
