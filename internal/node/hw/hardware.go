package hw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Sentinels that every error from this package wraps.
var (
	// ErrMalformed: a source (a /proc file, nvidia-smi output) was read but
	// could not be parsed; the message names the source, line and field.
	ErrMalformed = errors.New("hardware: malformed input")
	// ErrIncomplete: the Report lacks a figure the ledger requires.
	ErrIncomplete = errors.New("hardware: incomplete report")
)

// Report is what Discover found. Numeric fields are zero when unknown, except
// pointer fields, where nil means unknown (a reading of 0 is meaningful there).
type Report struct {
	// GPUs are the NVIDIA GPUs found, in driver index order; empty on a CPU node.
	GPUs []GPU `json:"gpus"`
	// GPUSource is "nvml" or "nvidia-smi", or "" when no GPU was found.
	GPUSource string `json:"gpu_source,omitempty"`
	// NoGPUReason says why no GPU was found, e.g. "no NVIDIA driver:
	// libnvidia-ml.so.1 not loadable, nvidia-smi not on PATH".
	NoGPUReason   string `json:"no_gpu_reason,omitempty"`
	DriverVersion string `json:"driver_version,omitempty"`
	CUDAVersion   string `json:"cuda_version,omitempty"` // highest CUDA the driver supports, e.g. "13.0"

	CPU    CPU    `json:"cpu"`
	Memory Memory `json:"memory"`
	Disk   Disk   `json:"disk"`

	// Warnings are problems that did not stop discovery (a reading that
	// failed, a benchmark that was skipped, a table and derived figure that
	// disagree).
	Warnings []string `json:"warnings,omitempty"`
}

// CPUNode reports whether the host has no usable NVIDIA GPU.
func (r Report) CPUNode() bool { return len(r.GPUs) == 0 }

// GPU is one NVIDIA GPU.
type GPU struct {
	Index              int     `json:"index"`
	Name               string  `json:"name"`
	UUID               string  `json:"uuid,omitempty"`
	MemoryTotalMiB     uint64  `json:"memory_total_mib,omitempty"`
	MemoryFreeMiB      uint64  `json:"memory_free_mib,omitempty"`
	ComputeCapability  string  `json:"compute_capability,omitempty"` // "9.0"
	SMClockMHz         uint32  `json:"sm_clock_mhz,omitempty"`
	SMClockMaxMHz      uint32  `json:"sm_clock_max_mhz,omitempty"`
	MemClockMHz        uint32  `json:"mem_clock_mhz,omitempty"`
	MemClockMaxMHz     uint32  `json:"mem_clock_max_mhz,omitempty"`
	MemoryBusWidthBits uint32  `json:"memory_bus_width_bits,omitempty"`
	PowerDrawW         float64 `json:"power_draw_w,omitempty"`
	PowerLimitW        float64 `json:"power_limit_w,omitempty"`
	TemperatureC       *int    `json:"temperature_c,omitempty"`
	UtilizationGPUPct  *int    `json:"utilization_gpu_pct,omitempty"`
	UtilizationMemPct  *int    `json:"utilization_mem_pct,omitempty"`
	PCIeGen            int     `json:"pcie_gen,omitempty"`
	PCIeGenMax         int     `json:"pcie_gen_max,omitempty"`
	PCIeWidth          int     `json:"pcie_width,omitempty"`
	PCIeWidthMax       int     `json:"pcie_width_max,omitempty"`
	MIGEnabled         *bool   `json:"mig_enabled,omitempty"`
	ECCEnabled         *bool   `json:"ecc_enabled,omitempty"`
	CUDACores          int     `json:"cuda_cores,omitempty"` // NVML only

	// Published is the table row matched by name; nil for an unknown GPU.
	Published *Published `json:"published,omitempty"`
	// DerivedFP32TFLOPS is CUDACores × SMClockMaxMHz × 2, from NVML's
	// readings: a cross-check, not a measurement.
	DerivedFP32TFLOPS float64 `json:"derived_fp32_tflops,omitempty"`
	// TFLOPS is the figure this GPU is declared with: the published dense
	// tensor rate when the GPU is in the table, else the derived FP32 rate.
	TFLOPS float64 `json:"tflops,omitempty"`
	// TFLOPSBasis says where TFLOPS came from, e.g. "table: dense bf16
	// tensor" or "derived: fp32 from NVML cores × clock".
	TFLOPSBasis string `json:"tflops_basis,omitempty"`
	// TFLOPSPrecision is "bf16", "fp16" or "fp32".
	TFLOPSPrecision string `json:"tflops_precision,omitempty"`
	// MeasuredTFLOPS is the bf16 rate a short tensor-core benchmark sustained (gpubench.go);
	// zero when not measured.
	MeasuredTFLOPS float64 `json:"measured_tflops,omitempty"`
	// Bench says how MeasuredTFLOPS was measured, or why it was not.
	Bench string `json:"bench,omitempty"`
}

// CPU describes the host's processors.
type CPU struct {
	Model         string `json:"model,omitempty"`
	Arch          string `json:"arch"`
	LogicalCPUs   int    `json:"logical_cpus"`
	PhysicalCores int    `json:"physical_cores,omitempty"`
	Sockets       int    `json:"sockets,omitempty"`
	// MeasuredGOPSInt8 is the int8 multiply-add rate of tensor.MatMulInt8
	// on all logical CPUs, timed over Bench; zero when not measured.
	MeasuredGOPSInt8 float64 `json:"measured_gops_int8,omitempty"`
	Bench            string  `json:"bench,omitempty"` // how it was measured, or why not
}

