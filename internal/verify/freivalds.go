package verify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/omnisync/omnisync/internal/tensor"
)

// Verdict is the outcome of checking one kernel output.
type Verdict struct {
	// OK is true when every round agreed.
	OK bool
	// Rounds is how many rounds ran: all of them when OK, else the round
	// that caught the output (0 when the output was rejected unchecked).
	Rounds int
	// BadRow is the first row i where (A·(B·r))_i != (C·r)_i, the row that
	// holds a wrong element; -1 when OK or when no row applies.
	BadRow int
	// Reason says in words why the output passed or failed.
	Reason string
	// Ops is the kernel's operation count for the inputs checked (tensor.MatMulOps), set by
	// CheckKernel whatever the verdict: what a passing attestation states the node is
	// billed for.
	Ops uint64
	// Transcript is the digest of the check's first round (transcript.go), set when OK by
	// the product and MLP checks: what a passing attestation shows of the check, bound to
	// its validator by AttestTranscript.
	Transcript string
}

func failed(rounds, row int, format string, args ...any) Verdict {
	return Verdict{Rounds: rounds, BadRow: row, Reason: fmt.Sprintf(format, args...)}
}

// DefaultRounds is how many rounds of FreivaldsInt8 a validator runs unless configured
// otherwise: each round passes a wrong product with probability at most 1/p, so two miss
// one with probability at most p^-2 < 2^-121.
const DefaultRounds = 2

// FreivaldsInt8 checks c == a·b with Freivalds' algorithm over F_p,
// p = 2^61 − 1: each round draws r uniformly from F_p^n and compares
// A·(B·r) with C·r, in O(mk + kn + mn) time instead of O(mkn).
//
// The check is exact: every entry of A·B − C has magnitude below 2^32 < p
// (inner dimension at most tensor.MaxInner), so a wrong C leaves a nonzero
// difference matrix D mod p, and D·r = 0 for at most a 1/p fraction of r.
// Each round therefore passes a wrong product with probability below 2^-60.
//
// seed should come from something the prover could not predict when it
// committed c (a later block hash); the same seed gives the same verdict.
// A c of the wrong shape or malformed is a failed Verdict; malformed or
// non-conforming a and b, or rounds < 1, are caller errors.
func FreivaldsInt8(a, b *tensor.Int8Matrix, c *tensor.Int32Matrix, seed [32]byte, rounds int) (Verdict, error) {
	return FreivaldsInt8On(nil, a, b, c, seed, rounds)
}

// Accelerator computes the matrix-vector products of FreivaldsInt8's rounds somewhere
// other than this process's CPU (a GPU). It only multiplies: the random vectors, the
// transcript and the verdict stay here, so an accelerator's products are held to the same
// rule as the CPU's, and a wrong product from it is a different transcript, not a quiet
// pass.
type Accelerator interface {
	// LoadInt8 makes a, b and c (conforming, validated) ready for Int8Products.Round, and
	// returns a release for what it holds.
	LoadInt8(a, b *tensor.Int8Matrix, c *tensor.Int32Matrix) (Int8Products, func(), error)
}

// Int8Products are one loaded check's products.
type Int8Products interface {
	// Round sets abr = A·(B·r) and cr = C·r mod p, for r in F_p^n (len(r) = b.Cols,
	// len(abr) = len(cr) = a.Rows).
	Round(r, abr, cr []uint64) error
}

// ErrAccelerator wraps an Accelerator's failure: the check did not run, and running it
// again without the accelerator gives the verdict.
var ErrAccelerator = errors.New("accelerator failed")

// FreivaldsInt8On is FreivaldsInt8 with its products computed by acc; nil means this
// process's CPU. The verdict, transcript included, is the same for any accelerator that
// multiplies correctly; an error from acc wraps ErrAccelerator.
func FreivaldsInt8On(acc Accelerator, a, b *tensor.Int8Matrix, c *tensor.Int32Matrix, seed [32]byte, rounds int) (Verdict, error) {
	if err := checkRounds(rounds); err != nil {
		return Verdict{}, err
	}
	if err := checkOperands(a, b); err != nil {
		return Verdict{}, err
	}
	if err := c.Validate(); err != nil {
		return failed(0, -1, "output is malformed: %v", err), nil
	}
	if c.Rows != a.Rows || c.Cols != b.Cols {
		return failed(0, -1, "output is %dx%d, want %dx%d", c.Rows, c.Cols, a.Rows, b.Cols), nil
	}
	var products Int8Products = cpuProducts{a, b, c, make([]uint64, b.Rows)}
	if acc != nil {
		p, release, err := acc.LoadInt8(a, b, c)
		if err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrAccelerator, err)
		}
		defer release()
		products = p
	}
	return freivaldsRounds(products, a.Rows, b.Cols, seed, rounds)
}

// freivaldsInt8Views is FreivaldsInt8 on this CPU over matrices read in place from their
// encodings (tensor.ViewMatMulInt8Inputs, tensor.ViewInt32), with the same verdict:
// CheckKernel's matmul-int8 check copies neither its inputs nor the output.
func freivaldsInt8Views(a, b tensor.Int8View, c tensor.Int32View, seed [32]byte, rounds int) Verdict {
	if c.Rows != a.Rows || c.Cols != b.Cols {
		return failed(0, -1, "output is %dx%d, want %dx%d", c.Rows, c.Cols, a.Rows, b.Cols)
	}
	v, _ := freivaldsRounds(viewProducts{a.Data, b.Data, c.Data, make([]uint64, b.Rows)}, a.Rows, b.Cols, seed, rounds)
	return v // viewProducts never fails
}

