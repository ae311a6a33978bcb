package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// xoshiro256 is Blackman and Vigna's xoshiro256** generator.
type xoshiro256 struct{ s [4]uint64 }

// seedDomain separates this package's use of a seed from any other use of
// the same block hash.
const seedDomain = "omnisync/verify/freivalds/v1"

// newXoshiro256 starts a stream from the caller's 32-byte seed. The state is
// SHA-256(domain ‖ seed), so every state word depends on every seed bit and
// two seeds that differ anywhere give unrelated streams.
func newXoshiro256(seed [32]byte) *xoshiro256 {
	h := sha256.New()
	h.Write([]byte(seedDomain))
	h.Write(seed[:])
	sum := h.Sum(nil)
	var x xoshiro256
	for i := range x.s {
		x.s[i] = binary.LittleEndian.Uint64(sum[8*i:])
	}
	if x.s == [4]uint64{} { // xoshiro never leaves the all-zero state
		x.s[0] = 1
	}
	return &x
}

func (x *xoshiro256) next() uint64 {
	s := &x.s
	result := bits.RotateLeft64(s[1]*5, 7) * 9
	t := s[1] << 17
	s[2] ^= s[0]
	s[3] ^= s[1]
	s[1] ^= s[2]
	s[0] ^= s[3]
	s[2] ^= t
	s[3] = bits.RotateLeft64(s[3], 45)
	return result
}

// fieldElement returns an element of F_p drawn uniformly: 61 random bits
// are uniform over [0, 2^61), and the one value p itself is rejected.
func (x *xoshiro256) fieldElement() uint64 {
	for {
		if v := x.next() >> 3; v < modulus {
			return v
		}
	}
}
