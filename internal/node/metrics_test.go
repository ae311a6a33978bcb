package node

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
)

func TestMetricsCountJobsAndRejects(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	results := make(chan protocol.Result, 2)
	r.collectResults(t, string(keys.AddressOfKey(key)), results)
	reg := metrics.NewRegistry()
	rt := slowRuntime{release: make(chan struct{})}
	d, err := New(Options{
		Key: key, RouterURL: r.srv.WebSocketURL(), RootCAs: r.roots, Chain: &fakeChain{}, Runtime: rt,
		Hardware: ledger.Hardware{GPUModel: "test", GPUs: 1, VRAMMiB: 1024, TFLOPSMilli: 1000}, PricePerHour: 1, Stake: 500,
		Heartbeat: 50 * time.Millisecond, Metrics: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	a, _ := tensor.RandomInt8(4, 4, 1)
	if ack := r.dispatch(t, d.ID(), "job-0000000000000001", a, a); !ack.Accepted {
		t.Fatalf("first job declined: %s", ack.Error)
	}
	if ack := r.dispatch(t, d.ID(), "job-0000000000000002", a, a); ack.Accepted {
		t.Fatal("a second job on a one-GPU node was accepted")
	}
	metricstest.ScrapeGatherer(t, reg).Want(t, map[string]float64{
		`omnisync_node_jobs_running`:                                 1,
		`omnisync_node_gpus_held`:                                    1,
		`omnisync_node_gpus`:                                         1,
		`omnisync_node_dispatch_rejects_total{reason="no_free_gpu"}`: 1,
		`omnisync_node_jobs_total{outcome="computed"}`:               0,
	})

	close(rt.release)
	if res := <-results; res.Error != "" {
		t.Fatalf("result %+v", res)
	}
	odd, _ := tensor.RandomInt8(4, 5, 1) // 4×5 · 4×5 does not multiply
	if ack := r.dispatch(t, d.ID(), "job-0000000000000003", odd, odd); !ack.Accepted {
		t.Fatal(ack.Error)
	}
	if res := <-results; res.Error == "" {
		t.Fatal("a product that does not multiply succeeded")
	}
	// The result is published before the job leaves the running set.
	deadline := time.Now().Add(5 * time.Second)
	var got metricstest.Series
	for got = metricstest.ScrapeGatherer(t, reg); got[`omnisync_node_jobs_running`] != 0 && time.Now().Before(deadline); got = metricstest.ScrapeGatherer(t, reg) {
		time.Sleep(10 * time.Millisecond)
	}
	got.Want(t, map[string]float64{
		`omnisync_node_jobs_running`:                   0,
		`omnisync_node_jobs_total{outcome="computed"}`: 1,
		`omnisync_node_jobs_total{outcome="failed"}`:   1,
		`omnisync_node_job_seconds_count`:              2,
	})
}
