package hw

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// recordedNVML is testdata/h200-nvml.json: what go-nvml returned on an H200.
// It implements nvmlLib; a field the recording lacks is "not supported".
type recordedNVML struct {
	CUDADriver int           `json:"cuda_driver"`
	Driver     string        `json:"driver"`
	GPUs       []recordedGPU `json:"gpus"`

	shutdowns int
}

type recordedGPU struct {
	GPUName          string  `json:"name"`
	GPUUUID          string  `json:"uuid"`
	MemoryTotalBytes *uint64 `json:"memory_total_bytes"`
	MemoryFreeBytes  *uint64 `json:"memory_free_bytes"`
	CCMajor          *int    `json:"cc_major"`
	CCMinor          *int    `json:"cc_minor"`
	SMClockMaxMHz    *uint32 `json:"sm_clock_max_mhz"`
	MemClockMaxMHz   *uint32 `json:"mem_clock_max_mhz"`
	MemBusWidthBits  *uint32 `json:"mem_bus_width_bits"`
	PowerLimitMW     *uint32 `json:"power_limit_mw"`
	PowerUsageMW     *uint32 `json:"power_usage_mw"`
	Temperature      *uint32 `json:"temperature_c"`
	UtilGPUPct       *uint32 `json:"util_gpu_pct"`
	UtilMemPct       *uint32 `json:"util_mem_pct"`
	PCIeGenMax       *int    `json:"pcie_gen_max"`
	PCIeWidthMax     *int    `json:"pcie_width_max"`
	MigModeCurrent   *int    `json:"mig_mode_current"`
	EccModeCurrent   *int    `json:"ecc_mode_current"`

	// Not in the recording: tests set them.
	Cores *int
	fail  error // returned by every call when set, as by a GPU that fell off the bus
}

