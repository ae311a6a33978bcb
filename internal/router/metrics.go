package router

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// routerMetrics are the router's Prometheus series (Options.Metrics). Counters and the
// histogram move where things happen; the gauges are read from the router's own state at
// each scrape (stateCollector), so they cannot drift from it.
type routerMetrics struct {
	placements   *prometheus.CounterVec // by outcome: placed, busy, infeasible, error
	placeSeconds prometheus.Histogram
	replacements *prometheus.CounterVec // by reason: failed, declined
	heartbeats   prometheus.Histogram   // a node's heartbeat, from its Sent to the index
}

// jobStates are the values of omnisync_router_jobs' state label, in lifecycle order.
var jobStates = []string{"escrowing", "awaiting_inputs", "queued", "dispatching", "running", "verifying", "finished"}

func (r *Router) registerMetrics(reg prometheus.Registerer) error {
	r.metrics = &routerMetrics{
		placements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_router_placements_total",
			Help: "Placement decisions, by outcome: placed (a node was chosen), busy (every node that fits is full), infeasible (no node fits), error (the chain could not be read).",
		}, []string{"outcome"}),
		placeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "omnisync_router_placement_seconds",
			Help:    "Time to take one placement decision, whatever its outcome.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10), // 10µs to 2.6s
		}),
		replacements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_router_replacements_total",
			Help: "Jobs placed again after their node failed the attempt (failed), declined it for want of a free GPU (declined) or had no one listening for it (unreachable).",
		}, []string{"reason"}),
	}
	r.metrics.heartbeats = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "omnisync_router_heartbeat_index_seconds",
		Help:    "From a node's heartbeat being sent (its own timestamp, so a node's clock skew shows here) to the placement index holding it.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 10},
	})
	for _, o := range []string{"placed", "busy", "infeasible", "error"} {
		r.metrics.placements.WithLabelValues(o)
	}
	for _, why := range []string{"failed", "declined", "unreachable"} {
		r.metrics.replacements.WithLabelValues(why)
	}
	return metrics.Register(reg, r.metrics.placements, r.metrics.placeSeconds, r.metrics.replacements, r.metrics.heartbeats, stateCollector{r})
}

// placement counts one placement decision that took elapsed.
func (m *routerMetrics) placement(elapsed time.Duration, err error) {
	outcome := "placed"
	switch {
	case errors.Is(err, errAllBusy):
		outcome = "busy"
	case errors.Is(err, scheduler.ErrNoFeasibleNode):
		outcome = "infeasible"
	case err != nil:
		outcome = "error"
	}
	m.placements.WithLabelValues(outcome).Inc()
	m.placeSeconds.Observe(elapsed.Seconds())
}

// heartbeatIndexed observes a node heartbeat sent at sent that the index now holds; a
// timestamp ahead of the router's clock counts as no delay.
func (m *routerMetrics) heartbeatIndexed(sent time.Time) {
	m.heartbeats.Observe(max(time.Since(sent), 0).Seconds())
}

// replaced counts a job placed again, and why.
func (m *routerMetrics) replaced(reason string) { m.replacements.WithLabelValues(reason).Inc() }

// stateCollector reads the router's gauges when scraped.
type stateCollector struct{ r *Router }

var (
	queueDepthDesc = prometheus.NewDesc("omnisync_router_queue_depth",
		"Jobs this router holds that wait for their inputs or for a node (awaiting_inputs + queued).", nil, nil)
	jobsDesc = prometheus.NewDesc("omnisync_router_jobs",
		"Jobs this router holds, by where they stand in its lifecycle (finished ones are held for finished_retention).", []string{"state"}, nil)
	onlineDesc = prometheus.NewDesc("omnisync_router_online",
		"Participants heard from within the heartbeat TTL, by role (node, validator).", []string{"role"}, nil)
)

func (stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- jobsDesc
	ch <- onlineDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.jobs))
	for _, j := range r.jobs {
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	count := make(map[string]int, len(jobStates))
	for _, j := range jobs {
		count[j.state()]++
	}
	ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(count["awaiting_inputs"]+count["queued"]))
	for _, s := range jobStates {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(count[s]), s)
	}
	online := r.onlineCounts()
	for _, role := range []string{protocol.RoleNode, protocol.RoleValidator} {
		ch <- prometheus.MustNewConstMetric(onlineDesc, prometheus.GaugeValue, float64(online[role]), role)
	}
}

// state is where the job stands in this router's lifecycle (one of jobStates), read from
// its latest event once its escrow and inputs are in. Of a redundant job, whose replicas
// move on their own, it is the state of the replica that moved last.
func (j *job) state() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.finished.IsZero():
		return "finished"
	case !j.escrowed:
		return "escrowing"
	}
	select {
	case <-j.ready:
	default:
		return "awaiting_inputs"
	}
	stage := ""
	if n := len(j.events); n > 0 {
		stage = j.events[n-1].Stage
	}
	switch stage {
	case "placed", "assigned":
		return "dispatching"
	case "running":
		return "running"
	case "computed", "verifying", "attested", "decided", "revealing", "stopped":
		return "verifying"
	case "settled", "refunded", "failed":
		return "finished"
	default: // escrowed, input, awaiting_inputs, queued, retry, resumed, taken_over
		return "queued"
	}
}
