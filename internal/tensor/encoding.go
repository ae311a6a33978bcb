package tensor

import (
	"encoding/binary"
	"fmt"
)

// The OMT1 wire format, little-endian:
//
//	offset 0  "OMT1"
//	offset 4  dtype (1 = int8, 2 = int32, 3 = float32, IEEE 754 binary32)
//	offset 5  three zero bytes
//	offset 8  uint32 rows
//	offset 12 uint32 cols
//	offset 16 rows×cols elements, row-major
//
// Decoders accept exactly the bytes the encoders produce (reserved bytes
// zero, no trailing data), so an encoding is canonical and its sha256 can
// name the matrix in the content-addressed store.
const (
	magic      = "OMT1"
	headerSize = 16

	dtypeInt8  byte = 1
	dtypeInt32 byte = 2
	// dtypeFloat32 elements are IEEE 754 bits; decoders refuse NaN and ±Inf, so the
	// many encodings of NaN cannot name one matrix by several digests.
	dtypeFloat32 byte = 3
)

// MarshalBinary encodes m in the OMT1 format.
func (m *Int8Matrix) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := appendHeader(make([]byte, 0, headerSize+len(m.Data)), dtypeInt8, m.Rows, m.Cols)
	for _, v := range m.Data {
		b = append(b, byte(v))
	}
	return b, nil
}

// MarshalBinary encodes m in the OMT1 format.
func (m *Int32Matrix) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := appendHeader(make([]byte, 0, headerSize+4*len(m.Data)), dtypeInt32, m.Rows, m.Cols)
	for _, v := range m.Data {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

// DecodeInt8 decodes an OMT1 int8 matrix.
func DecodeInt8(b []byte) (*Int8Matrix, error) {
	v, err := ViewInt8(b)
	if err != nil {
		return nil, err
	}
	return v.matrix(), nil
}

// DecodeInt32 decodes an OMT1 int32 matrix.
func DecodeInt32(b []byte) (*Int32Matrix, error) {
	v, err := ViewInt32(b)
	if err != nil {
		return nil, err
	}
	m := &Int32Matrix{Rows: v.Rows, Cols: v.Cols, Data: make([]int32, v.Rows*v.Cols)}
	for i := range m.Data {
		m.Data[i] = v.At(i)
	}
	return m, nil
}

// Int8View is an OMT1 int8 matrix read in place: Data is the encoding's element bytes,
// row-major, each an int8 in two's complement. It shares the encoding's memory, so a
// reader that only reads a matrix once need not copy it.
type Int8View struct {
	Rows, Cols int
	Data       []byte
}

// Int32View is an OMT1 int32 matrix read in place: Data is the encoding's element bytes,
// row-major, four little-endian bytes an element (At). It shares the encoding's memory.
type Int32View struct {
	Rows, Cols int
	Data       []byte
}

// matrix copies v's elements into an Int8Matrix.
func (v Int8View) matrix() *Int8Matrix {
	m := &Int8Matrix{Rows: v.Rows, Cols: v.Cols, Data: make([]int8, len(v.Data))}
	for i, x := range v.Data {
		m.Data[i] = int8(x)
	}
	return m
}

// At returns element i (row i/Cols, column i%Cols).
func (v Int32View) At(i int) int32 { return int32(binary.LittleEndian.Uint32(v.Data[4*i:])) }

// ViewInt8 reads an OMT1 int8 matrix in place; it accepts and refuses exactly what
// DecodeInt8 does.
func ViewInt8(b []byte) (Int8View, error) {
	rows, cols, data, err := decodeHeader(b, dtypeInt8, 1)
	return Int8View{Rows: rows, Cols: cols, Data: data}, err
}

// ViewInt32 reads an OMT1 int32 matrix in place; it accepts and refuses exactly what
// DecodeInt32 does.
func ViewInt32(b []byte) (Int32View, error) {
	rows, cols, data, err := decodeHeader(b, dtypeInt32, 4)
	return Int32View{Rows: rows, Cols: cols, Data: data}, err
}

func appendHeader(b []byte, dtype byte, rows, cols int) []byte {
	b = append(b, magic...)
	b = append(b, dtype, 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(rows))
	return binary.LittleEndian.AppendUint32(b, uint32(cols))
}

// decodeHeader checks b's header against the wanted dtype and returns the
// dimensions and the element bytes.
func decodeHeader(b []byte, dtype byte, elemSize int) (rows, cols int, data []byte, err error) {
	if len(b) < headerSize {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrEncoding, len(b), headerSize)
	}
	if string(b[:4]) != magic {
		return 0, 0, nil, fmt.Errorf("%w: bad magic %q, want %q", ErrEncoding, b[:4], magic)
	}
	if b[4] != dtype {
		return 0, 0, nil, fmt.Errorf("%w: dtype %d (%s), want %d (%s)", ErrEncoding, b[4], dtypeName(b[4]), dtype, dtypeName(dtype))
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return 0, 0, nil, fmt.Errorf("%w: reserved header bytes are not zero", ErrEncoding)
	}
	r := uint64(binary.LittleEndian.Uint32(b[8:]))
	c := uint64(binary.LittleEndian.Uint32(b[12:]))
	if r == 0 || c == 0 {
		return 0, 0, nil, fmt.Errorf("%w: dimensions %dx%d must be positive", ErrEncoding, r, c)
	}
	if r*c > MaxElements { // both < 2^32, so the product cannot overflow
		return 0, 0, nil, fmt.Errorf("%w: %dx%d is too large, limit %d elements", ErrEncoding, r, c, MaxElements)
	}
	want := headerSize + int(r*c)*elemSize
	if len(b) != want {
		return 0, 0, nil, fmt.Errorf("%w: size mismatch: %dx%d %s needs %d bytes, got %d", ErrEncoding, r, c, dtypeName(dtype), want, len(b))
	}
	return int(r), int(c), b[headerSize:], nil
}

func dtypeName(d byte) string {
	switch d {
	case dtypeInt8:
		return "int8"
	case dtypeInt32:
		return "int32"
	case dtypeFloat32:
		return "float32"
	default:
		return "unknown"
	}
}
