package verify

import (
	"math/big"
	"testing"
)

var bigP = new(big.Int).SetUint64(modulus)

func TestFieldArithmeticMatchesBig(t *testing.T) {
	edges := []uint64{0, 1, 2, 7, 1<<32 - 1, 1 << 32, modulus - 2, modulus - 1}
	rng := newXoshiro256([32]byte{1})
	values := append([]uint64{}, edges...)
	for range 200 {
		values = append(values, rng.fieldElement())
	}
	for _, a := range values {
		for _, b := range edges {
			want := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
			want.Mod(want, bigP)
			if got := mulMod(a, b); got != want.Uint64() {
				t.Fatalf("mulMod(%d, %d) = %d, want %d", a, b, got, want)
			}
			if got, want := subMod(a, b), (a+modulus-b)%modulus; got != want {
				t.Fatalf("subMod(%d, %d) = %d, want %d", a, b, got, want)
			}
			if got, want := addMod(a, b), (a+b)%modulus; got != want {
				t.Fatalf("addMod(%d, %d) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestMod128MatchesBig(t *testing.T) {
	words := []uint64{0, 1, modulus, modulus + 1, 1<<63 + 12345, 1<<64 - 1}
	for _, hi := range words {
		for _, lo := range words {
			x := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
			x.Or(x, new(big.Int).SetUint64(lo))
			want := x.Mod(x, bigP).Uint64()
			if got := mod128(hi, lo); got != want {
				t.Fatalf("mod128(%#x, %#x) = %d, want %d", hi, lo, got, want)
			}
		}
	}
}

func TestXoshiro256ReferenceVector(t *testing.T) {
	// Outputs of the reference implementation from state {1, 2, 3, 4}.
	x := xoshiro256{s: [4]uint64{1, 2, 3, 4}}
	want := []uint64{11520, 0, 1509978240, 1215971899390074240}
	for i, w := range want {
		if got := x.next(); got != w {
			t.Fatalf("output %d = %d, want %d", i, got, w)
		}
	}
}

func TestSeedsGiveDistinctStreams(t *testing.T) {
	var zero, one [32]byte
	one[31] = 1
	a, b := newXoshiro256(zero), newXoshiro256(one)
	if a.s == [4]uint64{} {
		t.Fatal("all-zero seed gave the all-zero state")
	}
	if a.next() == b.next() {
		t.Fatal("seeds differing in the last byte gave the same first output")
	}
	for range 1000 {
		if v := a.fieldElement(); v >= modulus {
			t.Fatalf("field element %d not below p", v)
		}
	}
}