// Memory is the host's RAM.
type Memory struct {
	TotalBytes     uint64 `json:"total_bytes,omitempty"`
	AvailableBytes uint64 `json:"available_bytes,omitempty"`
}

// Disk is the space on the filesystem holding Dir.
type Disk struct {
	Dir        string `json:"dir"`
	FreeBytes  uint64 `json:"free_bytes,omitempty"`  // available to an unprivileged user
	TotalBytes uint64 `json:"total_bytes,omitempty"` // size of the filesystem
	Unknown    string `json:"unknown,omitempty"`     // why free space is unknown
}

// RunFunc runs a command and returns its standard output.
type RunFunc func(ctx context.Context, name string, args ...string) ([]byte, error)

// Options are Discover's seams. The zero value discovers this host.
type Options struct {
	// Run runs nvidia-smi; nil runs it with exec.CommandContext. A missing
	// binary is an error wrapping exec.ErrNotFound.
	Run RunFunc
	// CPUInfoPath and MemInfoPath default to /proc/cpuinfo and /proc/meminfo.
	CPUInfoPath string
	MemInfoPath string
	// DiskDir is the directory whose free space is reported; default ".".
	DiskDir string
	// BenchDuration is how long the CPU benchmark, and each GPU's, runs; 0 means
	// DefaultBenchDuration, negative skips them.
	BenchDuration time.Duration
	// MeasureGPU benchmarks one GPU; nil means internal/cuda's tensor-core benchmark
	// (which fails, so that the GPU is not measured, without cgo or a CUDA driver).
	MeasureGPU MeasureGPUFunc
	// DisableNVML skips NVML and goes straight to nvidia-smi.
	DisableNVML bool

	// openNVML loads NVML; nil means the build's openNVML (go-nvml under
	// cgo on linux, an error elsewhere). Tests set it to a recorded readout.
	openNVML func() (nvmlLib, error)
}

// DefaultBenchDuration is how long the CPU benchmark runs by default.
const DefaultBenchDuration = 150 * time.Millisecond

// commandTimeout bounds each nvidia-smi run: a wedged driver can hang it.
const commandTimeout = 15 * time.Second

func (o *Options) setDefaults() {
	if o.Run == nil {
		o.Run = runCommand
	}
	if o.CPUInfoPath == "" {
		o.CPUInfoPath = "/proc/cpuinfo"
	}
	if o.MemInfoPath == "" {
		o.MemInfoPath = "/proc/meminfo"
	}
	if o.DiskDir == "" {
		o.DiskDir = "."
	}
	if o.BenchDuration == 0 {
		o.BenchDuration = DefaultBenchDuration
	}
	if o.openNVML == nil {
		o.openNVML = openNVML
	}
	if o.MeasureGPU == nil {
		o.MeasureGPU = measureCUDA
	}
}

// Discover inspects the host. It always returns as full a Report as it
// could build; the error, if any, joins every source that was present but
// malformed (wrapping ErrMalformed) and ctx's error if it ended. Sources that
// are simply absent (no driver, no /proc, an unsupported OS) are not errors:
// the Report says what is unknown and why.
func Discover(ctx context.Context, opts Options) (Report, error) {
	opts.setDefaults()
	r := Report{GPUs: []GPU{}}
	var errs []error

	errs = append(errs, discoverGPUs(ctx, opts, &r))
	errs = append(errs, discoverCPU(opts.CPUInfoPath, &r))
	errs = append(errs, discoverMemory(opts.MemInfoPath, &r))
	r.Disk = diskSpace(opts.DiskDir)
	errs = append(errs, benchCPU(ctx, opts.BenchDuration, &r.CPU))
	for i := range r.GPUs {
		benchGPU(&r.GPUs[i], opts.BenchDuration, opts.MeasureGPU)
		rateGPU(&r.GPUs[i], &r)
	}
	return r, errors.Join(errs...)
}

func discoverCPU(path string, r *Report) error {
	r.CPU = CPU{Arch: runtime.GOARCH, LogicalCPUs: runtime.NumCPU()}
	data, err := os.ReadFile(path)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("cpu model unknown: %v", err))
		return nil
	}
	info, err := parseCPUInfo(path, data)
	if err != nil {
		return err
	}
	r.CPU.Model, r.CPU.PhysicalCores, r.CPU.Sockets = info.Model, info.PhysicalCores, info.Sockets
	if info.LogicalCPUs > 0 {
		r.CPU.LogicalCPUs = info.LogicalCPUs
	}
	return nil
}

func discoverMemory(path string, r *Report) error {
	data, err := os.ReadFile(path)
	if err != nil {
		r.Warnings = append(r.Warnings, fmt.Sprintf("memory unknown: %v", err))
		return nil
	}
	m, err := parseMemInfo(path, data)
	if err != nil {
		return err
	}
	r.Memory = m
	return nil
}

// runCommand is the default RunFunc. On failure it adds the command's first
// line of output, which is where nvidia-smi says what went wrong.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := firstLine(stderr.String())
		if msg == "" {
			msg = firstLine(stdout.String())
		}
		if msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return stdout.Bytes(), nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}
