package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Float32Matrix is a dense row-major matrix of IEEE 754 binary32 values: element (i, j) is
// Data[i*Cols+j]. Every element is finite: this package refuses NaN and ±Inf, which no
// product of finite inputs within the limits of MatMulFloat32 produces.
type Float32Matrix struct {
	Rows, Cols int
	Data       []float32
}

// NewFloat32 returns a zero rows×cols matrix.
func NewFloat32(rows, cols int) (*Float32Matrix, error) {
	if err := checkDims(rows, cols); err != nil {
		return nil, err
	}
	return &Float32Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}, nil
}

// RandomFloat32 returns a rows×cols matrix whose elements are drawn uniformly from
// [-1, 1) in steps of 2^-23 by a splitmix64 stream started at seed. The same seed gives
// the same matrix on every platform.
func RandomFloat32(rows, cols int, seed uint64) (*Float32Matrix, error) {
	m, err := NewFloat32(rows, cols)
	if err != nil {
		return nil, err
	}
	state := seed
	for i := range m.Data {
		x := int32(splitmix64(&state) >> 40) // 24 bits
		m.Data[i] = float32(x-1<<23) * (1.0 / (1 << 23))
	}
	return m, nil
}

// Validate reports whether m's dimensions are in range and match its data, and every
// element is finite.
func (m *Float32Matrix) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrShape)
	}
	if err := checkData(m.Rows, m.Cols, len(m.Data)); err != nil {
		return err
	}
	if i := slices.IndexFunc(m.Data, func(v float32) bool { return math.Float32bits(v)&expMask == expMask }); i >= 0 {
		return fmt.Errorf("%w: element (%d, %d) is %v: float32 matrices hold finite values", ErrRange, i/m.Cols, i%m.Cols, m.Data[i])
	}
	return nil
}

// The fields of a float32's bits: an all-ones exponent is NaN or ±Inf, an all-zero one
// with a nonzero fraction is subnormal.
const (
	expMask  = 0x7f800000
	signMask = 0x80000000
)

// MarshalBinary encodes m in the OMT1 format: each element's IEEE 754 bits,
// little-endian.
func (m *Float32Matrix) MarshalBinary() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := appendHeader(make([]byte, 0, headerSize+4*len(m.Data)), dtypeFloat32, m.Rows, m.Cols)
	return appendFloat32s(b, m.Data), nil
}

// DecodeFloat32 decodes an OMT1 float32 matrix, refusing NaN and ±Inf elements.
func DecodeFloat32(b []byte) (*Float32Matrix, error) {
	rows, cols, data, err := decodeHeader(b, dtypeFloat32, 4)
	if err != nil {
		return nil, err
	}
	return float32sOf(rows, cols, data)
}

// ParseNPYFloat32 decodes a NumPy .npy file holding a two-dimensional float32 array
// (little-endian, '<f4') in C order, refusing NaN and ±Inf elements.
func ParseNPYFloat32(b []byte) (*Float32Matrix, error) {
	rows, cols, data, err := parseNPYMatrix(b, []string{"<f4"}, 4, "float32 ('<f4'; numpy: a.astype(np.float32))")
	if err != nil {
		return nil, err
	}
	return float32sOf(rows, cols, data)
}

// NPY encodes m as a NumPy .npy file (version 1.0): dtype little-endian float32, C order.
func (m *Float32Matrix) NPY() []byte {
	return appendFloat32s(npyHeader("<f4", m.Rows, m.Cols, 4*len(m.Data)), m.Data)
}

func appendFloat32s(b []byte, data []float32) []byte {
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// float32sOf decodes rows×cols little-endian float32 elements.
func float32sOf(rows, cols int, data []byte) (*Float32Matrix, error) {
	m := &Float32Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range m.Data {
		m.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncoding, err)
	}
	return m, nil
}

