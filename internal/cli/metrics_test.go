package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/metrics/metricstest"
)

// wantDaemonMetrics scrapes each daemon's /metrics, where its started event says, once a
// job has settled through them.
func wantDaemonMetrics(t *testing.T, chainEv chainEvent, routerEv, nodeEv, valEv daemonEvent) {
	t.Helper()
	if nodeEv.MetricsURL == "" || valEv.MetricsURL == "" {
		t.Fatalf("metrics_addr was set, yet the node's metrics URL is %q and the validator's %q", nodeEv.MetricsURL, valEv.MetricsURL)
	}
	rest := func(u string) string { return strings.TrimSuffix(u, "/v1") + "/metrics" }
	scrapes := []struct {
		url  string
		want map[string]float64
	}{
		{rest(routerEv.RESTURL), map[string]float64{`omnisync_router_placements_total{outcome="placed"}`: 1, `omnisync_router_online{role="node"}`: 1}},
		{rest(chainEv.RESTURL), map[string]float64{`omnisync_chain_txs_total{kind="attest",result="ok"}`: 1}},
		{nodeEv.MetricsURL, map[string]float64{`omnisync_node_jobs_total{outcome="computed"}`: 1, `omnisync_node_jobs_running`: 0}},
		{valEv.MetricsURL, map[string]float64{`omnisync_validator_checks_total{verdict="pass"}`: 1}},
	}
	for _, s := range scrapes {
		// The validator counts its check just after its attestation commits.
		got := metricstest.Scrape(t, s.url)
		for deadline := time.Now().Add(5 * time.Second); !has(got, s.want) && time.Now().Before(deadline); got = metricstest.Scrape(t, s.url) {
			time.Sleep(50 * time.Millisecond)
		}
		got.Want(t, s.want)
	}
	// CometBFT's registry is the process's: the first chain node of the tests has it.
	if u := chainEv.CometBFTMetricsURL; u != "" {
		if got := metricstest.Scrape(t, u); len(got) == 0 {
			t.Errorf("CometBFT serves no metrics at %s", u)
		}
	}
}

func has(got metricstest.Series, want map[string]float64) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
