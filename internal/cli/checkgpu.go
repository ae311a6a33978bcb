package cli

import (
	"fmt"
	"strconv"

	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/cuda"
)

// openGPU opens the GPU that the setting key (check_gpu, compute_gpu) names: auto (GPU 0
// if one answers, else none), off (none) or an index (that GPU, or an error). It returns
// the device (nil for the CPU), where the work runs in words, and a close.
func openGPU(key, setting string) (*cuda.Device, string, func(), error) {
	index := 0
	switch setting {
	case config.CheckGPUOff:
		return nil, fmt.Sprintf("on the CPU (%s = off)", key), func() {}, nil
	case config.CheckGPUAuto, "":
	default:
		i, err := strconv.Atoi(setting)
		if err != nil || i < 0 {
			return nil, "", nil, fmt.Errorf("%s %q: want auto, off or a GPU index", key, setting)
		}
		index = i
	}
	d, err := cuda.Open(index)
	switch {
	case err != nil && setting != config.CheckGPUAuto && setting != "":
		return nil, "", nil, fmt.Errorf("%s = %s: %w (set %s = auto or off to use the CPU)", key, setting, err, key)
	case err != nil:
		return nil, fmt.Sprintf("on the CPU (%v)", err), func() {}, nil
	}
	return d, fmt.Sprintf("on GPU %d, %s (CUDA driver)", index, d.Name()), d.Close, nil
}

// openCheckGPU opens the GPU a validator's checks compute on (check_gpu) and says so.
func openCheckGPU(setting string) (*cuda.Device, string, func(), error) {
	d, where, closeGPU, err := openGPU("check_gpu", setting)
	if err != nil {
		return nil, "", nil, err
	}
	if d != nil {
		where = "int8 products " + where + "; each failure is checked again on the CPU"
	}
	return d, "checks: " + where, closeGPU, nil
}
