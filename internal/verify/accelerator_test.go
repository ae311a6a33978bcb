package verify

import (
	"errors"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
)

// slowAccelerator multiplies one element at a time with mulMod, a different route to the
// same products than mulVec's offset accumulation; bend, when set, changes its results.
type slowAccelerator struct {
	loadErr, roundErr error
	bend              func(abr, cr []uint64)
	released          int
}

type slowProducts struct {
	acc     *slowAccelerator
	a, b    *tensor.Int8Matrix
	c       *tensor.Int32Matrix
	scratch []uint64
}

func (s *slowAccelerator) LoadInt8(a, b *tensor.Int8Matrix, c *tensor.Int32Matrix) (Int8Products, func(), error) {
	if s.loadErr != nil {
		return nil, nil, s.loadErr
	}
	return slowProducts{s, a, b, c, make([]uint64, b.Rows)}, func() { s.released++ }, nil
}

// field maps a signed entry into F_p.
func field(x int64) uint64 {
	if x < 0 {
		return modulus - uint64(-x)
	}
	return uint64(x)
}

func slowMulVec[T int8 | int32](dst []uint64, data []T, v []uint64) {
	for i := range dst {
		var s uint64
		for j, x := range data[i*len(v):][:len(v)] {
			s = addMod(s, mulMod(field(int64(x)), v[j]))
		}
		dst[i] = s
	}
}

func (p slowProducts) Round(r, abr, cr []uint64) error {
	if p.acc.roundErr != nil {
		return p.acc.roundErr
	}
	slowMulVec(p.scratch, p.b.Data, r)
	slowMulVec(abr, p.a.Data, p.scratch)
	slowMulVec(cr, p.c.Data, r)
	if p.acc.bend != nil {
		p.acc.bend(abr, cr)
	}
	return nil
}

func TestAcceleratorGivesTheCPUsVerdictAndTranscript(t *testing.T) {
	a, b, c := instance(t, 9, 13, 7, 3)
	bad := clone(c)
	bad.Data[20] -= 1
	for _, tc := range []struct {
		name string
		c    *tensor.Int32Matrix
	}{{"honest", c}, {"one wrong element", bad}} {
		want, err := FreivaldsInt8(a, b, tc.c, seedOf(4), 2)
		if err != nil {
			t.Fatal(err)
		}
		acc := &slowAccelerator{}
		got, err := FreivaldsInt8On(acc, a, b, tc.c, seedOf(4), 2)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: accelerator verdict %+v, CPU %+v", tc.name, got, want)
		}
		if acc.released != 1 {
			t.Fatalf("%s: released %d times, want 1", tc.name, acc.released)
		}
	}
}

// An accelerator that lies cannot turn a wrong product into a pass with the honest
// transcript: the verdict is decided here from its products.
func TestLyingAcceleratorChangesTheTranscriptOrFails(t *testing.T) {
	a, b, c := instance(t, 8, 8, 8, 5)
	honest, err := FreivaldsInt8(a, b, c, seedOf(9), 2)
	if err != nil {
		t.Fatal(err)
	}
	// Off by one in A·(B·r): the rounds disagree.
	v, err := FreivaldsInt8On(&slowAccelerator{bend: func(abr, _ []uint64) { abr[3] = addMod(abr[3], 1) }}, a, b, c, seedOf(9), 2)
	if err != nil || v.OK || v.BadRow != 3 {
		t.Fatalf("bent A·(B·r): %+v, %v", v, err)
	}
	// Both sides bent alike: the rounds agree, but the transcript is not the honest one,
	// which is what an audit of validators compares.
	v, err = FreivaldsInt8On(&slowAccelerator{bend: func(abr, cr []uint64) { abr[0], cr[0] = 1, 1 }}, a, b, c, seedOf(9), 2)
	if err != nil || !v.OK || v.Transcript == honest.Transcript {
		t.Fatalf("bent both sides: %+v, %v (honest transcript %s)", v, err, honest.Transcript)
	}
}

func TestAcceleratorErrorsAreNotVerdicts(t *testing.T) {
	a, b, c := instance(t, 4, 4, 4, 1)
	boom := errors.New("device lost")
	for _, acc := range []*slowAccelerator{{loadErr: boom}, {roundErr: boom}} {
		v, err := FreivaldsInt8On(acc, a, b, c, seedOf(1), 2)
		if !errors.Is(err, ErrAccelerator) || !errors.Is(err, boom) || v != (Verdict{}) {
			t.Fatalf("got %+v, %v; want an ErrAccelerator error and no verdict", v, err)
		}
	}
	// A malformed output is the node's failure, found before any accelerator is asked.
	v, err := FreivaldsInt8On(&slowAccelerator{loadErr: boom}, a, b, &tensor.Int32Matrix{Rows: 4, Cols: 3, Data: make([]int32, 12)}, seedOf(1), 2)
	if err != nil || v.OK {
		t.Fatalf("wrong shape: %+v, %v", v, err)
	}
}
