package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
)

// nodeMetrics are the daemon's Prometheus series (Options.Metrics). The gauges are read
// from the daemon's running jobs at each scrape.
type nodeMetrics struct {
	jobs       *prometheus.CounterVec // by outcome
	jobSeconds prometheus.Histogram
	rejects    *prometheus.CounterVec // by reason
}

func (d *Daemon) registerMetrics(reg prometheus.Registerer) error {
	m := &nodeMetrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_node_jobs_total",
			Help: "Jobs this node ran to the end, by outcome: computed (result committed on chain), failed, cancelled (by the router, or the node stopping), timed_out.",
		}, []string{"outcome"}),
		jobSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "omnisync_node_job_seconds",
			Help:    "Time from accepting a job to its result (or failure), inputs, run, output and commit together.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14), // 50ms to 7min
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_node_dispatch_rejects_total",
			Help: "Dispatches this node declined, by reason: no_free_gpu, unsupported (a container job on a node without a container runtime), bad_request.",
		}, []string{"reason"}),
	}
	for _, o := range []string{"computed", "failed", "cancelled", "timed_out"} {
		m.jobs.WithLabelValues(o)
	}
	for _, r := range []string{"no_free_gpu", "unsupported", "bad_request"} {
		m.rejects.WithLabelValues(r)
	}
	running := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omnisync_node_jobs_running",
		Help: "Jobs this node runs now.",
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(len(d.running))
	})
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "omnisync_node_gpus_held",
		Help: "GPUs (job slots) the running jobs hold, of omnisync_node_gpus.",
	}, func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		return float64(d.heldLocked())
	})
	gpus := prometheus.NewGauge(prometheus.GaugeOpts{Name: "omnisync_node_gpus", Help: "GPUs this node declares."})
	gpus.Set(float64(d.opts.Hardware.GPUs))
	if err := metrics.Register(reg, m.jobs, m.jobSeconds, m.rejects, running, held, gpus); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	d.metrics = m
	return nil
}

// answered counts a dispatch the node declined.
func (m *nodeMetrics) answered(a protocol.Ack) {
	switch {
	case a.Accepted:
	case a.Error == protocol.DeclineNoFreeGPU:
		m.rejects.WithLabelValues("no_free_gpu").Inc()
	case strings.HasPrefix(a.Error, runtime.ErrUnsupported.Error()):
		m.rejects.WithLabelValues("unsupported").Inc()
	default:
		m.rejects.WithLabelValues("bad_request").Inc()
	}
}

// finished counts a job that ran to res in ctx, accepted elapsed ago.
func (m *nodeMetrics) finished(ctx context.Context, res protocol.Result, elapsed time.Duration) {
	outcome := "computed"
	switch {
	case res.Error == "":
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		outcome = "timed_out"
	case ctx.Err() != nil:
		outcome = "cancelled"
	default:
		outcome = "failed"
	}
	m.jobs.WithLabelValues(outcome).Inc()
	m.jobSeconds.Observe(elapsed.Seconds())
}