func loadRecordedNVML(t testing.TB) *recordedNVML {
	t.Helper()
	data, err := os.ReadFile("testdata/h200-nvml.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec recordedNVML
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

func (r *recordedNVML) open() (nvmlLib, error) { return r, nil }

func (r *recordedNVML) DriverVersion() (string, error)  { return r.Driver, nil }
func (r *recordedNVML) CUDADriverVersion() (int, error) { return r.CUDADriver, nil }
func (r *recordedNVML) DeviceCount() (int, error)       { return len(r.GPUs), nil }
func (r *recordedNVML) Shutdown() error                 { r.shutdowns++; return nil }

func (r *recordedNVML) Device(i int) (nvmlDevice, error) {
	if i < 0 || i >= len(r.GPUs) {
		return nil, fmt.Errorf("no device %d", i)
	}
	return &r.GPUs[i], nil
}

func field[T any](g *recordedGPU, p *T) (T, error) {
	var zero T
	switch {
	case g.fail != nil:
		return zero, g.fail
	case p == nil:
		return zero, errNVMLNotSupported
	}
	return *p, nil
}

func (g *recordedGPU) Name() (string, error) { return field(g, &g.GPUName) }
func (g *recordedGPU) UUID() (string, error) { return field(g, &g.GPUUUID) }

func (g *recordedGPU) MemoryInfo() (uint64, uint64, error) {
	total, err := field(g, g.MemoryTotalBytes)
	if err != nil {
		return 0, 0, err
	}
	free, err := field(g, g.MemoryFreeBytes)
	return total, free, err
}

func (g *recordedGPU) CudaComputeCapability() (int, int, error) {
	major, err := field(g, g.CCMajor)
	if err != nil {
		return 0, 0, err
	}
	minor, err := field(g, g.CCMinor)
	return major, minor, err
}

func (g *recordedGPU) ClockMHz(clock) (uint32, error) { return field[uint32](g, nil) }

func (g *recordedGPU) MaxClockMHz(c clock) (uint32, error) {
	if c == clockSM {
		return field(g, g.SMClockMaxMHz)
	}
	return field(g, g.MemClockMaxMHz)
}

func (g *recordedGPU) MemoryBusWidth() (uint32, error)       { return field(g, g.MemBusWidthBits) }
func (g *recordedGPU) PowerUsageMilliwatts() (uint32, error) { return field(g, g.PowerUsageMW) }
func (g *recordedGPU) EnforcedPowerLimitMilliwatts() (uint32, error) {
	return field(g, g.PowerLimitMW)
}
func (g *recordedGPU) TemperatureC() (uint32, error) { return field(g, g.Temperature) }

func (g *recordedGPU) Utilization() (uint32, uint32, error) {
	gpu, err := field(g, g.UtilGPUPct)
	if err != nil {
		return 0, 0, err
	}
	mem, err := field(g, g.UtilMemPct)
	return gpu, mem, err
}

func (g *recordedGPU) CurrPcieLink() (int, int, error) { return 0, 0, errNVMLNotSupported }

func (g *recordedGPU) MaxPcieLink() (int, int, error) {
	gen, err := field(g, g.PCIeGenMax)
	if err != nil {
		return 0, 0, err
	}
	width, err := field(g, g.PCIeWidthMax)
	return gen, width, err
}

func (g *recordedGPU) MigModeEnabled() (bool, error) {
	v, err := field(g, g.MigModeCurrent)
	return v == 1, err
}

func (g *recordedGPU) EccModeEnabled() (bool, error) {
	v, err := field(g, g.EccModeCurrent)
	return v == 1, err
}

func (g *recordedGPU) NumGpuCores() (int, error) { return field(g, g.Cores) }

func TestNVMLMapsTheRecordedH200(t *testing.T) {
	rec := loadRecordedNVML(t)
	var r Report
	if err := readNVML(rec.open, &r); err != nil {
		t.Fatal(err)
	}
	if rec.shutdowns != 1 {
		t.Errorf("NVML shut down %d times, want 1", rec.shutdowns)
	}
	if r.DriverVersion != "580.159.04" || r.CUDAVersion != "13.0" {
		t.Errorf("driver %q, CUDA %q; want 580.159.04, 13.0", r.DriverVersion, r.CUDAVersion)
	}
	if len(r.GPUs) != 1 {
		t.Fatalf("got %d GPUs, want 1", len(r.GPUs))
	}
	g := r.GPUs[0]
	checks := []struct {
		field     string
		got, want any
	}{
		{"name", g.Name, "NVIDIA H200"},
		{"uuid", g.UUID, "GPU-00000000-0000-4000-8000-000000000001"},
		{"memory total MiB", g.MemoryTotalMiB, uint64(143771)}, // the same as nvidia-smi's CSV
		{"memory free MiB", g.MemoryFreeMiB, uint64(143155)},
		{"compute capability", g.ComputeCapability, "9.0"},
		{"max SM clock", g.SMClockMaxMHz, uint32(1980)},
		{"max memory clock", g.MemClockMaxMHz, uint32(3201)},
		{"current SM clock (not recorded)", g.SMClockMHz, uint32(0)},
		{"bus width", g.MemoryBusWidthBits, uint32(6016)},
		{"power limit W", g.PowerLimitW, 700.0},
		{"power draw W", g.PowerDrawW, 106.105},
		{"temperature", *g.TemperatureC, 36},
		{"GPU utilisation", *g.UtilizationGPUPct, 0},
		{"memory utilisation", *g.UtilizationMemPct, 0},
		{"PCIe gen max", g.PCIeGenMax, 5},
		{"PCIe width max", g.PCIeWidthMax, 16},
		{"MIG", *g.MIGEnabled, false},
		{"ECC", *g.ECCEnabled, true},
		{"cores (not recorded)", g.CUDACores, 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.field, c.got, c.want)
		}
	}
	if len(r.Warnings) != 0 {
		t.Errorf("unsupported fields should be silent, got warnings %q", r.Warnings)
	}
}

// The recording must agree with what nvidia-smi -q printed on the same machine.
func TestNVMLAgreesWithNvidiaSMIQ(t *testing.T) {
	q, err := os.ReadFile("testdata/h200-nvidia-smi-q.txt")
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := readNVML(loadRecordedNVML(t).open, &r); err != nil {
		t.Fatal(err)
	}
	for key, got := range map[string]string{
		"Driver Version": r.DriverVersion,
		"CUDA Version":   r.CUDAVersion,
		"Product Name":   r.GPUs[0].Name,
		"GPU UUID":       r.GPUs[0].UUID,
	} {
		if want := parseSMIHeader(q, key); got != want {
			t.Errorf("%s: NVML %q, nvidia-smi -q %q", key, got, want)
		}
	}
}

func TestNVMLH200Golden(t *testing.T) {
	var r Report
	if err := readNVML(loadRecordedNVML(t).open, &r); err != nil {
		t.Fatal(err)
	}
	rateGPU(&r.GPUs[0], &r)
	got, err := json.MarshalIndent(r.GPUs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/h200-gpus.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestNVMLH200Golden -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("GPU JSON differs from %s (rerun with -update if intended):\n%s", golden, got)
	}
}

func TestNVMLDerivedThroughput(t *testing.T) {
	cases := []struct {
		name        string
		gpuName     string
		cores       int
		wantTFLOPS  float64
		wantBasis   string
		wantDerived float64
		wantWarning string
	}{
		// 132 SMs × 128 FP32 cores on an H200: 16896 × 1980 MHz × 2 = 66.9, the datasheet's 67.
		{"known GPU, derived confirms the table", "NVIDIA H200", 16896, 989, "table: dense bf16 tensor, H200", 66.9, ""},
		{"known GPU, derived far below the table", "NVIDIA H200", 8448, 989, "table", 33.5, "more than 15% below the published 67.0"},
		{"unknown GPU registers with the derived figure", "NVIDIA H300 Prototype", 16896, 66.9, "derived: fp32 = 16896 cores × 1980 MHz × 2", 66.9, ""},
		{"unknown GPU without a core count", "NVIDIA H300 Prototype", 0, 0, "", 0, "TFLOPS unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := loadRecordedNVML(t)
			rec.GPUs[0].GPUName = c.gpuName
			if c.cores > 0 {
				rec.GPUs[0].Cores = &c.cores
			}
			var r Report
			if err := readNVML(rec.open, &r); err != nil {
				t.Fatal(err)
			}
			g := &r.GPUs[0]
			rateGPU(g, &r)
			if g.TFLOPS != c.wantTFLOPS || g.DerivedFP32TFLOPS != c.wantDerived || !strings.HasPrefix(g.TFLOPSBasis, c.wantBasis) {
				t.Errorf("TFLOPS %v (%q), derived %v; want %v (%q…), derived %v", g.TFLOPS, g.TFLOPSBasis, g.DerivedFP32TFLOPS, c.wantTFLOPS, c.wantBasis, c.wantDerived)
			}
			warnings := strings.Join(r.Warnings, "\n")
			if (c.wantWarning == "") != (warnings == "") || !strings.Contains(warnings, c.wantWarning) {
				t.Errorf("warnings %q, want one containing %q", warnings, c.wantWarning)
			}
		})
	}
}

