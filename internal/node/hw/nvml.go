package hw

import (
	"errors"
	"fmt"
)

// NVML as discovery uses it. nvml_cgo.go adapts go-nvml to these interfaces;
// the tests adapt a recorded readout, so the mapping below is tested without
// cgo or a GPU.

var (
	// errNVMLNotSupported: the device does not report this field.
	errNVMLNotSupported = errors.New("not supported")
	// errNVMLNoLibrary: nvml.Init found no libnvidia-ml.so.1, i.e. no driver.
	errNVMLNoLibrary = errors.New("libnvidia-ml.so.1 not loadable")
)

type nvmlLib interface {
	DriverVersion() (string, error)
	CUDADriverVersion() (int, error) // e.g. 13000 for CUDA 13.0
	DeviceCount() (int, error)
	Device(index int) (nvmlDevice, error)
	Shutdown() error
}

type clock int

const (
	clockSM clock = iota
	clockMem
)

// nvmlDevice mirrors the go-nvml Device methods discovery calls; an error
// wrapping errNVMLNotSupported means the field is unknown, not broken.
type nvmlDevice interface {
	Name() (string, error)
	UUID() (string, error)
	MemoryInfo() (totalBytes, freeBytes uint64, err error)
	CudaComputeCapability() (major, minor int, err error)
	ClockMHz(clock) (uint32, error)
	MaxClockMHz(clock) (uint32, error)
	MemoryBusWidth() (uint32, error)
	PowerUsageMilliwatts() (uint32, error)
	EnforcedPowerLimitMilliwatts() (uint32, error)
	TemperatureC() (uint32, error)
	Utilization() (gpuPct, memPct uint32, err error)
	CurrPcieLink() (gen, width int, err error)
	MaxPcieLink() (gen, width int, err error)
	MigModeEnabled() (bool, error)
	EccModeEnabled() (bool, error)
	NumGpuCores() (int, error)
}

// readNVML fills r's GPUs, driver and CUDA version from NVML. On failure it
// leaves them untouched, so the nvidia-smi fallback starts clean.
// go-nvml is a cgo binding: a panic inside it becomes an error here.
func readNVML(open func() (nvmlLib, error), r *Report) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("NVML panicked: %v", p)
		}
	}()
	lib, err := open()
	if err != nil {
		return err
	}
	var warnings []string
	defer func() {
		if e := lib.Shutdown(); e != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("NVML shutdown: %v", e))
		}
	}()
	n, err := lib.DeviceCount()
	if err != nil {
		return fmt.Errorf("NVML device count: %w", err)
	}
	gpus := make([]GPU, 0, n)
	for i := range n {
		d, err := lib.Device(i)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("GPU %d: NVML handle: %v", i, err))
			continue
		}
		gpus = append(gpus, readNVMLDevice(i, d, &warnings))
	}
	driver, err := lib.DriverVersion()
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("NVML driver version: %v", err))
	}
	cuda, err := lib.CUDADriverVersion()
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("NVML CUDA version: %v", err))
	}
	r.GPUs, r.DriverVersion, r.CUDAVersion = gpus, driver, formatCUDAVersion(cuda)
	r.Warnings = append(r.Warnings, warnings...)
	return nil
}

// readNVMLDevice maps one device's readings onto a GPU. A field the device
// does not support stays unknown; any other failure is also a warning.
func readNVMLDevice(index int, d nvmlDevice, warnings *[]string) GPU {
	g := GPU{Index: index}
	ok := func(field string, err error) bool {
		if err != nil && !errors.Is(err, errNVMLNotSupported) {
			*warnings = append(*warnings, fmt.Sprintf("GPU %d: %s: %v", index, field, err))
		}
		return err == nil
	}
	if v, err := d.Name(); ok("name", err) {
		g.Name = v
	}
	if v, err := d.UUID(); ok("uuid", err) {
		g.UUID = v
	}
	if total, free, err := d.MemoryInfo(); ok("memory", err) {
		g.MemoryTotalMiB, g.MemoryFreeMiB = total>>20, free>>20
	}
	if major, minor, err := d.CudaComputeCapability(); ok("compute capability", err) {
		g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	}
	if v, err := d.ClockMHz(clockSM); ok("sm clock", err) {
		g.SMClockMHz = v
	}
	if v, err := d.MaxClockMHz(clockSM); ok("max sm clock", err) {
		g.SMClockMaxMHz = v
	}
	if v, err := d.ClockMHz(clockMem); ok("memory clock", err) {
		g.MemClockMHz = v
	}
	if v, err := d.MaxClockMHz(clockMem); ok("max memory clock", err) {
		g.MemClockMaxMHz = v
	}
	if v, err := d.MemoryBusWidth(); ok("memory bus width", err) {
		g.MemoryBusWidthBits = v
	}
	if v, err := d.PowerUsageMilliwatts(); ok("power draw", err) {
		g.PowerDrawW = float64(v) / 1000
	}
	if v, err := d.EnforcedPowerLimitMilliwatts(); ok("power limit", err) {
		g.PowerLimitW = float64(v) / 1000
	}
	if v, err := d.TemperatureC(); ok("temperature", err) {
		g.TemperatureC = ptr(int(v))
	}
	if gpu, mem, err := d.Utilization(); ok("utilization", err) {
		g.UtilizationGPUPct, g.UtilizationMemPct = ptr(int(gpu)), ptr(int(mem))
	}
	if gen, width, err := d.CurrPcieLink(); ok("pcie link", err) {
		g.PCIeGen, g.PCIeWidth = gen, width
	}
	if gen, width, err := d.MaxPcieLink(); ok("max pcie link", err) {
		g.PCIeGenMax, g.PCIeWidthMax = gen, width
	}
	if v, err := d.MigModeEnabled(); ok("mig mode", err) {
		g.MIGEnabled = ptr(v)
	}
	if v, err := d.EccModeEnabled(); ok("ecc mode", err) {
		g.ECCEnabled = ptr(v)
	}
	if v, err := d.NumGpuCores(); ok("gpu cores", err) {
		g.CUDACores = v
	}
	return g
}

// formatCUDAVersion renders NVML's 13000 as "13.0" and 12040 as "12.4".
func formatCUDAVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

func ptr[T any](v T) *T { return &v }
