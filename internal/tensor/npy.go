package tensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NumPy's .npy format (version 1.0 and 2.0): "\x93NUMPY", a major and a minor version
// byte, the header's length (uint16 in 1.0, uint32 in 2.0, little-endian), then the header,
// a Python dict literal such as {'descr': '|i1', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces to a multiple of 64 bytes with its newline, then the elements.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header a decoder reads: NumPy writes well under 200 bytes.
const maxNPYHeader = 4096

// npyField returns the text after "'key':" in a .npy header dict, up to the end of the
// header, with leading spaces trimmed; ok is false when the key is missing.
func npyField(header, key string) (rest string, ok bool) {
	i := strings.Index(header, "'"+key+"'")
	if i < 0 {
		return "", false
	}
	rest = strings.TrimLeft(header[i+len(key)+2:], " ")
	if !strings.HasPrefix(rest, ":") {
		return "", false
	}
	return strings.TrimLeft(rest[1:], " "), true
}

// npyHeaderFields reads the three keys of a .npy header dict.
func npyHeaderFields(header string) (descr, fortran, shape string, ok bool) {
	d, okD := npyField(header, "descr")
	f, okF := npyField(header, "fortran_order")
	s, okS := npyField(header, "shape")
	if !okD || !okF || !okS || !strings.HasPrefix(d, "'") || !strings.HasPrefix(s, "(") {
		return "", "", "", false
	}
	end := strings.IndexByte(d[1:], '\'')
	closing := strings.IndexByte(s, ')')
	if end < 0 || closing < 0 {
		return "", "", "", false
	}
	switch {
	case strings.HasPrefix(f, "True"):
		f = "True"
	case strings.HasPrefix(f, "False"):
		f = "False"
	default:
		return "", "", "", false
	}
	return d[1 : 1+end], f, s[1:closing], true
}

// ParseNPYInt8 decodes a NumPy .npy file holding a two-dimensional int8 array (dtype
// int8, '|i1') in C order, as numpy.save writes np.int8 matrices.
func ParseNPYInt8(b []byte) (*Int8Matrix, error) {
	rows, cols, data, err := parseNPYMatrix(b, []string{"|i1", "<i1", "i1"}, 1, "int8 ('|i1'; numpy: a.astype(np.int8))")
	if err != nil {
		return nil, err
	}
	m := &Int8Matrix{Rows: rows, Cols: cols, Data: make([]int8, len(data))}
	for i, v := range data {
		m.Data[i] = int8(v)
	}
	return m, nil
}

// parseNPYMatrix checks that a .npy file holds a C-order matrix of one of the dtypes
// descrs, elemSize bytes an element, and returns its shape and element bytes; want names
// the dtype in errors.
func parseNPYMatrix(b []byte, descrs []string, elemSize int, want string) (rows, cols int, data []byte, err error) {
	descr, fortran, shape, data, err := parseNPY(b)
	if err != nil {
		return 0, 0, nil, err
	}
	switch {
	case !slices.Contains(descrs, descr):
		return 0, 0, nil, fmt.Errorf("%w: npy dtype %q: want %s", ErrEncoding, descr, want)
	case fortran:
		return 0, 0, nil, fmt.Errorf("%w: npy array is in Fortran order: save np.ascontiguousarray(a)", ErrEncoding)
	case len(shape) != 2:
		return 0, 0, nil, fmt.Errorf("%w: npy array has %d dimensions, want a 2-D matrix", ErrEncoding, len(shape))
	}
	if err := checkDims(shape[0], shape[1]); err != nil {
		return 0, 0, nil, err
	}
	if need := shape[0] * shape[1] * elemSize; len(data) != need {
		return 0, 0, nil, fmt.Errorf("%w: npy shape (%d, %d) needs %d bytes of data, the file has %d", ErrEncoding, shape[0], shape[1], need, len(data))
	}
	return shape[0], shape[1], data, nil
}

// NPY encodes m as a NumPy .npy file (version 1.0): dtype int8, C order.
func (m *Int8Matrix) NPY() []byte {
	b := npyHeader("|i1", m.Rows, m.Cols, len(m.Data))
	for _, v := range m.Data {
		b = append(b, byte(v))
	}
	return b
}

