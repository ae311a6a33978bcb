package validator

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/protocol"
)

// validatorMetrics are the daemon's Prometheus series (Options.Metrics).
type validatorMetrics struct {
	checks       *prometheus.CounterVec // by verdict
	checkSeconds *prometheus.HistogramVec
	reports      prometheus.Counter     // false attestations reported (attestaudit.go)
	gpu          *prometheus.CounterVec // checks on the GPU, by outcome (gpucheck.go)
}

func (d *Daemon) registerMetrics(reg prometheus.Registerer) error {
	m := &validatorMetrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_validator_checks_total",
			Help: "Results this validator checked, by verdict: pass and fail were attested on chain; error means nothing was (a bad request, a store fault, the chain unreachable). A request repeated while its check runs is counted once.",
		}, []string{"verdict"}),
		checkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnisync_validator_check_seconds",
			Help:    "Time to check one result, from the request to its attestation committed (fetching inputs and output included), by verdict.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10ms to 80s
		}, []string{"verdict"}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "omnisync_validator_false_attestations_reported_total",
			Help: "Other validators' passing attestations this validator's audits found false and reported on chain.",
		}),
	}
	for _, v := range []string{"pass", "fail", "error"} {
		m.checks.WithLabelValues(v)
	}
	m.gpu = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "omnisync_validator_gpu_checks_total",
		Help: "Product checks run on the GPU, by outcome: done (its verdict stands), failed (it failed the result, so the CPU checked again), overruled (the CPU passed what the GPU failed: the GPU computes wrongly), error (the GPU did not finish; the CPU checked).",
	}, []string{"outcome"})
	for _, v := range []string{"done", "failed", "overruled", "error"} {
		m.gpu.WithLabelValues(v)
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omnisync_validator_checks_in_flight",
		Help: "Checks under way; their CPU-bound parts run at most the parallel setting at once, the rest wait.",
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(len(d.inFlight))
	})
	if err := metrics.Register(reg, m.checks, m.checkSeconds, m.reports, m.gpu, inFlight); err != nil {
		return fmt.Errorf("validator: %w", err)
	}
	d.metrics = m
	return nil
}

// checked counts one check that took elapsed and ended in v, or in err.
func (m *validatorMetrics) checked(v protocol.Verdict, err error, elapsed time.Duration) {
	verdict := "pass"
	switch {
	case err != nil:
		verdict = "error"
	case !v.Pass:
		verdict = "fail"
	}
	m.checks.WithLabelValues(verdict).Inc()
	m.checkSeconds.WithLabelValues(verdict).Observe(elapsed.Seconds())
}

// gpuChecked counts one check on the GPU that ended in outcome.
func (m *validatorMetrics) gpuChecked(outcome string) { m.gpu.WithLabelValues(outcome).Inc() }

// reported counts one false attestation reported.
func (m *validatorMetrics) reported() { m.reports.Inc() }
