//go:build !cgo || !linux

package hw

import (
	"errors"
	"runtime"
)

// openNVML: go-nvml needs cgo on linux, so this build reads GPUs through
// nvidia-smi only.
func openNVML() (nvmlLib, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("NVML not built in (not linux)")
	}
	return nil, errors.New("NVML not built in (binary built without cgo)")
}
