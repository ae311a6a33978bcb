package verify

import (
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
)

// A passing check's transcript depends on the inputs and the seed only: two checks of
// the same product agree, another seed or another product gives another, and a failing
// check has none. This is what lets an auditor recompute any attester's transcript.
func TestTranscriptIsTheChecksFirstRound(t *testing.T) {
	a, b, c := instance(t, 24, 16, 12, 7)
	v1, err := FreivaldsInt8(a, b, c, seedOf(1), 2)
	if err != nil || !v1.OK || v1.Transcript == "" {
		t.Fatalf("honest product: %+v, %v", v1, err)
	}
	// The transcript is of the first round alone: more rounds leave it as it is.
	if v, _ := FreivaldsInt8(a, b, c, seedOf(1), 3); v.Transcript != v1.Transcript {
		t.Errorf("3 rounds give transcript %s, 2 rounds %s", v.Transcript, v1.Transcript)
	}
	if v, _ := FreivaldsInt8(a, b, c, seedOf(2), 2); v.Transcript == v1.Transcript {
		t.Error("another seed gives the same transcript")
	}
	a2, b2, c2 := instance(t, 24, 16, 12, 8)
	if v, _ := FreivaldsInt8(a2, b2, c2, seedOf(1), 2); v.Transcript == v1.Transcript {
		t.Error("another product gives the same transcript")
	}
	wrong := clone(c)
	wrong.Data[5]++
	if v, _ := FreivaldsInt8(a, b, wrong, seedOf(1), 2); v.OK || v.Transcript != "" {
		t.Errorf("wrong product: %+v", v)
	}

	fa := randomFloat32(t, 16, 12, distributions[0], 1)
	fb := randomFloat32(t, 12, 8, distributions[0], 2)
	fc := productBy(fa, fb, pairwise)
	f1, err := FreivaldsFloat32(fa, fb, fc, seedOf(1), 2)
	if err != nil || !f1.OK || f1.Transcript == "" {
		t.Fatalf("honest fp32 product: %+v, %v", f1, err)
	}
	// Another honest summation order: other bits in C, the same transcript (A·(B·r) only).
	if f, _ := FreivaldsFloat32(fa, fb, productBy(fa, fb, func(x, y []float32) float32 {
		var s float32
		for i := len(x) - 1; i >= 0; i-- {
			s += x[i] * y[i]
		}
		return s
	}), seedOf(1), 2); !f.OK || f.Transcript != f1.Transcript {
		t.Errorf("fp32 product summed in reverse: %+v, want transcript %s", f, f1.Transcript)
	}

	m, x, tr := mlpCase(t, mlpTestShape, 5, 3)
	m1, err := CheckMLP(m, x, tr, seedOf(1), 2)
	if err != nil || !m1.OK || m1.Transcript == "" {
		t.Fatalf("honest MLP trace: %+v, %v", m1, err)
	}
	if v, _ := CheckMLP(m, x, tr, seedOf(1), 1); v.Transcript != m1.Transcript {
		t.Error("the MLP transcript depends on the number of rounds")
	}
	if m1.Transcript == v1.Transcript || m1.Transcript == f1.Transcript || f1.Transcript == v1.Transcript {
		t.Error("two kernels share a transcript")
	}
}

// An attestation's transcript names its validator: one validator's reveals nothing another
// can state, and it is a digest, not the check's own.
func TestAttestTranscriptBindsTheValidator(t *testing.T) {
	a, b, c := instance(t, 8, 8, 8, 1)
	v, _ := FreivaldsInt8(a, b, c, seedOf(1), 1)
	x, y := AttestTranscript(v.Transcript, "omni1aaa"), AttestTranscript(v.Transcript, "omni1bbb")
	if x == y || x == v.Transcript || len(x) != len("sha256:")+64 {
		t.Errorf("transcripts %s and %s of check %s", x, y, v.Transcript)
	}
	if AttestTranscript(v.Transcript, "omni1aaa") != x {
		t.Error("AttestTranscript is not deterministic")
	}
	v2, _ := FreivaldsInt8(a, b, c, seedOf(2), 1)
	if AttestTranscript(v2.Transcript, "omni1aaa") == x {
		t.Error("two checks give one validator the same transcript")
	}
}

// The known gap, pinned: a validator that never reads A or B but computes C·r from the
// result has the right transcript when the result is right, and the wrong one when the
// result is wrong, which is when an audit catches it.
func TestTranscriptFromTheResultAloneIsRightOnlyForARightResult(t *testing.T) {
	a, b, c := instance(t, 20, 12, 9, 4)
	honest, _ := FreivaldsInt8(a, b, c, seedOf(9), 2)
	fromResult := func(c *tensor.Int32Matrix) string {
		rng := newXoshiro256(seedOf(9))
		r := make([]uint64, c.Cols)
		for j := range r {
			r[j] = rng.fieldElement()
		}
		cr := make([]uint64, c.Rows)
		mulVec(cr, c.Data, r, int32Offset)
		tr := newTranscript(tensor.KernelMatMulInt8)
		tr.values(cr)
		return tr.sum()
	}
	if got := fromResult(c); got != honest.Transcript {
		t.Errorf("C·r of a right result: %s, the check's %s", got, honest.Transcript)
	}
	wrong := clone(c)
	wrong.Data[17] -= 3
	if got := fromResult(wrong); got == honest.Transcript {
		t.Error("C·r of a wrong result matches the right transcript")
	}
}
