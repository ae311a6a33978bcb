package tensor

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// randomMLP is a model of shape s with weights from seed over the whole int8 range and
// biases within ±2^13.
func randomMLP(t testing.TB, s MLPShape, seed uint64) *MLP {
	t.Helper()
	m := &MLP{Layers: make([]MLPLayer, len(s))}
	state := seed
	for li, ls := range s {
		w, err := RandomInt8(ls.Out, ls.In, splitmix64(&state))
		if err != nil {
			t.Fatal(err)
		}
		l := MLPLayer{LayerShape: ls, Weights: w.Data, Biases: make([]int32, ls.Out)}
		for j := range l.Biases {
			l.Biases[j] = int32(splitmix64(&state)%(1<<14)) - 1<<13
		}
		m.Layers[li] = l
	}
	return m
}

var testShape = MLPShape{{In: 24, Out: 16, Shift: 9}, {In: 16, Out: 12, Shift: 8}, {In: 12, Out: 5, Shift: 7}}

// The batch form is the vector form row by row, and its accumulators are the exact
// pre-requantisation sums.
func TestMLPTraceMatchesForwardRowByRow(t *testing.T) {
	for seed := range uint64(5) {
		m := randomMLP(t, testShape, seed)
		x, _ := RandomInt8(7, testShape[0].In, seed+100)
		tr, err := m.Trace(x)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < x.Rows; i++ {
			want, err := m.Forward(x.Data[i*x.Cols : (i+1)*x.Cols])
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.Output.Data[i*tr.Output.Cols : (i+1)*tr.Output.Cols]; !slices.Equal(got, want) {
				t.Fatalf("seed %d row %d: batch %v, vector %v", seed, i, got, want)
			}
		}
		// Layer 0's accumulators by hand.
		l := m.Layers[0]
		for i := 0; i < x.Rows; i++ {
			for j := 0; j < l.Out; j++ {
				acc := int64(l.Biases[j])
				for k := 0; k < l.In; k++ {
					acc += int64(l.Weights[j*l.In+k]) * int64(x.Data[i*l.In+k])
				}
				if got := tr.Acc[0].Data[i*l.Out+j]; int64(got) != acc {
					t.Fatalf("acc[0][%d][%d] = %d, want %d", i, j, got, acc)
				}
			}
		}
	}
}

func TestMLPAccumulatorBound(t *testing.T) {
	// 4096 weights of -128 on inputs of -128 sum to 2^26: a bias of 2^31 - 2^26 - 1 fits,
	// one more does not.
	w := make([]int8, MLPMaxDim)
	for i := range w {
		w[i] = -128
	}
	m := &MLP{Layers: []MLPLayer{{LayerShape: LayerShape{In: MLPMaxDim, Out: 1}, Weights: w, Biases: []int32{1<<31 - 1<<26 - 1}}}}
	if err := m.AccumulatorsFitInt32(); err != nil {
		t.Fatal(err)
	}
	x := &Int8Matrix{Rows: 1, Cols: MLPMaxDim, Data: w}
	tr, err := m.Trace(x)
	if err != nil || tr.Acc[0].Data[0] != 1<<31-1 {
		t.Fatalf("acc %v, %v; want 2^31 - 1", tr, err)
	}
	m.Layers[0].Biases[0]++
	if _, err := m.Trace(x); !errors.Is(err, ErrRange) {
		t.Fatalf("err = %v, want ErrRange", err)
	}
	m.Layers[0].Biases[0] = -1<<31 + 1<<26 + 1
	if _, err := m.Trace(x); err != nil {
		t.Fatal(err)
	}
}