// CheckMatMulFloat32 reports whether a and b are operands MatMulFloat32 takes: well formed
// and finite, conforming, with an inner dimension of at most MaxInner, no subnormal
// element, and small enough that no partial sum can overflow.
//
// The last two make an honest product's rounding error boundable whatever the order of
// its sums (package verify relies on it): a GPU may flush subnormal inputs to zero, an
// error no relative bound covers, so they are refused ("flush them to zero" is the fix);
// and every partial sum, in any order, is at most k·max|A|·max|B|·(1+γ_k), so requiring
// k·max|A|·max|B| ≤ MaxFloat32/2 keeps every product finite.
func CheckMatMulFloat32(a, b *Float32Matrix) error {
	if err := a.Validate(); err != nil {
		return fmt.Errorf("input A: %w", err)
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("input B: %w", err)
	}
	if a.Cols != b.Rows {
		return fmt.Errorf("%w: A is %dx%d and B is %dx%d; A's columns must equal B's rows", ErrShape, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if a.Cols > MaxInner {
		return fmt.Errorf("%w: inner dimension %d exceeds %d", ErrShape, a.Cols, MaxInner)
	}
	maxA, err := maxAbsNormal(a)
	if err != nil {
		return fmt.Errorf("input A: %w", err)
	}
	maxB, err := maxAbsNormal(b)
	if err != nil {
		return fmt.Errorf("input B: %w", err)
	}
	if float64(a.Cols)*maxA*maxB > math.MaxFloat32/2 {
		return fmt.Errorf("%w: inner dimension %d × max|A| %g × max|B| %g exceeds MaxFloat32/2: the product could overflow float32 (scale the inputs down)", ErrRange, a.Cols, maxA, maxB)
	}
	return nil
}

// maxAbsNormal returns the largest magnitude in m, refusing subnormal elements. It
// compares bits: for non-negative floats their order is the bits' order.
func maxAbsNormal(m *Float32Matrix) (float64, error) {
	var largest uint32
	for i, v := range m.Data {
		x := math.Float32bits(v) &^ signMask
		if x != 0 && x&expMask == 0 {
			return 0, fmt.Errorf("%w: element (%d, %d) = %g is subnormal (below 2^-126): flush it to zero", ErrRange, i/m.Cols, i%m.Cols, v)
		}
		largest = max(largest, x)
	}
	return float64(math.Float32frombits(largest)), nil
}

// MatMulFloat32 returns a·b with float32 accumulation in a fixed order: element (i, j)
// is ((a_i0·b_0j + a_i1·b_1j) + a_i2·b_2j) + …, in k order, each product and each sum
// rounded to float32 (no fused multiply-add, which Go may otherwise use on some
// platforms), so the result is the same bits on every platform.
//
// A node's GPU sums in its own order (tiles, split-K, FMA), which gives different bits,
// which is why package verify checks this kernel within a rounding-error bound rather than
// exactly. Accumulating in float32 rather than float64 is deliberate: it is what a GPU's
// fp32 product does, and the one this package's error bound is stated for.
func MatMulFloat32(a, b *Float32Matrix) (*Float32Matrix, error) {
	if err := CheckMatMulFloat32(a, b); err != nil {
		return nil, err
	}
	c, err := NewFloat32(a.Rows, b.Cols)
	if err != nil {
		return nil, err
	}
	k, n := a.Cols, b.Cols
	for i := 0; i < a.Rows; i++ {
		acc := c.Data[i*n : i*n+n]
		arow := a.Data[i*k : i*k+k]
		p := 0
		// Four rows of b per pass over acc quarter its loads and stores; the sums still
		// run in k order.
		for ; p+4 <= k; p += 4 {
			x0, x1, x2, x3 := arow[p], arow[p+1], arow[p+2], arow[p+3]
			b0 := b.Data[p*n:][:len(acc)]
			b1 := b.Data[(p+1)*n:][:len(acc)]
			b2 := b.Data[(p+2)*n:][:len(acc)]
			b3 := b.Data[(p+3)*n:][:len(acc)]
			for j := range acc {
				s := acc[j] + float32(x0*b0[j])
				s += float32(x1 * b1[j])
				s += float32(x2 * b2[j])
				acc[j] = s + float32(x3*b3[j])
			}
		}
		for ; p < k; p++ {
			x := arow[p]
			b0 := b.Data[p*n:][:len(acc)]
			for j := range acc {
				acc[j] += float32(x * b0[j])
			}
		}
	}
	return c, nil
}
