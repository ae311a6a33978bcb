package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

func header(magic string, dtype byte, reserved byte, rows, cols uint32) []byte {
	b := append([]byte(magic), dtype, reserved, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, rows)
	return binary.LittleEndian.AppendUint32(b, cols)
}

func TestEncodingLayout(t *testing.T) {
	m := &Int32Matrix{Rows: 1, Cols: 2, Data: []int32{1, -2}}
	got, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := append(header("OMT1", 2, 0, 1, 2), 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding = % x, want % x", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	a := mustRandom(t, 3, 5, 7)
	enc, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeInt8(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back.Rows != 3 || back.Cols != 5 || !slices.Equal(back.Data, a.Data) {
		t.Fatalf("int8 round trip changed the matrix")
	}

	c := naiveMatMul(a, mustRandom(t, 5, 4, 8))
	enc, err = c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back32, err := DecodeInt32(enc)
	if err != nil {
		t.Fatal(err)
	}
	if back32.Rows != 3 || back32.Cols != 4 || !slices.Equal(back32.Data, c.Data) {
		t.Fatalf("int32 round trip changed the matrix")
	}
}

func TestMarshalRejectsInconsistentMatrix(t *testing.T) {
	if _, err := (&Int8Matrix{Rows: 2, Cols: 2}).MarshalBinary(); !errors.Is(err, ErrShape) {
		t.Fatalf("error = %v, want ErrShape", err)
	}
	if _, err := (&Int32Matrix{Rows: 1, Cols: 1, Data: []int32{1, 2}}).MarshalBinary(); !errors.Is(err, ErrShape) {
		t.Fatalf("error = %v, want ErrShape", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		int32  bool
		reason string
	}{
		{"empty", nil, false, "shorter than"},
		{"truncated header", []byte("OMT1"), false, "shorter than"},
		{"bad magic", append(header("OMT2", 1, 0, 1, 1), 0), false, "bad magic"},
		{"int32 bytes as int8", append(header("OMT1", 2, 0, 1, 1), 0, 0, 0, 0), false, "dtype 2 (int32), want 1 (int8)"},
		{"int8 bytes as int32", append(header("OMT1", 1, 0, 1, 1), 0), true, "dtype 1 (int8), want 2 (int32)"},
		{"unknown dtype", append(header("OMT1", 9, 0, 1, 1), 0), false, "dtype 9 (unknown)"},
		{"reserved byte set", append(header("OMT1", 1, 1, 1, 1), 0), false, "reserved"},
		{"zero rows", header("OMT1", 1, 0, 0, 1), false, "must be positive"},
		{"too large", header("OMT1", 1, 0, 1<<16, 1<<16), false, "too large"},
		{"largest header", header("OMT1", 2, 0, 1<<32-1, 1<<32-1), true, "too large"},
		{"data short", append(header("OMT1", 1, 0, 2, 2), 1, 2, 3), false, "size mismatch"},
		{"data long", append(header("OMT1", 1, 0, 1, 1), 1, 2), false, "size mismatch"},
		{"int32 data short", append(header("OMT1", 2, 0, 1, 1), 1, 2, 3), true, "size mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.int32 {
				_, err = DecodeInt32(tt.in)
			} else {
				_, err = DecodeInt8(tt.in)
			}
			if !errors.Is(err, ErrEncoding) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error = %v, want ErrEncoding mentioning %q", err, tt.reason)
			}
		})
	}
}

func FuzzDecodeInt8(f *testing.F) {
	f.Add(append(header("OMT1", 1, 0, 2, 3), 1, 2, 3, 4, 5, 6))
	f.Add(header("OMT1", 1, 0, 0, 0))
	f.Add([]byte("OMT1"))
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeRoundTrip(t, in, DecodeInt8) })
}

func FuzzDecodeInt32(f *testing.F) {
	f.Add(append(header("OMT1", 2, 0, 1, 2), 1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff))
	f.Add(append(header("OMT1", 1, 0, 1, 1), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) { checkDecodeRoundTrip(t, in, DecodeInt32) })
}

// checkDecodeRoundTrip holds a decoder to its contract: it fails only with ErrEncoding,
// and whatever it accepts encodes back to exactly the same bytes.
func checkDecodeRoundTrip[M interface{ MarshalBinary() ([]byte, error) }](t *testing.T, in []byte, decode func([]byte) (M, error)) {
	m, err := decode(in)
	if err != nil {
		if !errors.Is(err, ErrEncoding) {
			t.Fatalf("error %v does not wrap ErrEncoding", err)
		}
		return
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("decoded matrix does not encode: %v", err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("round trip changed the bytes")
	}
}
