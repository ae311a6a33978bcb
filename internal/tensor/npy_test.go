package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// numpyFile builds a .npy file the way numpy.save does: header dict, spaces, newline, the
// whole preamble a multiple of 64 bytes (version 1.0; 2.0 has a uint32 length).
func numpyFile(version byte, dict string, data []byte) []byte {
	pre := 10
	if version == 2 {
		pre = 12
	}
	pad := (64 - (pre+len(dict)+1)%64) % 64
	header := dict + strings.Repeat(" ", pad) + "\n"
	b := append([]byte("\x93NUMPY"), version, 0)
	if version == 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	}
	return append(append(b, header...), data...)
}

func TestParseNPYInt8ReadsWhatNumpyWrites(t *testing.T) {
	data := []byte{1, 2, 3, 0xff, 0x80, 0x7f} // 1 2 3 / -1 -128 127
	for _, f := range [][]byte{
		numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", data),
		numpyFile(2, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", data),
		numpyFile(1, "{'shape': (2,3), 'fortran_order': False, 'descr': '<i1'}", data), // any key order
	} {
		m, err := ParseNPYInt8(f)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rows != 2 || m.Cols != 3 || !slices.Equal(m.Data, []int8{1, 2, 3, -1, -128, 127}) {
			t.Fatalf("parsed %dx%d %v", m.Rows, m.Cols, m.Data)
		}
	}
	if len(numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", nil))%64 != 0 {
		t.Fatal("the fixture's preamble is not 64-byte aligned, as numpy's is")
	}
}

func TestParseNPYInt8RefusesWhatItCannotRead(t *testing.T) {
	six := []byte{1, 2, 3, 4, 5, 6}
	for name, f := range map[string][]byte{
		"float32":       numpyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", bytes.Repeat(six, 4)),
		"fortran order": numpyFile(1, "{'descr': '|i1', 'fortran_order': True, 'shape': (2, 3), }", six),
		"1-D":           numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (6,), }", six),
		"3-D":           numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 2, 3), }", six),
		"short data":    numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", six[:5]),
		"long data":     numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", append(six, 7)),
		"no shape":      numpyFile(1, "{'descr': '|i1', 'fortran_order': False, }", six),
		"empty":         numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (0, 3), }", nil),
		"not npy":       []byte("OMT1 is not npy"),
		"version 9":     append([]byte("\x93NUMPY\x09\x00"), 0, 0),
		"header past":   append([]byte("\x93NUMPY\x01\x00"), 0xff, 0x0f),
	} {
		if _, err := ParseNPYInt8(f); !errors.Is(err, ErrEncoding) && !errors.Is(err, ErrShape) {
			t.Errorf("%s: err = %v, want a clear encoding or shape error", name, err)
		}
	}
}

func TestNPYRoundTrips(t *testing.T) {
	a, err := RandomInt8(5, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseNPYInt8(a.NPY())
	if err != nil || back.Rows != 5 || back.Cols != 7 || !slices.Equal(back.Data, a.Data) {
		t.Fatalf("int8 round trip: %v %v", back, err)
	}
	c := &Int32Matrix{Rows: 1, Cols: 3, Data: []int32{-1, 0, 1 << 30}}
	f := c.NPY() // a 64-byte-aligned preamble, then 12 data bytes
	if (len(f)-12)%64 != 0 || !bytes.Contains(f, []byte("'descr': '<i4'")) || !bytes.HasSuffix(f, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x40}) {
		t.Fatalf("int32 npy % x", f)
	}
}

func FuzzParseNPYInt8(f *testing.F) {
	f.Add(numpyFile(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }", []byte{1, 2, 3, 4, 5, 6}))
	f.Add(numpyFile(2, "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 1), }", []byte{9}))
	f.Add([]byte("\x93NUMPY\x01\x00\x05\x00{'a'}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseNPYInt8(b)
		if err != nil {
			return
		}
		back, err := ParseNPYInt8(m.NPY())
		if err != nil || back.Rows != m.Rows || back.Cols != m.Cols || !slices.Equal(back.Data, m.Data) {
			t.Fatalf("a parsed matrix does not round-trip: %v", err)
		}
	})
}

func TestParseNPYIntsReadsEveryIntegerDtype(t *testing.T) {
	for _, tt := range []struct {
		dict string
		data []byte
		want []int64
	}{
		{"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", []byte{7, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, []int64{7, -2}},
		{"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2), }", []byte{0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0x7f}, []int64{-1 << 31, 1<<31 - 1}},
		{"{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", []byte{0xff, 0xff, 0xff, 0xff}, []int64{1<<32 - 1}},
		{"{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", []byte{0x00, 0x80}, []int64{-1 << 15}},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (), }", []byte{200}, []int64{200}},
		{"{'descr': '|i1', 'fortran_order': False, 'shape': (0,), }", nil, []int64{}},
	} {
		_, got, err := ParseNPYInts(numpyFile(1, tt.dict, tt.data))
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v %v, want %v", tt.dict, got, err, tt.want)
		}
	}
	for name, f := range map[string][]byte{
		"float":       numpyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", []byte{0, 0, 0, 0}),
		"uint64":      numpyFile(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)),
		"big-endian":  numpyFile(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)),
		"short data":  numpyFile(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 7)),
		"fortran 2-D": numpyFile(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2), }", make([]byte, 16)),
		"huge":        numpyFile(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (67108864, 67108864, 67108864), }", nil),
	} {
		if _, _, err := ParseNPYInts(f); !errors.Is(err, ErrEncoding) && !errors.Is(err, ErrShape) {
			t.Errorf("%s: err = %v, want a clear encoding or shape error", name, err)
		}
	}
}

func FuzzParseNPYInts(f *testing.F) {
	f.Add(numpyFile(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", make([]byte, 16)))
	f.Add(numpyFile(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }", []byte{3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, v, err := ParseNPYInts(b)
		if err != nil {
			return
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if n != len(v) {
			t.Fatalf("shape %v holds %d elements, parsed %d", shape, n, len(v))
		}
	})
}
