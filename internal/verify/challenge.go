package verify

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/omnisync/omnisync/internal/tensor"
)

// ErrInvalidPositions reports challenge positions that are not canonical: empty, more than
// MaxChallengeRows, not strictly increasing, past the last row, or leaving no real row. It
// blames whoever supplied them (the router), never the node.
var ErrInvalidPositions = errors.New("invalid challenge positions")

const (
	// DefaultChallengeRows is how many challenge rows a job of at least that many rows gets:
	// 3.1% more work for the node at n = 1024, and a node that fakes a fraction f of the
	// rows escapes with probability about (1 − f)^32.
	DefaultChallengeRows = 32
	// MinChallengeRows is the fewest a job gets when it is small: with 4, a node faking
	// half the rows of any job escapes with probability 1/16 at most.
	MinChallengeRows = 4
	// MaxChallengeRows bounds the rows a challenge may hide, and so the positions a chain
	// must store (4 bytes each).
	MaxChallengeRows = 1024
)

// How challenge values are drawn (see BuildChallenge): from one of the 2·rowReach+1 real
// rows nearest the donor row in scale, and one of the columns alike to its own within
// colReach places of it in scale; of candidatesPerRow rows so drawn, the one nearest the
// donor's scale is kept.
const (
	rowReach         = 8
	colReach         = 32
	candidatesPerRow = 8
)

// Domain tags for what a challenge seed feeds SHA-256.
const (
	challengeStreamDomain = "omnisync/verify/challenge/stream/v1"
	challengeSaltDomain   = "omnisync/verify/challenge/salt/v1"
)

// Challenge is what a router commits to before dispatching A' and reveals once the node
// has committed its output.
type Challenge struct {
	// Positions are the rows of A' (and of the output C') that are challenge rows,
	// strictly increasing.
	Positions []uint32
	// Salt hides the positions in the commitment: without it, the few ways to place c
	// rows among a small job's rows could be tried one by one against the hash.
	Salt [32]byte
}

// ChallengeRowsFor is how many challenge rows an n×k by k×m product gets:
// DefaultChallengeRows, or n itself between MinChallengeRows and DefaultChallengeRows
// (a 4-row job gets 4, doubling a product too small to matter; a 10-row job gets 10),
// and never more than keep A' and C' within tensor.MaxElements. It is 0 when no row
// fits or a dimension is not positive.
func ChallengeRowsFor(n, k, m int) int {
	if n <= 0 || k <= 0 || m <= 0 {
		return 0
	}
	rows := min(max(n, MinChallengeRows), DefaultChallengeRows)
	return max(0, min(rows, tensor.MaxElements/max(k, m)-n))
}

