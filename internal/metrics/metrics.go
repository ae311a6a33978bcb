// Package metrics is what every daemon's Prometheus metrics share: a registry of the
// daemon's own, never the process-wide default (a devnet and the tests run many daemons in
// one process, and two registering the same series in one registry would collide), and a
// small HTTP server for the daemons that serve no other (nodes and validators). The series
// themselves belong to the package that counts them.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry is a registry holding the Go runtime's and the process's collectors, ready
// for a daemon's own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Register registers every collector in reg, or a fresh registry that nothing serves when
// reg is nil (a daemon whose operator did not ask for metrics still counts them). A series
// already registered is an error: a second daemon of the same kind in one registry needs
// a label of its own (prometheus.WrapRegistererWith).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	return nil
}

// Handler serves g's metrics in Prometheus' text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// Serve serves g at /metrics on listen (port 0 picks a free one) until stop is called, and
// returns the address it bound. A busy port fails here, before the daemon starts.
func Serve(listen string, g prometheus.Gatherer, log *slog.Logger) (addr string, stop func() error, err error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w", listen, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(g))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return l.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}, nil
}
