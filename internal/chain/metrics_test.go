package chain

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
)

func TestMetricsCountFinalizedTxsByKind(t *testing.T) {
	home := t.TempDir()
	alice, bob := testKey(1), testKey(2)
	initSingle(t, home, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cometTaken := cometMetricsTaken.Load() // by an earlier test of this process (-count)
	reg := metrics.NewRegistry()
	n, err := New(Options{Home: home, BlockTime: 100 * time.Millisecond, EmptyBlockInterval: 200 * time.Millisecond,
		Metrics: reg, PrometheusListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	res, err := NewSigner(n.Client(), alice, "omnisync-chaintest").Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(bob), Amount: ledger.UomniPerOMNI}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Client().WaitForHeight(ctx, res.Height+1); err != nil { // committed, and counted
		t.Fatal(err)
	}

	got := metricstest.ScrapeGatherer(t, reg)
	got.Want(t, map[string]float64{
		`omnisync_chain_txs_total{kind="transfer",result="ok"}`: 1,
		`omnisync_chain_block_txs_sum`:                          1,
	})
	if h := got[`omnisync_chain_height`]; h < float64(res.Height) {
		t.Errorf("omnisync_chain_height = %v, want at least %d", h, res.Height)
	}
	if b := got[`omnisync_chain_block_txs_count`]; b < float64(res.Height) {
		t.Errorf("%v blocks counted, want at least %d", b, res.Height)
	}

	if cometTaken {
		t.Log("CometBFT's metrics belong to an earlier node of this process; not checked")
		return
	}
	if n.PrometheusURL() == "" {
		t.Fatal("CometBFT's instrumentation is off")
	}
	comet := metricstest.Scrape(t, n.PrometheusURL())
	if h := comet[`cometbft_consensus_height{chain_id="omnisync-chaintest"}`]; h < float64(res.Height) {
		t.Errorf("cometbft_consensus_height = %v, want at least %d", h, res.Height)
	}
}
