package validator

import (
	"testing"

	"github.com/omnisync/omnisync/internal/metrics/metricstest"
	"github.com/omnisync/omnisync/internal/tensor"
)

func TestMetricsCountChecksByVerdict(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	if v := r.verify(t, r.spec); !v.Pass {
		t.Fatalf("verdict %+v", v)
	}
	altered := r.spec
	altered.Workload.Kernel = "nonsense" // does not hash to the commitment: refused, nothing attested
	if v := r.verify(t, altered); v.Error == "" {
		t.Fatalf("verdict %+v, want an error", v)
	}
	got := metricstest.ScrapeGatherer(t, r.reg)
	got.Want(t, map[string]float64{
		`omnisync_validator_checks_total{verdict="pass"}`:        1,
		`omnisync_validator_checks_total{verdict="fail"}`:        0,
		`omnisync_validator_checks_total{verdict="error"}`:       1,
		`omnisync_validator_check_seconds_count{verdict="pass"}`: 1,
		`omnisync_validator_checks_in_flight`:                    0,
	})
	if s := got[`omnisync_validator_check_seconds_sum{verdict="pass"}`]; s <= 0 {
		t.Errorf("a check took %vs", s)
	}
}
