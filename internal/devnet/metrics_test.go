package devnet

import (
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
)

// wantDemoMetrics checks the devnet's /metrics after its one demo job settled: every
// daemon's series in the one registry, a node's and the validator's under their labels.
func wantDemoMetrics(t *testing.T, d *Devnet) {
	t.Helper()
	validator := string(keys.AddressOfKey(d.Keys.Validator))
	want := map[string]float64{
		`omnisync_router_placements_total{outcome="placed"}`:                            1,
		`omnisync_router_online{role="node"}`:                                           float64(len(d.NodeIDs())),
		`omnisync_router_online{role="validator"}`:                                      1,
		`omnisync_router_jobs{state="finished"}`:                                        1,
		`omnisync_router_queue_depth`:                                                   0,
		`omnisync_chain_txs_total{kind="create_job",result="ok"}`:                       1,
		`omnisync_chain_txs_total{kind="assign_job",result="ok"}`:                       1,
		`omnisync_chain_txs_total{kind="commit_result",result="ok"}`:                    1,
		`omnisync_chain_txs_total{kind="attest",result="ok"}`:                           1,
		`omnisync_validator_checks_total{validator="` + validator + `",verdict="pass"}`: 1,
	}
	var got metricstest.Series
	var computed float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, computed = metricstest.Scrape(t, d.RESTURL()+"/metrics"), 0
		for _, id := range d.NodeIDs() {
			computed += got[`omnisync_node_jobs_total{node="`+id+`",outcome="computed"}`]
		}
		settled := computed == 1
		for k, v := range want {
			settled = settled && got[k] == v
		}
		if settled || time.Now().After(deadline) {
			break
		}
	}
	got.Want(t, want)
	if computed != 1 {
		t.Errorf("the nodes computed %v jobs, want 1", computed)
	}
	if got[`omnisync_chain_height`] < 1 || got[`omnisync_chain_block_txs_count`] < 1 {
		t.Errorf("chain height %v, %v blocks counted", got[`omnisync_chain_height`], got[`omnisync_chain_block_txs_count`])
	}
}
