package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

func mustRandomFloat32(t testing.TB, rows, cols int, seed uint64) *Float32Matrix {
	t.Helper()
	m, err := RandomFloat32(rows, cols, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// naiveMatMulFloat32 is the textbook triple loop, summing each element in k order in
// float32: the order MatMulFloat32 promises.
func naiveMatMulFloat32(a, b *Float32Matrix) *Float32Matrix {
	c := &Float32Matrix{Rows: a.Rows, Cols: b.Cols, Data: make([]float32, a.Rows*b.Cols)}
	for i := 0; i < a.Rows; i++ {
		for j := 0; j < b.Cols; j++ {
			var s float32
			for p := 0; p < a.Cols; p++ {
				s += float32(a.Data[i*a.Cols+p] * b.Data[p*b.Cols+j])
			}
			c.Data[i*c.Cols+j] = s
		}
	}
	return c
}

func TestFloat32EncodingLayout(t *testing.T) {
	m := &Float32Matrix{Rows: 1, Cols: 2, Data: []float32{1.5, -2}}
	want := append(header("OMT1", 3, 0, 1, 2), 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0)
	if got := mustEncode(t, m); !bytes.Equal(got, want) {
		t.Fatalf("encoding = % x, want % x", got, want)
	}
	back, err := DecodeFloat32(want)
	if err != nil || !slices.Equal(back.Data, m.Data) {
		t.Fatalf("decoded %v, %v", back, err)
	}
}

func TestFloat32RefusesNonFiniteValues(t *testing.T) {
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		m := &Float32Matrix{Rows: 1, Cols: 2, Data: []float32{1, v}}
		if _, err := m.MarshalBinary(); !errors.Is(err, ErrRange) {
			t.Errorf("marshal %v: err = %v, want ErrRange", v, err)
		}
		enc := binary.LittleEndian.AppendUint32(append(header("OMT1", 3, 0, 1, 2), 0, 0, 0x80, 0x3f), math.Float32bits(v))
		if _, err := DecodeFloat32(enc); !errors.Is(err, ErrEncoding) {
			t.Errorf("decode %v: err = %v, want ErrEncoding", v, err)
		}
		if _, err := ParseNPYFloat32(m.NPY()); !errors.Is(err, ErrEncoding) {
			t.Errorf("npy %v: err = %v, want ErrEncoding", v, err)
		}
	}
	if _, err := DecodeFloat32(mustEncode(t, mustRandom(t, 2, 2, 1))); !errors.Is(err, ErrEncoding) {
		t.Errorf("an int8 matrix decoded as float32: %v", err)
	}
}

func TestParseNPYFloat32(t *testing.T) {
	data := binary.LittleEndian.AppendUint32(nil, math.Float32bits(0.25))
	data = binary.LittleEndian.AppendUint32(data, math.Float32bits(-3))
	m, err := ParseNPYFloat32(numpyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", data))
	if err != nil || m.Rows != 1 || m.Cols != 2 || !slices.Equal(m.Data, []float32{0.25, -3}) {
		t.Fatalf("parsed %+v, %v", m, err)
	}
	a := mustRandomFloat32(t, 5, 7, 3)
	back, err := ParseNPYFloat32(a.NPY())
	if err != nil || back.Rows != 5 || back.Cols != 7 || !slices.Equal(back.Data, a.Data) {
		t.Fatalf("npy round trip: %v", err)
	}
	for name, f := range map[string][]byte{
		"float64":    numpyFile(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), }", make([]byte, 8)),
		"big-endian": numpyFile(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1), }", make([]byte, 4)),
		"int8":       numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 4), }", make([]byte, 4)),
		"short data": numpyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", make([]byte, 7)),
	} {
		if _, err := ParseNPYFloat32(f); !errors.Is(err, ErrEncoding) {
			t.Errorf("%s: err = %v, want ErrEncoding", name, err)
		}
	}
}