func TestNVMLFailures(t *testing.T) {
	t.Run("a failing GPU keeps the others and warns", func(t *testing.T) {
		rec := loadRecordedNVML(t)
		rec.GPUs = append(rec.GPUs, rec.GPUs[0])
		rec.GPUs[1].fail = errors.New("NVML: ERROR_GPU_IS_LOST")
		var r Report
		if err := readNVML(rec.open, &r); err != nil {
			t.Fatal(err)
		}
		if len(r.GPUs) != 2 || r.GPUs[0].Name != "NVIDIA H200" || r.GPUs[1].Name != "" {
			t.Fatalf("GPUs %+v", r.GPUs)
		}
		if !strings.Contains(strings.Join(r.Warnings, "\n"), "GPU 1: name: NVML: ERROR_GPU_IS_LOST") {
			t.Errorf("warnings %q lack the lost GPU", r.Warnings)
		}
	})
	t.Run("init failure leaves the report untouched", func(t *testing.T) {
		r := Report{Warnings: []string{"before"}}
		err := readNVML(func() (nvmlLib, error) { return nil, errNVMLNoLibrary }, &r)
		if !errors.Is(err, errNVMLNoLibrary) || len(r.GPUs) != 0 || len(r.Warnings) != 1 {
			t.Errorf("err %v, report %+v", err, r)
		}
	})
	t.Run("a panic in the binding is an error", func(t *testing.T) {
		var r Report
		err := readNVML(func() (nvmlLib, error) { panic("cgo went wrong") }, &r)
		if err == nil || !strings.Contains(err.Error(), "cgo went wrong") {
			t.Errorf("err %v", err)
		}
	})
}

// On this host (no driver in CI) openNVML must fail cleanly, never panic; on a
// GPU host it must find at least one device.
func TestOpenNVMLOnThisHost(t *testing.T) {
	lib, err := openNVML()
	if err != nil {
		t.Logf("NVML unavailable here: %v", err)
		return
	}
	defer func() {
		if err := lib.Shutdown(); err != nil {
			t.Error(err)
		}
	}()
	n, err := lib.DeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVML: %d GPUs", n)
}
