package tensor

import "fmt"

// MaxElements bounds rows×cols of any matrix this package creates or decodes,
// so that a hostile header cannot make a node allocate without limit
// (1<<26 int32 elements are 256 MiB).
const MaxElements = 1 << 26

// Int8Matrix is a dense row-major matrix of int8: element (i, j) is
// Data[i*Cols+j].
type Int8Matrix struct {
	Rows, Cols int
	Data       []int8
}

// Int32Matrix is a dense row-major matrix of int32: element (i, j) is
// Data[i*Cols+j].
type Int32Matrix struct {
	Rows, Cols int
	Data       []int32
}

// NewInt8 returns a zero rows×cols matrix.
func NewInt8(rows, cols int) (*Int8Matrix, error) {
	if err := checkDims(rows, cols); err != nil {
		return nil, err
	}
	return &Int8Matrix{Rows: rows, Cols: cols, Data: make([]int8, rows*cols)}, nil
}

// NewInt32 returns a zero rows×cols matrix.
func NewInt32(rows, cols int) (*Int32Matrix, error) {
	if err := checkDims(rows, cols); err != nil {
		return nil, err
	}
	return &Int32Matrix{Rows: rows, Cols: cols, Data: make([]int32, rows*cols)}, nil
}

// RandomInt8 returns a rows×cols matrix whose elements are drawn uniformly
// from the full int8 range by a splitmix64 stream started at seed. The same
// seed gives the same matrix on every platform.
func RandomInt8(rows, cols int, seed uint64) (*Int8Matrix, error) {
	m, err := NewInt8(rows, cols)
	if err != nil {
		return nil, err
	}
	state := seed
	for i := 0; i < len(m.Data); i += 8 {
		v := splitmix64(&state)
		for j := i; j < i+8 && j < len(m.Data); j++ {
			m.Data[j] = int8(v)
			v >>= 8
		}
	}
	return m, nil
}

// Validate reports whether m's dimensions are in range and match its data.
func (m *Int8Matrix) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrShape)
	}
	return checkData(m.Rows, m.Cols, len(m.Data))
}

// Validate reports whether m's dimensions are in range and match its data.
func (m *Int32Matrix) Validate() error {
	if m == nil {
		return fmt.Errorf("%w: nil matrix", ErrShape)
	}
	return checkData(m.Rows, m.Cols, len(m.Data))
}

func checkDims(rows, cols int) error {
	if rows <= 0 || cols <= 0 {
		return fmt.Errorf("%w: dimensions %dx%d must be positive", ErrShape, rows, cols)
	}
	if rows > MaxElements/cols {
		return fmt.Errorf("%w: %dx%d exceeds %d elements", ErrShape, rows, cols, MaxElements)
	}
	return nil
}

func checkData(rows, cols, n int) error {
	if err := checkDims(rows, cols); err != nil {
		return err
	}
	if n != rows*cols {
		return fmt.Errorf("%w: %dx%d matrix holds %d elements", ErrShape, rows, cols, n)
	}
	return nil
}

// splitmix64 advances *state and returns the next output of Steele, Lea and
// Flood's SplitMix64 generator.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e3779b97f4a7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