// NPY encodes m as a NumPy .npy file (version 1.0): dtype little-endian int32, C order;
// numpy.load reads it.
func (m *Int32Matrix) NPY() []byte {
	b := npyHeader("<i4", m.Rows, m.Cols, 4*len(m.Data))
	for _, v := range m.Data {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}

func npyHeader(descr string, rows, cols, dataLen int) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, cols)
	// magic(6) + version(2) + length(2) + dict + padding + "\n" is a multiple of 64.
	pad := 64 - (10+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	header := dict + strings.Repeat(" ", pad) + "\n"
	b := make([]byte, 0, 10+len(header)+dataLen)
	b = append(b, npyMagic...)
	b = append(b, 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(header)))
	return append(b, header...)
}

// parseNPY splits a .npy file into its header's fields and its data.
func parseNPY(b []byte) (descr string, fortran bool, shape []int, data []byte, err error) {
	if len(b) < 10 || string(b[:6]) != npyMagic {
		return "", false, nil, nil, fmt.Errorf("%w: not a NumPy .npy file (no \\x93NUMPY magic)", ErrEncoding)
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:10])), 10
	case 2, 3:
		if len(b) < 12 {
			return "", false, nil, nil, fmt.Errorf("%w: npy header truncated", ErrEncoding)
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:12])), 12
	default:
		return "", false, nil, nil, fmt.Errorf("%w: npy version %d.%d is not supported", ErrEncoding, b[6], b[7])
	}
	if hlen > maxNPYHeader || start+hlen > len(b) {
		return "", false, nil, nil, fmt.Errorf("%w: npy header of %d bytes does not fit the file", ErrEncoding, hlen)
	}
	header := b[start : start+hlen]
	d, f, s, ok := npyHeaderFields(string(header))
	if !ok {
		return "", false, nil, nil, fmt.Errorf("%w: npy header %q lacks descr, fortran_order or shape", ErrEncoding, bytes.TrimSpace(header))
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // "(3,)" and the trailing comma
		}
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return "", false, nil, nil, fmt.Errorf("%w: npy shape %q", ErrEncoding, s)
		}
		shape = append(shape, n)
	}
	return d, f == "True", shape, b[start+hlen:], nil
}

// npyInts are the integer dtypes ParseNPYInts reads, with their sizes and signedness;
// NumPy writes np.array([7, 6]) as '<i8' and np.int32 arrays as '<i4'.
var npyInts = map[string]struct {
	size   int
	signed bool
}{
	"|i1": {1, true}, "<i1": {1, true}, "i1": {1, true}, "|u1": {1, false}, "<u1": {1, false}, "u1": {1, false},
	"<i2": {2, true}, "<u2": {2, false}, "<i4": {4, true}, "<u4": {4, false}, "<i8": {8, true},
}

// ParseNPYInts decodes a NumPy .npy file holding a C-order array of any little-endian
// integer dtype but uint64, of any number of dimensions (a scalar has none), as int64s
// in C order with its shape.
func ParseNPYInts(b []byte) (shape []int, values []int64, err error) {
	descr, fortran, shape, data, err := parseNPY(b)
	if err != nil {
		return nil, nil, err
	}
	dt, ok := npyInts[descr]
	switch {
	case !ok:
		return nil, nil, fmt.Errorf("%w: npy dtype %q: want an integer array (int8 to int64, or uint8 to uint32)", ErrEncoding, descr)
	case fortran && len(shape) > 1:
		return nil, nil, fmt.Errorf("%w: npy array is in Fortran order: save np.ascontiguousarray(a)", ErrEncoding)
	}
	n := 1
	for _, d := range shape {
		// n ≤ MaxElements before, so n·d can overflow only when d > MaxElements, tested first.
		if n *= d; d > MaxElements || n > MaxElements {
			return nil, nil, fmt.Errorf("%w: npy shape %v has over %d elements", ErrShape, shape, MaxElements)
		}
	}
	if len(data) != n*dt.size {
		return nil, nil, fmt.Errorf("%w: npy shape %v needs %d bytes of data, the file has %d", ErrEncoding, shape, n*dt.size, len(data))
	}
	values = make([]int64, n)
	for i := range values {
		var u uint64
		for k := dt.size - 1; k >= 0; k-- {
			u = u<<8 | uint64(data[i*dt.size+k])
		}
		if shift := 64 - 8*dt.size; dt.signed && shift > 0 {
			values[i] = int64(u<<shift) >> shift
		} else {
			values[i] = int64(u)
		}
	}
	return shape, values, nil
}
