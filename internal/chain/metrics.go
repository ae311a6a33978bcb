package chain

import (
	"fmt"
	"net"
	"sync/atomic"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
)

// chainMetrics are the ledger's Prometheus series, counted as the ABCI app finalizes
// blocks (Options.Metrics). CometBFT's own (consensus, p2p, mempool) are served apart,
// on Options.PrometheusListen.
type chainMetrics struct {
	height   prometheus.Gauge
	txs      *prometheus.CounterVec // by kind, result
	blockTxs prometheus.Histogram
}

func newChainMetrics(reg prometheus.Registerer) (*chainMetrics, error) {
	m := &chainMetrics{
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "omnisync_chain_height",
			Help: "Height of the last block this node committed.",
		}),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "omnisync_chain_txs_total",
			Help: "Transactions in finalized blocks, by message kind (undecodable when the tx did not decode) and result (ok, rejected). Per block: divide its rate by omnisync_chain_block_txs_count's.",
		}, []string{"kind", "result"}),
		blockTxs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "omnisync_chain_block_txs",
			Help:    "Transactions per finalized block.",
			Buckets: []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000},
		}),
	}
	if err := metrics.Register(reg, m.height, m.txs, m.blockTxs); err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	return m, nil
}

// finalized counts a finalized block's transactions.
func (m *chainMetrics) finalized(results []ledger.TxResult) {
	if m == nil {
		return
	}
	m.blockTxs.Observe(float64(len(results)))
	for _, r := range results {
		kind, result := r.Kind, "ok"
		if kind == "" {
			kind = "undecodable"
		}
		if r.Code != ledger.CodeOK {
			result = "rejected"
		}
		m.txs.WithLabelValues(kind, result).Inc()
	}
}

// committed records the height a commit reached.
func (m *chainMetrics) committed(height int64) {
	if m != nil {
		m.height.Set(float64(height))
	}
}

// cometMetricsTaken is set by the first node of the process that switches CometBFT's
// instrumentation on. CometBFT registers its series in the process-wide default registry,
// so a second node in one process (tests, a devnet) would collide there and panic: it runs
// without them, and says so.
var cometMetricsTaken atomic.Bool

// instrument switches CometBFT's instrumentation on in c when Options.PrometheusListen
// asks for it and no other node of the process has it. A busy port leaves it off with a
// warning: a validator is not stopped for want of its metrics.
func (n *Node) instrument(c *cfg.Config) {
	c.Instrumentation.Prometheus = false
	listen := n.opts.PrometheusListen
	if listen == "" {
		return
	}
	if !cometMetricsTaken.CompareAndSwap(false, true) {
		n.opts.Logger.Warn("CometBFT metrics are off: another chain node of this process has them", "prometheus_listen", listen)
		return
	}
	addr, err := resolvePort(listen)
	if err == nil {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			_ = l.Close()
		}
	}
	if err != nil {
		cometMetricsTaken.Store(false)
		n.opts.Logger.Warn("CometBFT metrics are off: cannot listen", "prometheus_listen", listen, "err", err)
		return
	}
	c.Instrumentation.Prometheus, c.Instrumentation.PrometheusListenAddr = true, addr
	n.promAddr = addr
}

// PrometheusURL is where CometBFT serves its own metrics, e.g.
// http://127.0.0.1:26660/metrics; "" when its instrumentation is off.
func (n *Node) PrometheusURL() string {
	if n.promAddr == "" {
		return ""
	}
	return "http://" + n.promAddr + "/metrics"
}
