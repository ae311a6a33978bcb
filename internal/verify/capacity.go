package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/internal/tensor"
)

// A proof of capacity is a chain of dense products a node must finish within a deadline
// its declared rate sets. Challenge (Seed, N, Links) defines, for i = 1..Links,
//
//	X_0 = an N×N int8 matrix drawn from the seed
//	B_i = an N×N int8 matrix drawn from the seed and i
//	C_i = X_{i-1}·B_i (int32, exact)
//	X_i = Requantize(C_i): bits 8..15 of each element, as int8
//
// and its answer is the Links digests of the C_i (CapacityDigest). Each link needs the one
// before it, so the links cannot run in parallel, and each is an O(N³) product with no
// shortcut: B_i is fresh randomness. The answer's time gives the rate.
//
// A validator checks an answer without redoing it by spot checks: after the digests have
// arrived it picks links j at random and asks for C_{j-1} and C_j. CheckCapacityLink
// checks both against the digests the node already sent, derives X_{j-1} from C_{j-1} (X_0
// from the seed for j = 1) and checks C_j = X_{j-1}·B_j with Freivalds' algorithm, seeded
// by the validator's fresh randomness: O(N²) against the link's O(N³). A link whose
// digest is not the product of the previous link's is caught whenever it is checked.
//
// Detection: a node that answered b of the k links wrongly (skipped them to finish
// sooner, say) passes s spot checks of distinct links drawn uniformly with probability
//
//	C(k-b, s) / C(k, s) ≤ (1 - b/k)^s
//
// so one that skips a fraction f of its work is caught with probability at least
// 1 - (1-f)^s: with s = 2, 75% for half the work skipped, 19% for a tenth. Each later
// challenge is a fresh draw. Skipping buys time only in proportion to f, so a node that
// claims twice its rate must skip half its links and is caught three times in four.

// Bounds on a capacity challenge. A link's C is 4·N² bytes; a spot check moves two.
const (
	MaxCapacityN     = 1024
	MaxCapacityLinks = 4096
)

// CapacityChallenge is one proof-of-capacity challenge.
type CapacityChallenge struct {
	Seed  [32]byte
	N     int
	Links int
}

// Validate reports whether the challenge is in bounds.
func (ch CapacityChallenge) Validate() error {
	if ch.N < 1 || ch.N > MaxCapacityN || ch.Links < 1 || ch.Links > MaxCapacityLinks {
		return fmt.Errorf("%w: capacity challenge n=%d links=%d (want 1..%d and 1..%d)", ErrInvalidArgument, ch.N, ch.Links, MaxCapacityN, MaxCapacityLinks)
	}
	return nil
}

// Ops is the challenge's operation count: Links products of N×N by N×N, 2N³ each.
func (ch CapacityChallenge) Ops() uint64 {
	return uint64(ch.Links) * tensor.MatMulOps(ch.N, ch.N, ch.N)
}

// capacityDomain separates the matrices of a capacity challenge from any other use of
// its seed.
const capacityDomain = "omnisync/verify/capacity/v1"

// capacityMatrix is X_0 (link 0) or B_i (link i) of the challenge.
func (ch CapacityChallenge) capacityMatrix(link int) (*tensor.Int8Matrix, error) {
	h := sha256.New()
	h.Write([]byte(capacityDomain))
	h.Write(ch.Seed[:])
	var i [8]byte
	binary.BigEndian.PutUint64(i[:], uint64(link))
	h.Write(i[:])
	return tensor.RandomInt8(ch.N, ch.N, binary.BigEndian.Uint64(h.Sum(nil)))
}

// CapacityStart is X_0, the chain's first left operand.
func CapacityStart(ch CapacityChallenge) (*tensor.Int8Matrix, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	return ch.capacityMatrix(0)
}

