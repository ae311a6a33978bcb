package cli

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
)

// serveMetrics serves a node's or validator's Prometheus metrics at addr (its metrics_addr
// setting): the registerer for the daemon's Options.Metrics, the URL they are served at
// and how to stop serving. With addr "" nothing is served: reg is nil, url "" and stop a
// no-op.
func (g *globals) serveMetrics(addr string) (reg prometheus.Registerer, url string, stop func() error, err error) {
	if addr == "" {
		return nil, "", func() error { return nil }, nil
	}
	log, err := g.logger()
	if err != nil {
		return nil, "", nil, err
	}
	r := metrics.NewRegistry()
	bound, stop, err := metrics.Serve(addr, r, log)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w\n(choose another metrics_addr, or \"\" to serve none)", err)
	}
	return r, "http://" + bound + "/metrics", stop, nil
}

// printMetrics tells where a daemon's metrics are served, if anywhere.
func (g *globals) printMetrics(url string) {
	if url != "" {
		fmt.Fprintf(g.stdout, "  metrics   %s\n", url)
	}
}
