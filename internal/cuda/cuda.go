package cuda

import (
	_ "embed"
	"errors"
)

// ErrUnavailable is returned by Open where no GPU can be used: no cgo, no driver, no device.
var ErrUnavailable = errors.New("no CUDA GPU")

// ErrWrongProduct is MatMulInt8's error when the GPU's product failed its own check.
var ErrWrongProduct = errors.New("cuda: the GPU's product failed Freivalds' check on the GPU")

// images are the kernels' PTX, as the driver loads it.
type images struct{ freivalds, mma, gemm []byte }

var (
	//go:embed freivalds.ptx
	freivaldsPTX []byte
	//go:embed mma.ptx
	mmaPTX []byte
	//go:embed gemm.ptx
	gemmPTX []byte
)

// Open opens GPU number index (as the CUDA driver counts them) and loads the kernels.
// Where there is no driver or no such GPU, or this binary was built without cgo, it
// returns an error wrapping ErrUnavailable that says why.
func Open(index int) (*Device, error) {
	return open(index, images{freivalds: freivaldsPTX, mma: mmaPTX, gemm: gemmPTX})
}