// freivaldsRounds runs the rounds of FreivaldsInt8 for an m×k by k×n product whose
// products are given, and words the verdict; an error is the products'.
func freivaldsRounds(products Int8Products, m, n int, seed [32]byte, rounds int) (Verdict, error) {
	rng := newXoshiro256(seed)
	scratch := make([]uint64, n+2*m)
	r, abr, cr := scratch[:n:n], scratch[n:n+m:n+m], scratch[n+m:]
	t := newTranscript(tensor.KernelMatMulInt8)
	for round := 1; round <= rounds; round++ {
		for j := range r {
			r[j] = rng.fieldElement()
		}
		if err := products.Round(r, abr, cr); err != nil {
			return Verdict{}, fmt.Errorf("%w: %w", ErrAccelerator, err)
		}
		if round == 1 {
			t.values(abr)
		}
		for i := range abr {
			if abr[i] != cr[i] {
				return failed(round, i, "row %d of the output is wrong: a·(b·r) != c·r in round %d", i, round), nil
			}
		}
	}
	return Verdict{OK: true, Rounds: rounds, BadRow: -1, Reason: fmt.Sprintf("a·(b·r) = c·r in all %d rounds", rounds), Transcript: t.sum()}, nil
}

// cpuProducts are a round's products on this CPU; br is B·r's scratch.
type cpuProducts struct {
	a, b *tensor.Int8Matrix
	c    *tensor.Int32Matrix
	br   []uint64
}

func (p cpuProducts) Round(r, abr, cr []uint64) error {
	mulVec(p.br, p.b.Data, r, int8Offset)
	mulVec(abr, p.a.Data, p.br, int8Offset)
	mulVec(cr, p.c.Data, r, int32Offset)
	return nil
}

// viewProducts are cpuProducts over the encodings' element bytes (tensor.Int8View,
// tensor.Int32View).
type viewProducts struct {
	a, b, c []byte
	br      []uint64
}

func (p viewProducts) Round(r, abr, cr []uint64) error {
	mulVecInt8Bytes(p.br, p.b, r)
	mulVecInt8Bytes(abr, p.a, p.br)
	mulVecInt32Bytes(cr, p.c, r)
	return nil
}

func checkRounds(rounds int) error {
	if rounds < 1 {
		return fmt.Errorf("%w: rounds %d, need at least 1", ErrInvalidArgument, rounds)
	}
	return nil
}

// checkOperands rejects inputs the kernel itself would refuse; a prover
// cannot be blamed for them.
func checkOperands(a, b *tensor.Int8Matrix) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("%w: input A: %w", ErrInvalidArgument, err)
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("%w: input B: %w", ErrInvalidArgument, err)
	}
	if a.Cols != b.Rows {
		return fmt.Errorf("%w: inputs %dx%d and %dx%d do not conform", ErrInvalidArgument, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if a.Cols > tensor.MaxInner {
		return fmt.Errorf("%w: inner dimension %d exceeds %d", ErrInvalidArgument, a.Cols, tensor.MaxInner)
	}
	return nil
}

// Offsets that make matrix entries non-negative for mulVec.
const (
	int8Offset  = 1 << 7
	int32Offset = 1 << 31
)

// mulVec sets dst = M·v mod p, where M is row-major with len(v) columns.
//
// It avoids a modular reduction per element: shifting each entry by offset
// makes it non-negative (u = x + offset), so a row's Σ u_j·v_j accumulates
// exactly in 128 bits (u < 2^32, v_j < 2^61, at most 2^26 terms: < 2^119).
// One reduction per row and one correction, Σ x_j·v_j = Σ u_j·v_j −
// offset·Σ v_j, follow.
func mulVec[T int8 | int32](dst []uint64, data []T, v []uint64, offset int64) {
	correction := mulMod(uint64(offset), sumMod(v))
	for i := range dst {
		row := data[i*len(v):][:len(v)]
		var hi, lo uint64
		for j, x := range row {
			h, l := bits.Mul64(uint64(int64(x)+offset), v[j])
			var carry uint64
			lo, carry = bits.Add64(lo, l, 0)
			hi += h + carry
		}
		dst[i] = subMod(mod128(hi, lo), correction)
	}
}

// mulVecInt8Bytes is mulVec over int8 elements held as their bytes: x + 2^7 is the byte
// with its top bit flipped.
func mulVecInt8Bytes(dst []uint64, data []byte, v []uint64) {
	correction := mulMod(int8Offset, sumMod(v))
	for i := range dst {
		row := data[i*len(v):][:len(v)]
		var hi, lo uint64
		for j, x := range row {
			h, l := bits.Mul64(uint64(x^0x80), v[j])
			var carry uint64
			lo, carry = bits.Add64(lo, l, 0)
			hi += h + carry
		}
		dst[i] = subMod(mod128(hi, lo), correction)
	}
}

// mulVecInt32Bytes is mulVec over int32 elements held as four little-endian bytes each:
// x + 2^31 is the word with its top bit flipped.
func mulVecInt32Bytes(dst []uint64, data []byte, v []uint64) {
	correction := mulMod(int32Offset, sumMod(v))
	for i := range dst {
		row := data[4*i*len(v):][:4*len(v)]
		var hi, lo uint64
		for j := range v {
			h, l := bits.Mul64(uint64(binary.LittleEndian.Uint32(row[4*j:])^0x80000000), v[j])
			var carry uint64
			lo, carry = bits.Add64(lo, l, 0)
			hi += h + carry
		}
		dst[i] = subMod(mod128(hi, lo), correction)
	}
}