// CapacityFactor is B_link, link's right operand (1 ≤ link ≤ Links).
func CapacityFactor(ch CapacityChallenge, link int) (*tensor.Int8Matrix, error) {
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	if link < 1 || link > ch.Links {
		return nil, fmt.Errorf("%w: link %d of %d", ErrInvalidArgument, link, ch.Links)
	}
	return ch.capacityMatrix(link)
}

// Requantize maps a link's product to the next link's left operand: bits 8..15 of each
// element. The low bits of a sum of N products of uniform int8s are close to uniform for
// any N the challenge allows, so the chain stays as dense as its start and no link
// degenerates into a product of small numbers.
func Requantize(c *tensor.Int32Matrix) (*tensor.Int8Matrix, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	x := &tensor.Int8Matrix{Rows: c.Rows, Cols: c.Cols, Data: make([]int8, len(c.Data))}
	for i, v := range c.Data {
		x.Data[i] = int8(v >> 8)
	}
	return x, nil
}

// CapacityDigest names a link's product: "sha256:<hex>" of its tensor encoding, as the
// object store names blobs.
func CapacityDigest(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CapacitySolution is an honest node's answer: the digest of every link's product, and
// the products' encodings, which it keeps for the spot checks that follow.
type CapacitySolution struct {
	Digests  []string
	Products [][]byte // Products[i] is the encoding of C_{i+1}
}

// ErrStopped is SolveCapacityWhile's error when its caller stopped it.
var ErrStopped = errors.New("capacity challenge stopped")

// SolveCapacity runs the challenge's chain of products, as an honest node does.
func SolveCapacity(ch CapacityChallenge) (CapacitySolution, error) {
	return SolveCapacityWhile(ch, nil)
}

// SolveCapacityWhile is SolveCapacity that asks proceed before each link and stops with
// ErrStopped when it says no (a node past its deadline); nil proceeds always.
func SolveCapacityWhile(ch CapacityChallenge, proceed func() bool) (CapacitySolution, error) {
	return SolveCapacityWith(ch, proceed, tensor.MatMulInt8)
}

// SolveCapacityWith is SolveCapacityWhile with each link's product computed by mul, which
// must be tensor.MatMulInt8's (a GPU's, say): the answer is checked against the products
// themselves, so a wrong mul gives a wrong answer, never a different rule.
func SolveCapacityWith(ch CapacityChallenge, proceed func() bool, mul func(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error)) (CapacitySolution, error) {
	x, err := CapacityStart(ch)
	if err != nil {
		return CapacitySolution{}, err
	}
	sol := CapacitySolution{Digests: make([]string, ch.Links), Products: make([][]byte, ch.Links)}
	for i := 1; i <= ch.Links; i++ {
		if proceed != nil && !proceed() {
			return CapacitySolution{}, fmt.Errorf("%w at link %d of %d", ErrStopped, i, ch.Links)
		}
		b, err := ch.capacityMatrix(i)
		if err != nil {
			return CapacitySolution{}, err
		}
		c, err := mul(x, b)
		if err != nil {
			return CapacitySolution{}, err
		}
		enc, err := c.MarshalBinary()
		if err != nil {
			return CapacitySolution{}, err
		}
		sol.Digests[i-1], sol.Products[i-1] = CapacityDigest(enc), enc
		if x, err = Requantize(c); err != nil {
			return CapacitySolution{}, err
		}
	}
	return sol, nil
}

// SpotLinks are the links a spot check needs for link j: C_{j-1} (nil for j = 1) and C_j.
func (s CapacitySolution) SpotLinks(j int) (prev, cur []byte, err error) {
	if j < 1 || j > len(s.Products) {
		return nil, nil, fmt.Errorf("%w: link %d of %d", ErrInvalidArgument, j, len(s.Products))
	}
	if j > 1 {
		prev = s.Products[j-2]
	}
	return prev, s.Products[j-1], nil
}

// CheckCapacityLink spot-checks link j (1-based) of a node's answer to ch: digests is the
// answer it sent before it knew which links would be checked, prev and cur the encodings
// of C_{j-1} (empty for j = 1) and C_j it sent when asked. checkSeed must be randomness
// the node could not know when it sent its digests: one who knew the Freivalds vectors
// could forge a C_j that passes them without doing the product. The cost is O(N²).
//
// A failed Verdict is evidence against the node: a product that does not match the
// digest it committed to, or a committed link that is not the product of the one before.
// A challenge out of bounds, a j out of range or rounds < 1 are caller errors.
func CheckCapacityLink(ch CapacityChallenge, j int, digests []string, prev, cur []byte, checkSeed [32]byte, rounds int) (Verdict, error) {
	if err := ch.Validate(); err != nil {
		return Verdict{}, err
	}
	if j < 1 || j > ch.Links {
		return Verdict{}, fmt.Errorf("%w: link %d of %d", ErrInvalidArgument, j, ch.Links)
	}
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	ops := tensor.MatMulOps(ch.N, ch.N, ch.N)
	fail := func(format string, args ...any) (Verdict, error) {
		v := failed(0, -1, "link %d: "+format, append([]any{j}, args...)...)
		v.Ops = ops
		return v, nil
	}
	if len(digests) != ch.Links {
		return fail("the answer has %d digests for %d links", len(digests), ch.Links)
	}
	c, err := decodeLink(cur, ch.N)
	if err != nil {
		return fail("product: %v", err)
	}
	if d := CapacityDigest(cur); d != digests[j-1] {
		return fail("product hashes to %s, but the node answered %s", d, digests[j-1])
	}
	var x *tensor.Int8Matrix
	if j == 1 {
		if len(prev) != 0 {
			return fail("the first link has no previous product")
		}
		x, err = ch.capacityMatrix(0)
	} else {
		p, perr := decodeLink(prev, ch.N)
		if perr != nil {
			return fail("previous product: %v", perr)
		}
		if d := CapacityDigest(prev); d != digests[j-2] {
			return fail("previous product hashes to %s, but the node answered %s", d, digests[j-2])
		}
		x, err = Requantize(p)
	}
	if err != nil {
		return Verdict{}, err
	}
	b, err := ch.capacityMatrix(j)
	if err != nil {
		return Verdict{}, err
	}
	v, err := FreivaldsInt8(x, b, c, checkSeed, rounds)
	if err != nil {
		return Verdict{}, err
	}
	v.Ops = ops
	if !v.OK {
		v.Reason = fmt.Sprintf("link %d: its product is not the previous link's times B_%d: %s", j, j, v.Reason)
	}
	return v, nil
}

// decodeLink decodes a link's product and checks it is N×N.
func decodeLink(b []byte, n int) (*tensor.Int32Matrix, error) {
	c, err := tensor.DecodeInt32(b)
	if err != nil {
		return nil, err
	}
	if c.Rows != n || c.Cols != n {
		return nil, fmt.Errorf("%dx%d, want %dx%d", c.Rows, c.Cols, n, n)
	}
	return c, nil
}

// CapacityDeadline is how long a node may take to answer a challenge of ops operations
// at the rate it declared (tflopsMilli; 10^6 operations a millisecond each): slack times
// the time the work takes at that rate, plus allowance for the network and the request's
// handling, in milliseconds. A zero rate has no deadline to meet: 0.
func CapacityDeadline(ops, tflopsMilli, slack, allowanceMillis uint64) uint64 {
	if tflopsMilli == 0 {
		return 0
	}
	perMilli := tflopsMilli * 1_000_000
	expected := (ops + perMilli - 1) / perMilli
	return slack*expected + allowanceMillis
}

// MeasuredTFLOPSMilli is the rate a challenge of ops operations answered in millis shows,
// in milli-TFLOPS, rounded down and at least 1 (a millisecond or less counts as one).
func MeasuredTFLOPSMilli(ops, millis uint64) uint64 {
	return max(ops/max(millis, 1)/1_000_000, 1)
}
