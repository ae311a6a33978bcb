package verify

import "math/bits"

// Arithmetic in F_p for the Mersenne prime p = 2^61 − 1. Elements are kept
// reduced in [0, p).
const modulus = 1<<61 - 1

// reduce returns x mod p for any uint64 x, using 2^61 ≡ 1 (mod p).
func reduce(x uint64) uint64 {
	x = (x & modulus) + (x >> 61)
	if x >= modulus {
		x -= modulus
	}
	return x
}

// mulMod returns a·b mod p for a, b < p. The 122-bit product hi·2^64 + lo
// folds as (hi·2^3 + lo>>61)·2^61 + (lo & p) ≡ (hi<<3 | lo>>61) + (lo & p).
func mulMod(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return reduce((hi<<3 | lo>>61) + (lo & modulus))
}

// addMod returns a+b mod p for a, b < p.
func addMod(a, b uint64) uint64 {
	s := a + b
	if s >= modulus {
		s -= modulus
	}
	return s
}

// subMod returns a−b mod p for a, b < p.
func subMod(a, b uint64) uint64 {
	if a >= b {
		return a - b
	}
	return a + modulus - b
}

// sumMod returns Σ v mod p for elements of F_p.
func sumMod(v []uint64) uint64 {
	var s uint64
	for _, x := range v {
		s = addMod(s, x)
	}
	return s
}

// mod128 returns (hi·2^64 + lo) mod p, using 2^64 = 2^3·2^61 ≡ 2^3.
func mod128(hi, lo uint64) uint64 {
	return addMod(reduce(reduce(hi)<<3), reduce(lo))
}
