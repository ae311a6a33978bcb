package hw

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The recorded H200 CSV has a header and units (--format=csv), and other fields.
func TestParseQueryGPUH200WithHeaderAndUnits(t *testing.T) {
	gpus, driver, err := parseQueryGPU(readFixture(t, "h200-query-gpu.csv"), queryFields)
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 1 || driver != "" {
		t.Fatalf("gpus %+v, driver %q", gpus, driver)
	}
	g := gpus[0]
	if g.Name != "NVIDIA H200" || g.MemoryTotalMiB != 143771 || g.SMClockMaxMHz != 1980 || g.PowerLimitW != 700 || g.PCIeGenMax != 5 {
		t.Errorf("parsed %+v", g)
	}
}

func TestParseQueryGPUConsumerCards(t *testing.T) {
	t.Run("RTX 4090", func(t *testing.T) {
		gpus, driver, err := parseQueryGPU(readFixture(t, "rtx4090-query-gpu.csv"), queryFields)
		if err != nil {
			t.Fatal(err)
		}
		if len(gpus) != 1 || driver != "570.133.07" {
			t.Fatalf("gpus %+v, driver %q", gpus, driver)
		}
		g := gpus[0]
		want := GPU{
			Index: 0, Name: "NVIDIA GeForce RTX 4090", UUID: "GPU-5f0c2a4e-1b7d-4c1a-9e2b-7a3d6c8b9f01",
			MemoryTotalMiB: 24564, MemoryFreeMiB: 23817, ComputeCapability: "8.9",
			SMClockMHz: 210, SMClockMaxMHz: 3120, MemClockMHz: 405, MemClockMaxMHz: 10501,
			PowerDrawW: 18.52, PowerLimitW: 450, PCIeGen: 1, PCIeGenMax: 4, PCIeWidth: 16, PCIeWidthMax: 16,
		}
		temp, util, memUtil := *g.TemperatureC, *g.UtilizationGPUPct, *g.UtilizationMemPct
		g.TemperatureC, g.UtilizationGPUPct, g.UtilizationMemPct = nil, nil, nil
		if g.MIGEnabled != nil || g.ECCEnabled != nil {
			t.Errorf("[N/A] MIG/ECC should be unknown, got %v/%v", g.MIGEnabled, g.ECCEnabled)
		}
		if g != want || temp != 34 || util != 0 || memUtil != 1 {
			t.Errorf("got  %+v (temp %d, util %d/%d)\nwant %+v", g, temp, util, memUtil, want)
		}
	})
	t.Run("two GPUs, one with unsupported readings", func(t *testing.T) {
		gpus, _, err := parseQueryGPU(readFixture(t, "2gpu-query-gpu.csv"), queryFields)
		if err != nil {
			t.Fatal(err)
		}
		if len(gpus) != 2 || gpus[0].Name != "NVIDIA GeForce RTX 3090" || gpus[1].Index != 1 {
			t.Fatalf("gpus %+v", gpus)
		}
		if g := gpus[1]; g.PowerDrawW != 0 || g.TemperatureC != nil || g.PowerLimitW != 165 || g.PCIeWidth != 8 {
			t.Errorf("[Not Supported]/[N/A] should be unknown: %+v", g)
		}
	})
}

func TestParseQueryGPURejectsMalformedOutput(t *testing.T) {
	fields := []string{"index", "name", "memory.total", "mig.mode.current", "compute_cap"}
	cases := []struct {
		name, out, wantInMsg string
	}{
		{"too few values", "0, NVIDIA L4, 23034\n", "line 1: 3 values for 5 fields"},
		{"memory not a number", "0, NVIDIA L4, lots, Disabled, 8.9\n", `line 1: field memory.total: "lots": invalid syntax`},
		{"bad MIG mode", "0, NVIDIA L4, 23034, Maybe, 8.9\n", `field mig.mode.current: "Maybe": want "Enabled" or "Disabled"`},
		{"bad compute capability", "0, NVIDIA L4, 23034, Disabled, 89\n", `field compute_cap: "89": want MAJOR.MINOR`},
		{"second line broken", "0, NVIDIA L4, 23034, Disabled, 8.9\n1, NVIDIA L4, -1, Disabled, 8.9\n", "line 2: field memory.total"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseQueryGPU([]byte(c.out), fields)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.wantInMsg) {
				t.Errorf("err %v, want ErrMalformed containing %q", err, c.wantInMsg)
			}
		})
	}
}

func TestParseQueryGPUUnknownMarkers(t *testing.T) {
	for _, v := range []string{"[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]", ""} {
		gpus, _, err := parseQueryGPU([]byte("0, NVIDIA T4, "+v+"\n"), []string{"index", "name", "memory.total"})
		if err != nil || len(gpus) != 1 || gpus[0].MemoryTotalMiB != 0 {
			t.Errorf("%q: gpus %+v, err %v; want unknown memory", v, gpus, err)
		}
	}
}

func TestParseSMIHeader(t *testing.T) {
	q := readFixture(t, "h200-nvidia-smi-q.txt")
	if got := parseSMIHeader(q, "CUDA Version"); got != "13.0" {
		t.Errorf("CUDA Version %q", got)
	}
	if got := parseSMIHeader(q, "No Such Key"); got != "" {
		t.Errorf("missing key gave %q", got)
	}
}