func TestMLPKernelInputs(t *testing.T) {
	m := randomMLP(t, testShape, 1)
	mb, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	x, _ := RandomInt8(3, testShape[0].In, 2)
	xb, _ := x.MarshalBinary()
	out, err := RunKernel(KernelMLPInt8, [][]byte{mb, xb})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := DecodeMLPTrace(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Trace(x)
	again, _ := want.MarshalBinary()
	if !bytes.Equal(out, again) || len(tr.Acc) != len(testShape) {
		t.Fatal("RunKernel's trace is not Trace's")
	}
	narrow, _ := RandomInt8(3, testShape[0].In-1, 2)
	nb, _ := narrow.MarshalBinary()
	for name, c := range map[string]struct {
		inputs [][]byte
		want   error
	}{
		"one input":     {[][]byte{mb}, ErrKernelInputs},
		"model garbled": {[][]byte{mb[1:], xb}, ErrEncoding},
		"X garbled":     {[][]byte{mb, xb[1:]}, ErrEncoding},
		"X too narrow":  {[][]byte{mb, nb}, ErrShape},
		"X as model":    {[][]byte{xb, mb}, ErrEncoding},
	} {
		if _, err := RunKernel(KernelMLPInt8, c.inputs); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}

func TestMLPEncodingsRoundTrip(t *testing.T) {
	m := randomMLP(t, testShape, 3)
	x, _ := RandomInt8(4, testShape[0].In, 4)
	tr, err := m.Trace(x)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := m.MarshalBinary()
	tb, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// header 4+1+1 + 3 layers of 9, then parameters; header 4+1+1+4 + 3·4, then data
	if len(mb) != 6+27+testShape.Weights()+3*(16+12+5) || len(tb) != 22+4*4*(16+12+5)+4*5 {
		t.Fatalf("model %d bytes, trace %d", len(mb), len(tb))
	}
	m2, err := DecodeMLP(mb)
	if err != nil {
		t.Fatal(err)
	}
	tr2, err := DecodeMLPTrace(tb)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := m2.MarshalBinary(); !bytes.Equal(b, mb) {
		t.Fatal("model changed in a round trip")
	}
	if b, _ := tr2.MarshalBinary(); !bytes.Equal(b, tb) {
		t.Fatal("trace changed in a round trip")
	}
	for name, b := range map[string][]byte{"model": mb, "trace": tb} {
		decode := map[string]func([]byte) error{
			"model": func(b []byte) error { _, err := DecodeMLP(b); return err },
			"trace": func(b []byte) error { _, err := DecodeMLPTrace(b); return err },
		}[name]
		for n := range len(b) {
			if err := decode(b[:n]); !errors.Is(err, ErrEncoding) {
				t.Fatalf("%s cut to %d of %d bytes: err = %v", name, n, len(b), err)
			}
		}
		if err := decode(append(bytes.Clone(b), 0)); !errors.Is(err, ErrEncoding) {
			t.Fatalf("%s with a byte appended: err = %v", name, err)
		}
	}
	// A trace whose output is not as wide as its last accumulators does not encode.
	tr.Output = &Int8Matrix{Rows: 4, Cols: 4, Data: make([]int8, 16)}
	if _, err := tr.MarshalBinary(); !errors.Is(err, ErrShape) {
		t.Fatalf("err = %v, want ErrShape", err)
	}
}

func FuzzDecodeMLP(f *testing.F) {
	m := randomMLP(f, MLPShape{{In: 3, Out: 2, Shift: 1}, {In: 2, Out: 1}}, 1)
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:10])
	f.Add([]byte("OMZM\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\x00"))
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeRoundTrip(t, in, DecodeMLP) })
}

func FuzzDecodeMLPTrace(f *testing.F) {
	m := randomMLP(f, MLPShape{{In: 3, Out: 2, Shift: 1}, {In: 2, Out: 1}}, 1)
	x, _ := RandomInt8(2, 3, 1)
	tr, err := m.Trace(x)
	if err != nil {
		f.Fatal(err)
	}
	b, err := tr.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:12])
	f.Add([]byte("OMLT\x01\x01\xff\xff\xff\x07\x00\x10\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeRoundTrip(t, in, DecodeMLPTrace) })
}
