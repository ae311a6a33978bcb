package tensor

import (
	"errors"
	"slices"
	"testing"
)

func TestDimensionLimits(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		wantErr    bool
	}{
		{"one by one", 1, 1, false},
		{"rectangular", 3, 7, false},
		{"at the element limit", 1 << 13, 1 << 13, false},
		{"zero rows", 0, 4, true},
		{"zero cols", 4, 0, true},
		{"negative", -1, 4, true},
		{"over the element limit", 1<<13 + 1, 1 << 13, true},
		{"product would overflow int", 1 << 40, 1 << 40, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDims(tt.rows, tt.cols)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrShape)) {
				t.Fatalf("checkDims(%d, %d) = %v, want error %v", tt.rows, tt.cols, err, tt.wantErr)
			}
		})
	}
}

func TestNewInt8(t *testing.T) {
	m, err := NewInt8(3, 7)
	if err != nil || m.Rows != 3 || m.Cols != 7 || len(m.Data) != 21 {
		t.Fatalf("NewInt8(3, 7) = %+v, %v", m, err)
	}
	if _, err := NewInt8(0, 7); !errors.Is(err, ErrShape) {
		t.Fatalf("NewInt8(0, 7) error = %v, want ErrShape", err)
	}
}

func TestRandomInt8Deterministic(t *testing.T) {
	a, err := RandomInt8(5, 7, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomInt8(5, 7, 42)
	c, _ := RandomInt8(5, 7, 43)
	if !slices.Equal(a.Data, b.Data) {
		t.Fatal("same seed gave different matrices")
	}
	if slices.Equal(a.Data, c.Data) {
		t.Fatal("different seeds gave the same matrix")
	}
	// Pinned so that a change to the generator, which would change every
	// benchmark challenge derived from a seed, cannot pass unnoticed.
	row, _ := RandomInt8(1, 12, 42)
	want := []int8{-107, 110, -21, 47, 38, 50, -41, -67, 3, -15, 102, -78}
	if !slices.Equal(row.Data, want) {
		t.Fatalf("RandomInt8(1, 12, 42) = %v, want %v", row.Data, want)
	}
}

func TestSplitMix64ReferenceVector(t *testing.T) {
	// First outputs of the reference implementation seeded with 0.
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	var state uint64
	for i, w := range want {
		if got := splitmix64(&state); got != w {
			t.Fatalf("output %d = %#x, want %#x", i, got, w)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		m    *Int8Matrix
		ok   bool
	}{
		{"nil", nil, false},
		{"consistent", &Int8Matrix{Rows: 2, Cols: 2, Data: make([]int8, 4)}, true},
		{"short data", &Int8Matrix{Rows: 2, Cols: 2, Data: make([]int8, 3)}, false},
		{"zero dims", &Int8Matrix{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrShape)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
