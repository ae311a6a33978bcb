//go:build cgo && linux

package hw

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// This file only adapts go-nvml to nvmlLib and nvmlDevice; the mapping onto a
// Report is in nvml.go. go-nvml dlopens libnvidia-ml.so.1 in Init, so this
// builds and runs on hosts with no driver: Init then fails and we fall back.

func openNVML() (nvmlLib, error) {
	switch ret := nvml.Init(); ret {
	case nvml.SUCCESS:
		return goNVML{}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, errNVMLNoLibrary
	default:
		return nil, fmt.Errorf("NVML init: %v", ret)
	}
}

// nvmlErr maps a go-nvml Return onto nil, errNVMLNotSupported or an error.
func nvmlErr(ret nvml.Return) error {
	switch ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND:
		return fmt.Errorf("%w (%v)", errNVMLNotSupported, ret)
	default:
		return fmt.Errorf("NVML: %v", ret)
	}
}

type goNVML struct{}

func (goNVML) DriverVersion() (string, error) {
	v, ret := nvml.SystemGetDriverVersion()
	return v, nvmlErr(ret)
}

func (goNVML) CUDADriverVersion() (int, error) {
	v, ret := nvml.SystemGetCudaDriverVersion()
	return v, nvmlErr(ret)
}

func (goNVML) DeviceCount() (int, error) {
	n, ret := nvml.DeviceGetCount()
	return n, nvmlErr(ret)
}

func (goNVML) Device(index int) (nvmlDevice, error) {
	d, ret := nvml.DeviceGetHandleByIndex(index)
	if err := nvmlErr(ret); err != nil {
		return nil, err
	}
	return goDevice{d}, nil
}

func (goNVML) Shutdown() error { return nvmlErr(nvml.Shutdown()) }

type goDevice struct{ d nvml.Device }

func clockType(c clock) nvml.ClockType {
	if c == clockMem {
		return nvml.CLOCK_MEM
	}
	return nvml.CLOCK_SM
}

func (g goDevice) Name() (string, error) {
	v, ret := g.d.GetName()
	return v, nvmlErr(ret)
}

func (g goDevice) UUID() (string, error) {
	v, ret := g.d.GetUUID()
	return v, nvmlErr(ret)
}

func (g goDevice) MemoryInfo() (uint64, uint64, error) {
	m, ret := g.d.GetMemoryInfo()
	return m.Total, m.Free, nvmlErr(ret)
}

func (g goDevice) CudaComputeCapability() (int, int, error) {
	major, minor, ret := g.d.GetCudaComputeCapability()
	return major, minor, nvmlErr(ret)
}

func (g goDevice) ClockMHz(c clock) (uint32, error) {
	v, ret := g.d.GetClockInfo(clockType(c))
	return v, nvmlErr(ret)
}

func (g goDevice) MaxClockMHz(c clock) (uint32, error) {
	v, ret := g.d.GetMaxClockInfo(clockType(c))
	return v, nvmlErr(ret)
}

func (g goDevice) MemoryBusWidth() (uint32, error) {
	v, ret := g.d.GetMemoryBusWidth()
	return v, nvmlErr(ret)
}

func (g goDevice) PowerUsageMilliwatts() (uint32, error) {
	v, ret := g.d.GetPowerUsage()
	return v, nvmlErr(ret)
}

func (g goDevice) EnforcedPowerLimitMilliwatts() (uint32, error) {
	v, ret := g.d.GetEnforcedPowerLimit()
	return v, nvmlErr(ret)
}

func (g goDevice) TemperatureC() (uint32, error) {
	v, ret := g.d.GetTemperature(nvml.TEMPERATURE_GPU)
	return v, nvmlErr(ret)
}

func (g goDevice) Utilization() (uint32, uint32, error) {
	u, ret := g.d.GetUtilizationRates()
	return u.Gpu, u.Memory, nvmlErr(ret)
}

func (g goDevice) CurrPcieLink() (int, int, error) {
	gen, ret := g.d.GetCurrPcieLinkGeneration()
	if err := nvmlErr(ret); err != nil {
		return 0, 0, err
	}
	width, ret := g.d.GetCurrPcieLinkWidth()
	return gen, width, nvmlErr(ret)
}

func (g goDevice) MaxPcieLink() (int, int, error) {
	gen, ret := g.d.GetMaxPcieLinkGeneration()
	if err := nvmlErr(ret); err != nil {
		return 0, 0, err
	}
	width, ret := g.d.GetMaxPcieLinkWidth()
	return gen, width, nvmlErr(ret)
}

func (g goDevice) MigModeEnabled() (bool, error) {
	current, _, ret := g.d.GetMigMode()
	return current == nvml.DEVICE_MIG_ENABLE, nvmlErr(ret)
}

func (g goDevice) EccModeEnabled() (bool, error) {
	current, _, ret := g.d.GetEccMode()
	return current == nvml.FEATURE_ENABLED, nvmlErr(ret)
}

func (g goDevice) NumGpuCores() (int, error) {
	v, ret := g.d.GetNumGpuCores()
	return v, nvmlErr(ret)
}