// BuildChallenge hides rows challenge rows among a's rows at positions drawn uniformly
// from the a.Rows+rows slots of A', and returns A', the challenge and the challenge rows'
// expected output (rows×m: row i is the output row at ch.Positions[i]). The same a, b,
// rows and seed give the same result; seed must be secret from the node (the router
// draws it from crypto/rand), and the salt and every random draw derive from it.
//
// A challenge row is built from a's own values so that a node cannot tell it from a real
// row. It takes a donor row, chosen uniformly, and fills column j with the value at
// (r, j'): r drawn from the 17 real rows nearest the donor in scale (sum of squares),
// j' from the columns alike to j (the same sign, non-negative or not, and a scale
// within 5/4 of j's) within 32 places of it in scale. A value outside column j's range
// in A falls back to (r, j). Of 8 rows so drawn, the one whose scale is nearest the
// donor's is kept. What that preserves, and so what a node cannot use to pick out
// challenge rows:
//
//   - the row's scale and what follows it (mean, variance, maximum magnitude, count of
//     zeros): rows of very different scales, padding rows of zeros and outlier rows are
//     mimicked by their neighbours;
//   - each column's scale, sign and range: outlier channels stay outliers, a
//     non-negative column stays non-negative;
//   - no copies: a challenge row is no real row, and agrees with any one real row at
//     the same column little more often than chance;
//   - no surplus ties: copying each value from its own column (A[r][j]) would make a
//     challenge value equal some real value in its column every time, which a node
//     counts per row in O(nk) and sees clearly when values vary; drawing across alike
//     columns leaves a surplus of one over the window's width.
//
// What a node can still use: structure within a row beyond its scale (values that
// follow their neighbours, as in an image; one-hot or sorted rows), which independent
// draws do not keep; columns that differ from alike ones in shape within the same range
// (a column of only even values); rows whose statistics hang on a few rare large values,
// which fresh draws spread a little wider (challenge rows' maximum magnitude runs low:
// a node shifts its odds slightly but cannot pick them out); and small inputs, where a
// window spans every row or column and a node comparing a handful of rows sees
// mixtures. Challenge rows deter lazy nodes; they prove nothing about a subtle one
// (docs/verification.md).
//
// rows must be 1..MaxChallengeRows, and A' (a.Rows+rows rows) and the node's output must
// stay within tensor.MaxElements; bad arguments are errors wrapping ErrInvalidArgument.
func BuildChallenge(a, b *tensor.Int8Matrix, rows int, seed [32]byte) (aPrime *tensor.Int8Matrix, ch Challenge, expected *tensor.Int32Matrix, err error) {
	if err := checkOperands(a, b); err != nil {
		return nil, Challenge{}, nil, err
	}
	if rows < 1 || rows > MaxChallengeRows {
		return nil, Challenge{}, nil, fmt.Errorf("%w: %d challenge rows, want 1 to %d", ErrInvalidArgument, rows, MaxChallengeRows)
	}
	total := a.Rows + rows
	if total > tensor.MaxElements/max(a.Cols, b.Cols) {
		return nil, Challenge{}, nil, fmt.Errorf("%w: with %d challenge rows A' would be %dx%d and the output %dx%d, over %d elements",
			ErrInvalidArgument, rows, total, a.Cols, total, b.Cols, tensor.MaxElements)
	}

	rng := newXoshiro256(tagged(challengeStreamDomain, seed))
	ch = Challenge{Positions: drawPositions(rng, total, rows), Salt: tagged(challengeSaltDomain, seed)}
	challengeRows := &tensor.Int8Matrix{Rows: rows, Cols: a.Cols, Data: make([]int8, rows*a.Cols)}
	sampler := newRowSampler(a)
	for i := range rows {
		sampler.fill(rng, challengeRows.Data[i*a.Cols:][:a.Cols])
	}
	if expected, err = tensor.MatMulInt8(challengeRows, b); err != nil {
		return nil, Challenge{}, nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return interleave(a, challengeRows, ch.Positions), ch, expected, nil
}

// SaltText and RowsText are the challenge's salt and positions as the chain carries them
// (the ledger's MsgRevealChallenge, whose commitment, ledger.ChallengeCommitment, binds
// them with the digests of A' and of the expected rows): both in lower-case hex, the
// positions as EncodePositions writes them. DecodeRowsText reads the latter back.
func (ch Challenge) SaltText() string { return hex.EncodeToString(ch.Salt[:]) }

// RowsText: see SaltText.
func (ch Challenge) RowsText() string {
	return hex.EncodeToString(EncodePositions(ch.Positions))
}

// DecodeRowsText decodes RowsText's form for an A' of totalRows rows, as DecodePositions
// does, refusing anything but lower-case hex.
func DecodeRowsText(s string, totalRows int) ([]uint32, error) {
	b, err := hex.DecodeString(s)
	if err != nil || hex.EncodeToString(b) != s {
		return nil, fmt.Errorf("%w: rows are not lower-case hex", ErrInvalidPositions)
	}
	return DecodePositions(b, totalRows)
}

// ExpectedRows computes the output rows at positions from A' and B: row i of the result
// is row positions[i] of A'·B. Bad operands or positions are errors wrapping
// ErrInvalidArgument.
func ExpectedRows(aPrime, b *tensor.Int8Matrix, positions []uint32) (*tensor.Int32Matrix, error) {
	if err := checkOperands(aPrime, b); err != nil {
		return nil, err
	}
	if err := checkPositions(positions, aPrime.Rows); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	k := aPrime.Cols
	rows := &tensor.Int8Matrix{Rows: len(positions), Cols: k, Data: make([]int8, 0, len(positions)*k)}
	for _, p := range positions {
		rows.Data = append(rows.Data, aPrime.Data[int(p)*k:][:k]...)
	}
	expected, err := tensor.MatMulInt8(rows, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return expected, nil
}

// CheckChallenge checks a node's encoded output C' of A'·B at the challenge positions.
// The expected rows are recomputed from A' and B (ExpectedRows), never taken from the
// router, so a router that committed wrong answers cannot frame an honest node; whether
// the router's commitment matches them is the caller's check.
//
// An output that does not decode or is not (rows of A')×(columns of B) fails with
// Rounds 0; a challenge row with any wrong element fails with Rounds 1 and BadRow its
// row in C'; otherwise it passes with Rounds 1. A wrong element in a real row passes:
// catching that is Freivalds' work (FreivaldsInt8). Ops is the node's work, the
// operation count of A'·B. Bad operands or positions are errors wrapping
// ErrInvalidArgument.
func CheckChallenge(aPrime, b *tensor.Int8Matrix, output []byte, positions []uint32) (Verdict, error) {
	expected, err := ExpectedRows(aPrime, b, positions)
	if err != nil {
		return Verdict{}, err
	}
	v := compareChallengeRows(expected, output, positions, aPrime.Rows)
	v.Ops = tensor.MatMulOps(aPrime.Rows, aPrime.Cols, b.Cols)
	return v, nil
}

func compareChallengeRows(expected *tensor.Int32Matrix, output []byte, positions []uint32, rows int) Verdict {
	c, err := tensor.DecodeInt32(output)
	if err != nil {
		return failed(0, -1, "output does not decode: %v", err)
	}
	m := expected.Cols
	if c.Rows != rows || c.Cols != m {
		return failed(0, -1, "output is %dx%d, want %dx%d", c.Rows, c.Cols, rows, m)
	}
	for i, p := range positions {
		got, want := c.Data[int(p)*m:][:m], expected.Data[i*m:][:m]
		for j := range got {
			if got[j] != want[j] {
				return failed(1, int(p), "challenge row %d of the output is wrong: column %d is %d, want %d", p, j, got[j], want[j])
			}
		}
	}
	return Verdict{OK: true, Rounds: 1, BadRow: -1, Reason: fmt.Sprintf("all %d challenge rows are right", len(positions))}
}

// StripChallenge removes the challenge rows from a node's output C', leaving the
// consumer's C = A·B. Positions that do not fit C' are errors wrapping
// ErrInvalidArgument.
func StripChallenge(cPrime *tensor.Int32Matrix, positions []uint32) (*tensor.Int32Matrix, error) {
	if err := cPrime.Validate(); err != nil {
		return nil, fmt.Errorf("%w: output: %w", ErrInvalidArgument, err)
	}
	if err := checkPositions(positions, cPrime.Rows); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return &tensor.Int32Matrix{
		Rows: cPrime.Rows - len(positions),
		Cols: cPrime.Cols,
		Data: withoutRows(cPrime.Data, cPrime.Cols, positions),
	}, nil
}

// SameRowsExcept reports whether A' with the rows at positions removed is exactly a:
// the check that a router hid rows without changing the consumer's data. Malformed
// matrices or positions are errors wrapping ErrInvalidArgument.
func SameRowsExcept(aPrime, a *tensor.Int8Matrix, positions []uint32) (bool, error) {
	for _, m := range []*tensor.Int8Matrix{aPrime, a} {
		if err := m.Validate(); err != nil {
			return false, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	if err := checkPositions(positions, aPrime.Rows); err != nil {
		return false, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if aPrime.Cols != a.Cols || aPrime.Rows-len(positions) != a.Rows {
		return false, nil
	}
	return slices.Equal(withoutRows(aPrime.Data, a.Cols, positions), a.Data), nil
}

// EncodePositions is the canonical form of positions for the chain: each as a 4-byte
// little-endian integer, in order. It encodes whatever it is given; DecodePositions
// accepts only valid lists, so only those round-trip.
func EncodePositions(positions []uint32) []byte {
	b := make([]byte, 0, 4*len(positions))
	for _, p := range positions {
		b = binary.LittleEndian.AppendUint32(b, p)
	}
	return b
}

// DecodePositions decodes EncodePositions' form for an A' of totalRows rows, accepting
// only canonical lists: 1 to MaxChallengeRows positions, strictly increasing, below
// totalRows, and fewer than totalRows (A' keeps at least one real row). Anything else is
// an error wrapping ErrInvalidPositions.
func DecodePositions(b []byte, totalRows int) ([]uint32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of 4-byte positions", ErrInvalidPositions, len(b))
	}
	if len(b) > 4*MaxChallengeRows {
		return nil, fmt.Errorf("%w: %d positions, at most %d", ErrInvalidPositions, len(b)/4, MaxChallengeRows)
	}
	positions := make([]uint32, len(b)/4)
	for i := range positions {
		positions[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	if err := checkPositions(positions, totalRows); err != nil {
		return nil, err
	}
	return positions, nil
}

func checkPositions(positions []uint32, totalRows int) error {
	switch {
	case len(positions) == 0:
		return fmt.Errorf("%w: none", ErrInvalidPositions)
	case len(positions) > MaxChallengeRows:
		return fmt.Errorf("%w: %d positions, at most %d", ErrInvalidPositions, len(positions), MaxChallengeRows)
	case len(positions) >= totalRows:
		return fmt.Errorf("%w: %d positions in %d rows leave no real row", ErrInvalidPositions, len(positions), totalRows)
	case int64(positions[len(positions)-1]) >= int64(totalRows):
		return fmt.Errorf("%w: position %d is past the last of %d rows", ErrInvalidPositions, positions[len(positions)-1], totalRows)
	}
	for i := 1; i < len(positions); i++ {
		if positions[i] <= positions[i-1] {
			return fmt.Errorf("%w: position %d follows %d, want strictly increasing", ErrInvalidPositions, positions[i], positions[i-1])
		}
	}
	return nil
}

// withoutRows returns a row-major matrix's data without the rows at positions, which
// checkPositions has accepted.
func withoutRows[T int8 | int32](data []T, cols int, positions []uint32) []T {
	out := make([]T, 0, len(data)-len(positions)*cols)
	next := 0
	for _, p := range positions {
		out = append(out, data[next*cols:int(p)*cols]...)
		next = int(p) + 1
	}
	return append(out, data[next*cols:]...)
}

// interleave returns A': the challenge rows at positions and a's rows, in order, in the
// other slots.
func interleave(a, challengeRows *tensor.Int8Matrix, positions []uint32) *tensor.Int8Matrix {
	k := a.Cols
	aPrime := &tensor.Int8Matrix{Rows: a.Rows + challengeRows.Rows, Cols: k, Data: make([]int8, 0, (a.Rows+challengeRows.Rows)*k)}
	next, real := 0, 0
	for slot := range aPrime.Rows {
		if next < len(positions) && int(positions[next]) == slot {
			aPrime.Data = append(aPrime.Data, challengeRows.Data[next*k:][:k]...)
			next++
		} else {
			aPrime.Data = append(aPrime.Data, a.Data[real*k:][:k]...)
			real++
		}
	}
	return aPrime
}

// drawPositions returns count slots of total drawn uniformly without replacement
// (Floyd's algorithm), sorted.
func drawPositions(rng *xoshiro256, total, count int) []uint32 {
	chosen := make(map[uint32]bool, count)
	positions := make([]uint32, 0, count)
	for j := total - count; j < total; j++ {
		p := uint32(rng.below(uint64(j) + 1))
		if chosen[p] {
			p = uint32(j)
		}
		chosen[p] = true
		positions = append(positions, p)
	}
	slices.Sort(positions)
	return positions
}

// rowSampler draws challenge rows from a's values (see BuildChallenge).
type rowSampler struct {
	a              *tensor.Int8Matrix
	rowScale       []int64 // sum of squares of each real row
	rowsByScale    []int   // real rows, smallest scale first
	colsByScale    []int   // columns, non-negative ones first, then by scale
	colWindow      [][2]int
	colMin, colMax []int8
	candidate      []int8
}

func newRowSampler(a *tensor.Int8Matrix) *rowSampler {
	n, k := a.Rows, a.Cols
	s := &rowSampler{
		a: a, rowScale: make([]int64, n), colWindow: make([][2]int, k),
		colMin: slices.Clone(a.Data[:k]), colMax: slices.Clone(a.Data[:k]), candidate: make([]int8, k),
	}
	colScale := make([]int64, k)
	for i := range n {
		for j, x := range a.Data[i*k:][:k] {
			sq := int64(x) * int64(x)
			s.rowScale[i] += sq
			colScale[j] += sq
			s.colMin[j] = min(s.colMin[j], x)
			s.colMax[j] = max(s.colMax[j], x)
		}
	}
	s.rowsByScale = byScale(s.rowScale, nil)
	s.colsByScale = byScale(colScale, func(j int) bool { return s.colMin[j] < 0 })
	alike := func(p, q int) bool { // columns at ranks p and q
		x, y := s.colsByScale[p], s.colsByScale[q]
		lo, hi := min(colScale[x], colScale[y]), max(colScale[x], colScale[y])
		return (s.colMin[x] < 0) == (s.colMin[y] < 0) && 4*hi <= 5*lo
	}
	for q, j := range s.colsByScale {
		lo, hi := q, q
		for lo > 0 && q-lo < colReach && alike(q, lo-1) {
			lo--
		}
		for hi < k-1 && hi-q < colReach && alike(q, hi+1) {
			hi++
		}
		s.colWindow[j] = [2]int{lo, hi}
	}
	return s
}

// byScale returns the indexes of scale in increasing order of (signed, scale, index);
// signed may be nil.
func byScale(scale []int64, signed func(int) bool) []int {
	order := make([]int, len(scale))
	for i := range order {
		order[i] = i
	}
	flag := func(i int) int {
		if signed != nil && signed(i) {
			return 1
		}
		return 0
	}
	slices.SortFunc(order, func(x, y int) int {
		return cmp.Or(cmp.Compare(flag(x), flag(y)), cmp.Compare(scale[x], scale[y]), cmp.Compare(x, y))
	})
	return order
}

// fill writes one challenge row into dst: of candidatesPerRow rows drawn around a donor,
// the one whose scale is nearest the donor's.
func (s *rowSampler) fill(rng *xoshiro256, dst []int8) {
	donor := int(rng.below(uint64(s.a.Rows)))
	target := s.rowScale[s.rowsByScale[donor]]
	var best int64 = -1
	for range candidatesPerRow {
		scale := s.draw(rng, donor, s.candidate)
		if d := max(scale-target, target-scale); best < 0 || d < best {
			best = d
			copy(dst, s.candidate)
		}
	}
}

// draw fills dst with values from rows near the donor (by rank in scale) and columns
// alike to each column, and returns its sum of squares.
func (s *rowSampler) draw(rng *xoshiro256, donor int, dst []int8) (scale int64) {
	n, k := s.a.Rows, s.a.Cols
	for j := range dst {
		r := s.rowsByScale[reflect(donor+nearby(rng, rowReach), n)]
		w := s.colWindow[j]
		v := s.a.Data[r*k+s.colsByScale[w[0]+int(rng.below(uint64(w[1]-w[0]+1)))]]
		if v < s.colMin[j] || v > s.colMax[j] {
			v = s.a.Data[r*k+j]
		}
		dst[j] = v
		scale += int64(v) * int64(v)
	}
	return scale
}

// nearby returns an offset drawn uniformly from [−reach, reach].
func nearby(rng *xoshiro256, reach int) int {
	return int(rng.below(uint64(2*reach+1))) - reach
}

// reflect folds an index into [0, n) by mirroring it at both ends (−1 becomes 0, n
// becomes n−1). A uniform index plus any symmetric offset, folded, is still uniform, so
// the ends of a window are drawn as often as its middle.
func reflect(i, n int) int {
	i %= 2 * n
	if i < 0 {
		i += 2 * n
	}
	if i >= n {
		i = 2*n - 1 - i
	}
	return i
}

// below returns an integer drawn uniformly from [0, n), n > 0, by Lemire's multiply and
// reject.
func (x *xoshiro256) below(n uint64) uint64 {
	hi, lo := bits.Mul64(x.next(), n)
	if lo < n {
		for threshold := -n % n; lo < threshold; {
			hi, lo = bits.Mul64(x.next(), n)
		}
	}
	return hi
}

// tagged returns SHA-256(domain ‖ seed): one seed, separate uses.
func tagged(domain string, seed [32]byte) [32]byte {
	return sha256.Sum256(append([]byte(domain), seed[:]...))
}
