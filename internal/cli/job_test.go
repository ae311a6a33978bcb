package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
)

func writeNPY(t *testing.T, rows, cols int, seed uint64) string {
	t.Helper()
	m, err := tensor.RandomInt8(rows, cols, seed)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "m.npy")
	if err := os.WriteFile(f, m.NPY(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// job submit's flags become the spec the consumer signs: terms, placement and inputs.
func TestJobSubmitFlagsMakeTheSpec(t *testing.T) {
	a, b := writeNPY(t, 4, 3, 1), writeNPY(t, 3, 2, 2)
	s := jobSubmitFlags{kernel: tensor.KernelMatMulInt8, inputs: []string{"a=" + a, "b=" + b}, budget: "2.5", maxPrice: "3",
		timeout: 90 * time.Second, verify: api.VerifyFreivald, region: "eu-central", from: "52.52, 13.405", maxLatMs: 40}
	spec, data, err := s.spec()
	if err != nil {
		t.Fatal(err)
	}
	want := api.Placement{Region: "eu-central", LatE6: 52_520_000, LonE6: 13_405_000, MaxLatencyMs: 40}
	if spec.Placement != want || spec.Budget != 2_500_000 || spec.MaxPricePerHour != 3*ledger.UomniPerOMNI || spec.TimeoutSeconds != 90 {
		t.Fatalf("spec %+v", spec)
	}
	if len(spec.Inputs) != 2 || spec.Inputs[0].Name != "a" || api.DigestOf(data["a"]) != spec.Inputs[0].Digest {
		t.Fatalf("inputs %+v", spec.Inputs)
	}
	for _, tt := range []struct {
		change func(*jobSubmitFlags)
		want   string
	}{
		{func(s *jobSubmitFlags) { s.from = "north" }, "want LAT,LON"},
		{func(s *jobSubmitFlags) { s.from = "91,0" }, "want LAT,LON"},
		{func(s *jobSubmitFlags) { s.from = "" }, "--max-latency-ms needs --from"},
		{func(s *jobSubmitFlags) { s.inputs = nil }, "no inputs"},
		{func(s *jobSubmitFlags) { s.inputs = []string{"a" + a} }, "want NAME=FILE.npy"},
		{func(s *jobSubmitFlags) { s.inputs = []string{"a=" + a, "a=" + b} }, "given twice"},
		{func(s *jobSubmitFlags) { s.budget = "lots" }, "--budget"},
		{func(s *jobSubmitFlags) { s.timeout = time.Millisecond }, "--timeout"},
	} {
		bad := s
		tt.change(&bad)
		if _, _, err := bad.spec(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to say %q", err, tt.want)
		}
	}
}

func TestJobSubmitContainerFlagsMakeTheSpec(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data.csv")
	archive := filepath.Join(dir, "img.tar")
	if err := os.WriteFile(data, []byte("x,y\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, []byte("not really a tarball"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := jobSubmitFlags{image: "train:v1", imageArchive: archive, inputs: []string{data, "cfg=" + data},
		command: []string{"/train", "--epochs", "3"}, env: []string{"SEED=7"}, gpus: -1, cpus: 1.5, memoryGB: 0.5,
		budget: "2", maxPrice: "3", timeout: time.Minute}
	spec, got, err := s.spec()
	if err != nil {
		t.Fatal(err)
	}
	w := spec.Workload
	if w.Kind != api.WorkloadContainer || w.Image != "train:v1" || w.ImageArchive != "image.tar" ||
		!slices.Equal(w.Command, []string{"/train", "--epochs", "3"}) || !slices.Equal(w.Env, []string{"SEED=7"}) {
		t.Fatalf("workload %+v", w)
	}
	if spec.Verification != api.VerifyRedundant || spec.Resources != (api.Resources{GPUs: 0, CPUMilli: 1500, MemoryMiB: 512}) {
		t.Fatalf("spec %+v", spec)
	}
	var names []string
	for _, in := range spec.Inputs {
		names = append(names, in.Name)
		if api.DigestOf(got[in.Name]) != in.Digest {
			t.Errorf("input %s: digest does not match its bytes", in.Name)
		}
	}
	if !slices.Equal(names, []string{"data.csv", "cfg", "image.tar"}) {
		t.Fatalf("inputs %v", names)
	}
	for _, tt := range []struct {
		change func(*jobSubmitFlags)
		want   string
	}{
		{func(s *jobSubmitFlags) { s.verify = api.VerifyFreivald }, "container job needs"},
		{func(s *jobSubmitFlags) { s.inputs = []string{data, data} }, "given twice"},
		{func(s *jobSubmitFlags) { s.env = []string{"NVIDIA_VISIBLE_DEVICES=all"} }, "reserved"},
		{func(s *jobSubmitFlags) { s.image, s.imageArchive = "", "" }, "for container jobs"},
		{func(s *jobSubmitFlags) { s.cpus = -1 }, "must not be negative"},
	} {
		bad := s
		tt.change(&bad)
		if _, _, err := bad.spec(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to say %q", err, tt.want)
		}
	}
}

// An audit job the chain did not draw settles unchecked: that is the level working, not a
// failure, and it never becomes verified; every other unverified ending is a failure.
func TestSettledUnauditedIsAnAuditJobsOutcome(t *testing.T) {
	for _, c := range []struct {
		status   string
		verified bool
		level    string
		want     bool
	}{
		{api.StatusSettled, false, api.VerifyAudit, true},
		{api.StatusSettled, true, api.VerifyAudit, false},
		{api.StatusFailed, false, api.VerifyAudit, false},
		{api.StatusSettled, false, api.VerifyFreivald, false},
		{api.StatusComputed, false, api.VerifyAudit, false},
	} {
		if got := settledUnaudited(c.status, c.verified, c.level); got != c.want {
			t.Errorf("%s verified=%v at %s: %v, want %v", c.status, c.verified, c.level, got, c.want)
		}
	}
}
