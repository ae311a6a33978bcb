package hw

import (
	"strings"
	"testing"
	"time"
)

// A measured rate confirms a known GPU's table figure, replaces it when it falls below a
// third of it, and rates a GPU the table does not know.
func TestMeasuredThroughput(t *testing.T) {
	cases := []struct {
		name        string
		gpuName     string
		measured    float64
		wantTFLOPS  float64
		wantBasis   string
		wantSummary string
		wantWarning string
	}{
		{"confirms the table", "NVIDIA H200", 640, 989, "table: dense bf16 tensor, H200, confirmed: 640.0 measured", "989 TFLOPS bf16 (640 measured)", ""},
		{"at a third exactly", "NVIDIA H200", 329.7, 989, "table: dense bf16 tensor, H200, confirmed", "989 TFLOPS bf16 (330 measured)", ""},
		{"below a third: declared as measured", "NVIDIA H200", 300, 300, "measured: 300.0 TFLOPS bf16 on its tensor cores, below a third of the published 989.0 for H200", "300 TFLOPS bf16 measured", "less than a third of the published 989.0 bf16"},
		{"unknown GPU", "NVIDIA H300 Prototype", 1500, 1500, "measured: 1500.0 TFLOPS bf16 on its tensor cores, not in the table", "1500 TFLOPS bf16 measured", ""},
		{"not measured", "NVIDIA H200", 0, 989, "table: dense bf16 tensor, H200", "989 TFLOPS bf16", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := GPU{Name: c.gpuName, MeasuredTFLOPS: c.measured}
			var r Report
			rateGPU(&g, &r)
			if g.TFLOPS != c.wantTFLOPS || !strings.HasPrefix(g.TFLOPSBasis, c.wantBasis) || g.TFLOPSPrecision != "bf16" {
				t.Errorf("TFLOPS %v %s (%q); want %v (%q…)", g.TFLOPS, g.TFLOPSPrecision, g.TFLOPSBasis, c.wantTFLOPS, c.wantBasis)
			}
			if s := gpuRate(g, 1); s != c.wantSummary {
				t.Errorf("summary %q, want %q", s, c.wantSummary)
			}
			warnings := strings.Join(r.Warnings, "\n")
			if (c.wantWarning == "") != (warnings == "") || !strings.Contains(warnings, c.wantWarning) {
				t.Errorf("warnings %q, want one containing %q", warnings, c.wantWarning)
			}
		})
	}
}

// Discover measures each GPU it found, by UUID, for the benchmark duration, and declares
// the weakest measured GPU when a measurement does not confirm the table.
func TestDiscoverMeasuresEachGPU(t *testing.T) {
	opts := testOptions(t)
	rec := loadRecordedNVML(t)
	rec.GPUs = append(rec.GPUs, rec.GPUs[0])
	rec.GPUs[1].GPUUUID = "GPU-00000000-0000-4000-8000-000000000002"
	opts.openNVML = rec.open
	var asked []string
	opts.MeasureGPU = func(g GPU, d time.Duration) (float64, string, error) {
		asked = append(asked, g.UUID+" "+d.String())
		if g.Index == 1 {
			return 200, "a fake benchmark", nil
		}
		return 700, "a fake benchmark", nil
	}
	r := discover(t, opts)
	want := []string{"GPU-00000000-0000-4000-8000-000000000001 2ms", "GPU-00000000-0000-4000-8000-000000000002 2ms"}
	if strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Fatalf("measured %q, want %q", asked, want)
	}
	if g := r.GPUs[0]; g.MeasuredTFLOPS != 700 || g.Bench != "measured: a fake benchmark, 700.0 TFLOPS over 2ms" {
		t.Errorf("GPU 0: %v, %q", g.MeasuredTFLOPS, g.Bench)
	}
	hw, err := r.LedgerHardware()
	if err != nil || hw.TFLOPSMilli != 200_000 {
		t.Errorf("ledger hardware %+v, %v: want the throttled GPU's 200 TFLOPS", hw, err)
	}

	opts.BenchDuration, asked = -1, nil
	r = discover(t, opts)
	if len(asked) != 0 || r.GPUs[0].Bench != "skipped" || r.GPUs[0].TFLOPS != 989 {
		t.Errorf("a skipped benchmark measured %q: %+v", asked, r.GPUs[0])
	}
}

func TestAnUnmeasuredGPUSaysWhy(t *testing.T) {
	opts := testOptions(t)
	opts.openNVML = loadRecordedNVML(t).open
	r := discover(t, opts)
	if g := r.GPUs[0]; g.MeasuredTFLOPS != 0 || g.Bench != "not measured: no CUDA GPU (test)" || g.TFLOPS != 989 {
		t.Errorf("%+v", g)
	}
}
