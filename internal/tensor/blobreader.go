package tensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// BlobReader walks a binary blob field by field. Every read checks the bytes left before
// it allocates, so a few hostile bytes ask for nothing, and the first error (wrapping
// ErrEncoding) sticks: a decoder reads every field and asks End once. The mlp-int8
// kernel's blobs are read with it, and so are internal/zk's.
type BlobReader struct {
	b     []byte
	order binary.ByteOrder
	err   error
}

// NewBlobReader reads b, its integers in order.
func NewBlobReader(b []byte, order binary.ByteOrder) *BlobReader {
	return &BlobReader{b: b, order: order}
}

// Fail records an error, unless one is recorded already.
func (r *BlobReader) Fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrEncoding, fmt.Sprintf(format, args...))
	}
}

// Err is the first error recorded, nil while there is none.
func (r *BlobReader) Err() error { return r.err }

// Bytes reads the next n bytes (aliasing the blob), nil after an error.
func (r *BlobReader) Bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Fail("%d bytes wanted, %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// U32 reads a 4-byte unsigned integer.
func (r *BlobReader) U32() uint32 {
	if b := r.Bytes(4); b != nil {
		return r.order.Uint32(b)
	}
	return 0
}

// U8 reads a byte.
func (r *BlobReader) U8() uint8 {
	if b := r.Bytes(1); b != nil {
		return b[0]
	}
	return 0
}

// Header checks the blob's magic and version byte; what names the blob in the error.
func (r *BlobReader) Header(magic []byte, version byte, what string) {
	if b := r.Bytes(len(magic) + 1); r.err == nil && (!bytes.Equal(b[:len(magic)], magic) || b[len(magic)] != version) {
		r.Fail("not a %s (magic %q, version %d)", what, b[:len(magic)], b[len(magic)])
	}
}

// Dim reads a U32 size and checks it lies in 1..limit.
func (r *BlobReader) Dim(what string, limit int) int {
	n := r.U32()
	if r.err == nil && (n < 1 || uint64(n) > uint64(limit)) {
		r.Fail("%s %d, want 1..%d", what, n, limit)
	}
	return int(n)
}

// Int8s reads n int8 values, a byte each.
func (r *BlobReader) Int8s(n int) []int8 {
	b := r.Bytes(n)
	if b == nil {
		return nil
	}
	out := make([]int8, n)
	for i, v := range b {
		out[i] = int8(v)
	}
	return out
}

// Int32s reads n int32 values, four bytes each in the reader's order.
func (r *BlobReader) Int32s(n int) []int32 {
	b := r.Bytes(4 * n)
	if b == nil {
		return nil
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(r.order.Uint32(b[4*i:]))
	}
	return out
}

// End refuses bytes left over and returns the first error.
func (r *BlobReader) End() error {
	if r.err == nil && len(r.b) != 0 {
		r.Fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
