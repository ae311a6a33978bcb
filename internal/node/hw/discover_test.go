package hw

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// fakeSMI stands in for nvidia-smi: the query answers with query or queryErr,
// `nvidia-smi -q` with q.
type fakeSMI struct {
	query    []byte
	queryErr error
	q        []byte
	calls    []string
}

func (f *fakeSMI) run(_ context.Context, name string, args ...string) ([]byte, error) {
	f.calls = append(f.calls, name+" "+strings.Join(args, " "))
	switch {
	case name != "nvidia-smi":
		return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
	case len(args) == 1 && args[0] == "-q":
		return f.q, nil
	}
	return f.query, f.queryErr
}

var smiMissing = &fakeSMI{queryErr: &exec.Error{Name: "nvidia-smi", Err: exec.ErrNotFound}}

func noNVML() (nvmlLib, error) { return nil, errNVMLNoLibrary }

// noGPUBench is a MeasureGPUFunc for hosts whose GPUs only fixtures describe.
func noGPUBench(GPU, time.Duration) (float64, string, error) {
	return 0, "", errors.New("no CUDA GPU (test)")
}

// testOptions reads fixtures for everything but the GPU, which each test sets; GPUs are
// not measured unless a test says how.
func testOptions(t *testing.T) Options {
	return Options{
		CPUInfoPath:   "testdata/cpuinfo-x86-epyc.txt",
		MemInfoPath:   "testdata/meminfo-vm.txt",
		DiskDir:       t.TempDir(),
		BenchDuration: 2 * time.Millisecond,
		MeasureGPU:    noGPUBench,
	}
}