func TestMatMulFloat32SumsInKOrder(t *testing.T) {
	for _, shape := range [][3]int{{1, 1, 1}, {3, 5, 4}, {7, 9, 6}, {16, 64, 33}} {
		a := mustRandomFloat32(t, shape[0], shape[1], 1)
		b := mustRandomFloat32(t, shape[1], shape[2], 2)
		c, err := MatMulFloat32(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveMatMulFloat32(a, b); !slices.Equal(c.Data, want.Data) {
			t.Fatalf("%v: the kernel's bits differ from the k-order float32 sums", shape)
		}
	}
}

func TestMatMulFloat32RefusesWhatItCannotBound(t *testing.T) {
	ones := func(rows, cols int, v float32) *Float32Matrix {
		m := &Float32Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
		for i := range m.Data {
			m.Data[i] = v
		}
		return m
	}
	subnormal := ones(2, 2, 1)
	subnormal.Data[3] = 0x1p-130
	tests := []struct {
		name string
		a, b *Float32Matrix
		want error
	}{
		{"shapes do not conform", ones(2, 3, 1), ones(2, 3, 1), ErrShape},
		{"subnormal element", ones(2, 2, 1), subnormal, ErrRange},
		{"product could overflow", ones(2, 4, 1e19), ones(4, 2, 1e19), ErrRange},
		{"NaN element", ones(1, 1, float32(math.NaN())), ones(1, 1, 1), ErrRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := MatMulFloat32(tt.a, tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// The limit is not needlessly tight: 1e18² · 4 = 4e36 is accepted, and is finite.
	c, err := MatMulFloat32(ones(1, 4, 1e18), ones(4, 1, 1e18))
	if err != nil || math.IsInf(float64(c.Data[0]), 0) {
		t.Fatalf("c = %v, err = %v", c, err)
	}
}

func TestRunKernelMatMulFloat32(t *testing.T) {
	a, b := mustRandomFloat32(t, 4, 6, 1), mustRandomFloat32(t, 6, 5, 2)
	out, err := RunKernel(KernelMatMulFloat32, [][]byte{mustEncode(t, a), mustEncode(t, b)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeFloat32(out)
	if err != nil || !slices.Equal(c.Data, naiveMatMulFloat32(a, b).Data) {
		t.Fatalf("kernel output differs from the k-order product: %v", err)
	}
	if !slices.Contains(Kernels(), KernelMatMulFloat32) {
		t.Fatalf("Kernels() = %v lacks %s", Kernels(), KernelMatMulFloat32)
	}
	for name, inputs := range map[string][][]byte{
		"one input":   {mustEncode(t, a)},
		"int8 inputs": {mustEncode(t, mustRandom(t, 2, 2, 1)), mustEncode(t, mustRandom(t, 2, 2, 2))},
		"conformance": {mustEncode(t, a), mustEncode(t, a)},
	} {
		if _, err := RunKernel(KernelMatMulFloat32, inputs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRandomFloat32IsInRangeAndDeterministic(t *testing.T) {
	a, b := mustRandomFloat32(t, 50, 50, 9), mustRandomFloat32(t, 50, 50, 9)
	if !slices.Equal(a.Data, b.Data) {
		t.Fatal("same seed, different matrices")
	}
	for _, v := range a.Data {
		if v < -1 || v >= 1 {
			t.Fatalf("element %v outside [-1, 1)", v)
		}
	}
}

func FuzzDecodeFloat32(f *testing.F) {
	f.Add(append(header("OMT1", 3, 0, 1, 1), 0, 0, 0x80, 0x3f))
	f.Add(append(header("OMT1", 3, 0, 1, 1), 0, 0, 0xc0, 0x7f)) // NaN
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeFloat32(b)
		if err != nil {
			return
		}
		if enc, err := m.MarshalBinary(); err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("a decoded matrix does not re-encode to its bytes: %v", err)
		}
	})
}

func FuzzParseNPYFloat32(f *testing.F) {
	f.Add(numpyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }", []byte{0, 0, 0x80, 0x3f}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseNPYFloat32(b)
		if err != nil {
			return
		}
		back, err := ParseNPYFloat32(m.NPY())
		if err != nil || back.Rows != m.Rows || back.Cols != m.Cols || !slices.Equal(back.Data, m.Data) {
			t.Fatalf("a parsed matrix does not round-trip: %v", err)
		}
	})
}
