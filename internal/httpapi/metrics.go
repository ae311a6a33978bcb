package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	omnimetrics "github.com/omnisync/omnisync/internal/metrics"
)

// metrics are the handler's own; each handler has its own registry (unless given one), so
// many servers can run in one process.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		reg = omnimetrics.NewRegistry()
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_http_requests_total",
			Help: "HTTP requests served, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "omnisync_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern (event streams last until the job is final).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if err := omnimetrics.Register(reg, m.requests, m.duration); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	m.handler = omnimetrics.Handler(reg)
	return m, nil
}

func (m *metrics) observe(route string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(elapsed.Seconds())
}