func discover(t *testing.T, opts Options) Report {
	t.Helper()
	r, err := Discover(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDiscoverWithoutADriverIsACPUNode(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, smiMissing.run
	r := discover(t, opts)

	const reason = "no NVIDIA driver: libnvidia-ml.so.1 not loadable, nvidia-smi not on PATH"
	if !r.CPUNode() || r.NoGPUReason != reason || r.GPUSource != "" {
		t.Fatalf("CPU node %v, reason %q, source %q", r.CPUNode(), r.NoGPUReason, r.GPUSource)
	}
	if r.CPU.MeasuredGOPSInt8 <= 0 || !strings.HasPrefix(r.CPU.Bench, "measured: ") {
		t.Errorf("CPU benchmark: %v GOPS, %q", r.CPU.MeasuredGOPSInt8, r.CPU.Bench)
	}
	want := "CPU node · GPU: none found (" + reason + ") · AMD EPYC 9654 2 cores (4 threads) · "
	if s := r.Summary(); !strings.HasPrefix(s, want) || !strings.Contains(s, " GOPS int8 measured · 24 GiB RAM · ") {
		t.Errorf("summary %q\nwant prefix %q", s, want)
	}
	hw, err := r.LedgerHardware()
	if err != nil {
		t.Fatal(err)
	}
	if hw.GPUModel != "cpu: AMD EPYC 9654" || hw.GPUs != 1 || hw.VRAMMiB != 24234968>>10 || hw.TFLOPSMilli < 1 {
		t.Errorf("ledger hardware %+v", hw)
	}
	js, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(js), `"gpus":[]`) || !strings.Contains(string(js), `"no_gpu_reason":"`+reason) {
		t.Errorf("json %s, err %v", js, err)
	}
}

func TestDiscoverThroughNVML(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML = loadRecordedNVML(t).open
	smi := &fakeSMI{}
	opts.Run = smi.run
	r := discover(t, opts)

	if r.GPUSource != "nvml" || len(smi.calls) != 0 {
		t.Errorf("source %q; nvidia-smi calls %q", r.GPUSource, smi.calls)
	}
	want := "1× NVIDIA H200 (140 GiB, cc 9.0) · 989 TFLOPS bf16 · AMD EPYC 9654 2 cores (4 threads) · 24 GiB RAM · "
	if s := r.Summary(); !strings.HasPrefix(s, want) || !strings.HasSuffix(s, " free") {
		t.Errorf("summary %q\nwant prefix %q", s, want)
	}
	hw, err := r.LedgerHardware()
	if err != nil {
		t.Fatal(err)
	}
	if want := (ledger.Hardware{GPUModel: "H200", GPUs: 1, VRAMMiB: 143771, TFLOPSMilli: 989_000}); hw != want {
		t.Errorf("ledger hardware %+v, want %+v", hw, want)
	}
}

func TestDiscoverFallsBackToNvidiaSMI(t *testing.T) {
	smi := &fakeSMI{query: readFixture(t, "rtx4090-query-gpu.csv"), q: readFixture(t, "h200-nvidia-smi-q.txt")}
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, smi.run
	r := discover(t, opts)

	wantQuery := "nvidia-smi --query-gpu=" + strings.Join(queryFields, ",") + " --format=csv,noheader,nounits"
	if len(smi.calls) != 2 || smi.calls[0] != wantQuery || smi.calls[1] != "nvidia-smi -q" {
		t.Errorf("calls %q", smi.calls)
	}
	if r.GPUSource != "nvidia-smi" || r.DriverVersion != "570.133.07" || r.CUDAVersion != "13.0" || r.NoGPUReason != "" {
		t.Errorf("source %q, driver %q, CUDA %q, reason %q", r.GPUSource, r.DriverVersion, r.CUDAVersion, r.NoGPUReason)
	}
	if s := r.Summary(); !strings.HasPrefix(s, "1× NVIDIA GeForce RTX 4090 (24 GiB, cc 8.9) · 165 TFLOPS bf16 · ") {
		t.Errorf("summary %q", s)
	}
	hw, err := r.LedgerHardware()
	if want := (ledger.Hardware{GPUModel: "RTX 4090", GPUs: 1, VRAMMiB: 24564, TFLOPSMilli: 165_200}); err != nil || hw != want {
		t.Errorf("ledger hardware %+v, %v; want %+v", hw, err, want)
	}
}

func TestDiscoverDisableNVML(t *testing.T) {
	opts := testOptions(t)
	opts.DisableNVML, opts.Run = true, smiMissing.run
	opts.openNVML = func() (nvmlLib, error) { t.Fatal("NVML opened though disabled"); return nil, nil }
	if r := discover(t, opts); r.NoGPUReason != "no NVIDIA driver: NVML disabled, nvidia-smi not on PATH" {
		t.Errorf("reason %q", r.NoGPUReason)
	}
}

func TestDiscoverWithABrokenDriver(t *testing.T) {
	smi := &fakeSMI{queryErr: errors.New("exit status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")}
	opts := testOptions(t)
	opts.openNVML, opts.Run = func() (nvmlLib, error) { return nil, errors.New("NVML init: ERROR_DRIVER_NOT_LOADED") }, smi.run
	r := discover(t, opts)
	want := "NVML init: ERROR_DRIVER_NOT_LOADED, nvidia-smi failed: exit status 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver"
	if !r.CPUNode() || r.NoGPUReason != want {
		t.Errorf("reason %q\nwant   %q", r.NoGPUReason, want)
	}
}

func TestDiscoverTwoGPUsOneUnknown(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, (&fakeSMI{query: readFixture(t, "2gpu-query-gpu.csv")}).run
	r := discover(t, opts)
	want := "1× NVIDIA GeForce RTX 3090 (24 GiB, cc 8.6) · 71 TFLOPS bf16 · 1× NVIDIA GeForce RTX 4060 Ti (16 GiB, cc 8.9) · TFLOPS unknown · "
	if s := r.Summary(); !strings.HasPrefix(s, want) {
		t.Errorf("summary %q\nwant prefix %q", s, want)
	}
	_, err := r.LedgerHardware()
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "GPU 1 (NVIDIA GeForce RTX 4060 Ti): TFLOPS unknown") {
		t.Errorf("err %v", err)
	}
}

func TestDiscoverReportsMalformedSourcesButKeepsTheRest(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, (&fakeSMI{query: []byte("0, NVIDIA L4\n")}).run
	opts.MemInfoPath = t.TempDir() + "/missing" // absent: a warning, not an error
	r, err := Discover(context.Background(), opts)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nvidia-smi line 1: 2 values for 22 fields") {
		t.Fatalf("err %v", err)
	}
	if r.CPU.Model != "AMD EPYC 9654 96-Core Processor" || len(r.Warnings) == 0 || !strings.HasPrefix(r.Warnings[0], "memory unknown: ") {
		t.Errorf("report %+v", r)
	}
}

func TestDiscoverWithoutProc(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, smiMissing.run
	opts.CPUInfoPath, opts.MemInfoPath = "/nonexistent/cpuinfo", "/nonexistent/meminfo"
	r := discover(t, opts)
	if r.CPU.LogicalCPUs != runtime.NumCPU() || r.CPU.Model != "" || len(r.Warnings) != 2 {
		t.Errorf("cpu %+v, warnings %q", r.CPU, r.Warnings)
	}
	if s := r.Summary(); !strings.Contains(s, "unknown "+runtime.GOARCH+" CPU") || !strings.Contains(s, "RAM unknown") {
		t.Errorf("summary %q", s)
	}
	if _, err := r.LedgerHardware(); !errors.Is(err, ErrIncomplete) {
		t.Errorf("CPU node without memory: err %v", err)
	}
}

func TestDiscoverCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := testOptions(t)
	opts.openNVML, opts.Run = noNVML, smiMissing.run
	if _, err := Discover(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v", err)
	}
}

func TestDiscoverSkippedBench(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML, opts.Run, opts.BenchDuration = noNVML, smiMissing.run, -1
	r := discover(t, opts)
	if r.CPU.Bench != "skipped" || r.CPU.MeasuredGOPSInt8 != 0 {
		t.Errorf("cpu %+v", r.CPU)
	}
	if _, err := r.LedgerHardware(); !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "not measured (skipped)") {
		t.Errorf("err %v", err)
	}
}

// This host, whatever it has: must not fail or panic, and must say what it is.
func TestDiscoverThisHost(t *testing.T) {
	r, err := Discover(context.Background(), Options{BenchDuration: 5 * time.Millisecond, DiskDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUNode() && r.NoGPUReason == "" {
		t.Error("a CPU node must say why it has no GPU")
	}
	t.Log(r.Summary())
}

func TestEightIdenticalGPUs(t *testing.T) {
	rec := loadRecordedNVML(t)
	for range 7 {
		rec.GPUs = append(rec.GPUs, rec.GPUs[0])
	}
	opts := testOptions(t)
	opts.openNVML, opts.BenchDuration = rec.open, -1
	r := discover(t, opts)
	if s := r.Summary(); !strings.HasPrefix(s, "8× NVIDIA H200 (140 GiB, cc 9.0) · 989 TFLOPS bf16 each · ") {
		t.Errorf("summary %q", s)
	}
	hw, err := r.LedgerHardware()
	if err != nil || hw.GPUs != 8 || hw.TFLOPSMilli != 989_000 {
		t.Errorf("ledger hardware %+v, %v", hw, err)
	}
}

func TestLedgerHardwareMixedGPUsDeclaresTheWeakest(t *testing.T) {
	r := Report{GPUs: []GPU{
		{Name: "NVIDIA GeForce RTX 4090", MemoryTotalMiB: 24564},
		{Name: "NVIDIA GeForce RTX 3090", MemoryTotalMiB: 24576, Index: 1},
		{Name: "NVIDIA GeForce RTX 4090", MemoryTotalMiB: 24564, Index: 2},
	}}
	for i := range r.GPUs {
		rateGPU(&r.GPUs[i], &r)
	}
	hw, err := r.LedgerHardware()
	want := ledger.Hardware{GPUModel: "mixed: RTX 4090, RTX 3090", GPUs: 3, VRAMMiB: 24564, TFLOPSMilli: 71_000}
	if err != nil || hw != want {
		t.Errorf("got %+v, %v; want %+v", hw, err, want)
	}
}

func TestLedgerHardwareFitsTheLedgerLimit(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	r := Report{GPUs: []GPU{{Name: long, MemoryTotalMiB: 1, TFLOPS: 1}}}
	hw, err := r.LedgerHardware()
	if err != nil || len(hw.GPUModel) > maxGPUModel || !strings.HasPrefix(long, hw.GPUModel) {
		t.Errorf("model %q (%d bytes), %v", hw.GPUModel, len(hw.GPUModel), err)
	}
}

func TestDiskSpace(t *testing.T) {
	d := diskSpace(t.TempDir())
	if runtime.GOOS != "linux" {
		if d.Unknown == "" {
			t.Errorf("disk %+v: want unknown off linux", d)
		}
		return
	}
	if d.Unknown != "" || d.FreeBytes == 0 || d.TotalBytes < d.FreeBytes {
		t.Errorf("disk %+v", d)
	}
	if d := diskSpace("/nonexistent/dir"); d.Unknown == "" {
		t.Errorf("missing dir: %+v", d)
	}
}

func TestFormatting(t *testing.T) {
	bytes := map[uint64]string{
		143771 << 20:  "140 GiB",
		24564 << 20:   "24 GiB",
		1536 << 30:    "1.5 TiB",
		3518437208883: "3.2 TiB",
		512:           "512 B",
		450_971_566:   "430 MiB",
	}
	for b, want := range bytes {
		if got := formatBytes(b); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", b, got, want)
		}
	}
	names := map[string]string{
		"AMD EPYC 9654 96-Core Processor":          "AMD EPYC 9654",
		"Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz": "Intel Xeon Gold 6338",
		"Intel(R) Core(TM) i9-13900K":              "Intel Core i9-13900K",
		"ARM Neoverse-V2":                          "ARM Neoverse-V2",
	}
	for in, want := range names {
		if got := shortCPUName(in); got != want {
			t.Errorf("shortCPUName(%q) = %q, want %q", in, got, want)
		}
	}
}
