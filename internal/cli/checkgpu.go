package cli

import (
	"fmt"
	"strconv"

	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/cuda"
)

// openCheckGPU opens the GPU a validator's checks compute on, for the check_gpu setting:
// auto (GPU 0 if one answers, else none), off (none) or an index (that GPU, or an error).
// It returns the device (nil for the CPU), a line saying where checks run, and a close.
func openCheckGPU(setting string) (*cuda.Device, string, func(), error) {
	index := 0
	switch setting {
	case config.CheckGPUOff:
		return nil, "checks: on the CPU (check_gpu = off)", func() {}, nil
	case config.CheckGPUAuto, "":
	default:
		i, err := strconv.Atoi(setting)
		if err != nil || i < 0 {
			return nil, "", nil, fmt.Errorf("check_gpu %q: want auto, off or a GPU index", setting)
		}
		index = i
	}
	d, err := cuda.Open(index)
	switch {
	case err != nil && setting != config.CheckGPUAuto && setting != "":
		return nil, "", nil, fmt.Errorf("check_gpu = %s: %w (set check_gpu = auto or off to check on the CPU)", setting, err)
	case err != nil:
		return nil, fmt.Sprintf("checks: on the CPU (%v)", err), func() {}, nil
	}
	return d, fmt.Sprintf("checks: int8 products on GPU %d, %s (CUDA driver); each failure is checked again on the CPU", index, d.Name()), d.Close, nil
}
