// Package metricstest scrapes a daemon's /metrics in tests, as Prometheus would.
package metricstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
)

// Series is one scrape: each sample's value by its name and labels as the text format
// writes them, labels in name order, e.g. `omnisync_router_placements_total{outcome="placed"}`.
type Series map[string]float64

// Scrape GETs url (a /metrics address) and parses what it serves.
func Scrape(t testing.TB, url string) Series {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return parse(t, string(body))
}

// ScrapeGatherer serves g the way a daemon does and scrapes it once.
func ScrapeGatherer(t testing.TB, g prometheus.Gatherer) Series {
	t.Helper()
	srv := httptest.NewServer(metrics.Handler(g))
	defer srv.Close()
	return Scrape(t, srv.URL+"/metrics")
}

func parse(t testing.TB, text string) Series {
	t.Helper()
	out := Series{}
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("unreadable sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// Want fails the test unless every named series has the value given.
func (s Series) Want(t testing.TB, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		got, ok := s[name]
		switch {
		case !ok:
			t.Errorf("no series %s", name)
		case got != v:
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
}
