//go:build !(linux && cgo)

package cuda

import (
	"fmt"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// Device is a GPU; without cgo on Linux there is none.
type Device struct {
	corruptAt int // as on Linux: never read here
}

// open fails: this binary was built without cgo, or not for Linux.
func open(int, images) (*Device, error) {
	return nil, fmt.Errorf("%w: this binary was built without cgo (CGO_ENABLED=0) or not for Linux", ErrUnavailable)
}

// Name is never called: Open never returns a Device here.
func (*Device) Name() string { return "" }

// LoadInt8 is never called: Open never returns a Device here.
func (*Device) LoadInt8(*tensor.Int8Matrix, *tensor.Int8Matrix, *tensor.Int32Matrix) (verify.Int8Products, func(), error) {
	return nil, nil, ErrUnavailable
}

// UUID is never called: Open never returns a Device here.
func (*Device) UUID() string { return "" }

// MeasureBF16 is never called: Open never returns a Device here.
func (*Device) MeasureBF16(time.Duration) (float64, error) { return 0, ErrUnavailable }

// MatMulInt8 is never called: Open never returns a Device here.
func (*Device) MatMulInt8(*tensor.Int8Matrix, *tensor.Int8Matrix) (*tensor.Int32Matrix, error) {
	return nil, ErrUnavailable
}

// Close does nothing.
func (*Device) Close() {}
