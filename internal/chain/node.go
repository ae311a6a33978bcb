package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// Options configure one embedded validator.
type Options struct {
	Home string // CometBFT home: config/, data/ and the ledger's state/ directory
	// RPCListen and P2PListen are host:port; port 0 picks a free port.
	RPCListen string
	P2PListen string
	// Peers is a comma-separated list of id@host:port persistent peers.
	Peers string
	// BlockTime is CometBFT's commit timeout: the pause between blocks.
	BlockTime time.Duration
	// EmptyBlockInterval bounds how long the chain waits for txs before an empty block.
	EmptyBlockInterval time.Duration
	// ProposeTimeout is how long validators wait for a block proposal before moving to the
	// next round: what a stopped validator costs in each of its turns to propose. Zero
	// keeps CometBFT's 3 s, meant for the internet; on loopback far less is enough.
	ProposeTimeout time.Duration
	// SkipFirstBlockWait makes Start return as soon as consensus runs. By default Start
	// waits for the first block, which in a multi-validator network commits only once
	// validators with more than 2/3 of the voting power are online.
	SkipFirstBlockWait bool
	Logger             *slog.Logger
	// Metrics is where the ledger's Prometheus series are registered (metrics.go); nil
	// counts them in a registry nothing serves.
	Metrics prometheus.Registerer
	// PrometheusListen, when set (host:port; port 0 picks a free one), switches CometBFT's
	// own instrumentation on and serves it there at /metrics. Only one node of a process
	// can have it (see cometMetricsTaken); "" leaves it off.
	PrometheusListen string
}

func (o *Options) setDefaults() error {
	if o.Home == "" {
		return errors.New("chain: home is required")
	}
	if o.RPCListen == "" {
		o.RPCListen = "127.0.0.1:0"
	}
	if o.P2PListen == "" {
		o.P2PListen = "127.0.0.1:0"
	}
	if o.BlockTime <= 0 {
		o.BlockTime = time.Second
	}
	if o.EmptyBlockInterval <= 0 {
		o.EmptyBlockInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Node is an embedded CometBFT validator running the OMNI ledger.
type Node struct {
	opts     Options
	store    *store.Store
	node     *nm.Node
	client   *Client
	rpcAddr  string
	dbs      *dbTracker
	metrics  *chainMetrics
	promAddr string // where CometBFT serves its metrics; "" when it does not
	once     sync.Once
	stopping atomic.Bool
}

// New prepares a node from an initialised home (see InitHome and WriteGenesis).
func New(opts Options) (*Node, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	if !HasGenesis(opts.Home) {
		return nil, fmt.Errorf("chain: no genesis in %s: initialise the home first", opts.Home)
	}
	m, err := newChainMetrics(opts.Metrics)
	if err != nil {
		return nil, err
	}
	return &Node{opts: opts, metrics: m}, nil
}

// Start opens the state, starts consensus and the RPC server, and returns once the node
// runs. Close stops it.
func (n *Node) Start(ctx context.Context) (err error) {
	st, err := store.Open(filepath.Join(n.opts.Home, "data", "ledger"))
	if err != nil {
		return err
	}
	n.store = st
	defer func() {
		if err != nil {
			_ = st.Close()
		}
	}()
	app, err := ledger.New(st)
	if err != nil {
		return err
	}
	c := cfg.DefaultConfig().SetRoot(n.opts.Home)
	c.Moniker = filepath.Base(n.opts.Home)
	if n.rpcAddr, err = resolvePort(n.opts.RPCListen); err != nil {
		return err
	}
	p2pAddr, err := resolvePort(n.opts.P2PListen)
	if err != nil {
		return err
	}
	c.RPC.ListenAddress = "tcp://" + n.rpcAddr
	c.RPC.MaxSubscriptionsPerClient = 10_000 // every in-process BroadcastTxCommit is one subscription
	c.RPC.MaxSubscriptionClients = 1_000
	c.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	c.P2P.ListenAddress = "tcp://" + p2pAddr
	c.P2P.PersistentPeers = n.opts.Peers
	c.P2P.AllowDuplicateIP = true
	c.P2P.AddrBookStrict = false
	c.FilterPeers = true // see stoppingGate
	c.Consensus.TimeoutCommit = n.opts.BlockTime
	if n.opts.ProposeTimeout > 0 {
		c.Consensus.TimeoutPropose = n.opts.ProposeTimeout
	}
	c.Consensus.CreateEmptyBlocks = true
	c.Consensus.CreateEmptyBlocksInterval = n.opts.EmptyBlockInterval
	c.Mempool.Size = 50_000
	n.instrument(c)
	// goleveldb, like the ledger state: pebble logs WAL replays to stderr through the std logger.
	c.DBBackend = "goleveldb"
	cfg.EnsureRoot(n.opts.Home)

	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	nodeKey, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	n.dbs = &dbTracker{}
	gate := stoppingGate{&abciApp{app: app, store: st, log: n.opts.Logger, metrics: n.metrics}, &n.stopping}
	node, err := newNodeRecovering(ctx, c, pv, nodeKey, gate, n.dbs, newLogger(n.opts.Logger, &n.stopping))
	if err != nil {
		n.dbs.closeAll()
		return err
	}
	if err := node.Start(); err != nil {
		n.dbs.closeAll()
		return fmt.Errorf("start consensus: %w", err)
	}
	n.node = node
	n.client = &Client{rpc: rpclocal.New(node)}
	if n.opts.SkipFirstBlockWait {
		return nil
	}
	// Until the first block commits, genesis state is not readable and CheckTx would
	// reject everything; wait for it so callers can use the chain at once.
	if err := n.client.WaitForHeight(ctx, 1); err != nil {
		_ = n.Close()
		return err
	}
	return nil
}

// newNodeRecovering builds the CometBFT node, turning a panic during handshake/replay
// (e.g. an app hash that does not match the block store) into an error so the process can
// report it instead of dying.
func newNodeRecovering(ctx context.Context, c *cfg.Config, pv *privval.FilePV, nk *p2p.NodeKey, app abci.Application, dbs *dbTracker, logger cmtlog.Logger) (node *nm.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("chain: cannot start node (state and block store disagree?): %v", r)
		}
	}()
	node, err = nm.NewNode(ctx, c, pv, nk, proxy.NewLocalClientCreator(app),
		nm.DefaultGenesisDocProviderFunc(c), dbs.provider, nm.DefaultMetricsProvider(c.Instrumentation), logger)
	if err != nil {
		return nil, fmt.Errorf("chain: create node: %w", err)
	}
	return node, nil
}

// Client is the in-process RPC client.
func (n *Node) Client() *Client { return n.client }

// RPCURL is where the CometBFT RPC listens, e.g. http://127.0.0.1:26657.
func (n *Node) RPCURL() string { return "http://" + n.rpcAddr }

// P2PID is the node's peer id.
func (n *Node) P2PID() string { return string(n.node.NodeInfo().ID()) }

// ChainID is the chain id from the node's genesis.
func (n *Node) ChainID() string { return n.node.GenesisDoc().ChainID }

// NumPeers is how many peers the node is connected to.
func (n *Node) NumPeers() int { return n.node.Switch().Peers().Size() }

// Close stops consensus and releases every database. It is safe to call more than once.
func (n *Node) Close() error {
	var err error
	n.once.Do(func() {
		n.stopping.Store(true)
		if n.node != nil {
			if e := n.node.Stop(); e != nil {
				err = e
			}
			n.node.Wait()
			n.dbs.closeAfterStop()
		}
		if n.store != nil {
			if e := n.store.Close(); e != nil && err == nil {
				err = e
			}
		}
	})
	return err
}

// stoppingGate refuses peer connections once the node is stopping. A stopped CometBFT
// v1.0.1 switch still accepts an inbound connection but neither starts nor closes it
// ("Won't start a peer - switch is not running"); the validator that dialled in, as its
// peers do at once when this one stops, then holds a dead connection it believes live
// until the ping times out (about 100 s) and rejects this node's restart as a duplicate.
// With FilterPeers set, CometBFT asks the app about every new connection, and closes
// the ones refused.
type stoppingGate struct {
	*abciApp
	stopping *atomic.Bool
}

func (g stoppingGate) Query(ctx context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	if !strings.HasPrefix(req.Path, "/p2p/filter/") {
		return g.abciApp.Query(ctx, req)
	}
	if g.stopping.Load() {
		return &abci.QueryResponse{Code: 1, Log: "node is stopping"}, nil
	}
	return &abci.QueryResponse{}, nil
}

// dbTracker remembers the databases CometBFT opens and closes them itself, after the node
// has stopped. Node.Stop leaves the tx_index DB open, which makes a restart in the same
// process fail with "lock held by current process"; and it closes the block store while
// a consensus reactor goroutine per peer may still read it (queryMaj23Routine checks that
// the node runs, then reads), which panics the process with "leveldb: closed". So the
// node's own Close of a database is ignored, closeAll closes every one a moment after the
// node has stopped, and a read after that finds nothing rather than an error: the block
// store panics on any error it reads, and a reactor goroutine that checked the node ran
// just before it stopped can be held off the CPU for longer than any grace (seen under
// the race detector on two busy cores, 2026-12-01).
type dbTracker struct {
	mu     sync.RWMutex // held for reading around every read of a database, to close them
	closed bool
	dbs    map[string]dbm.DB
}

// laterClosedDB is a database whose Close waits for the tracker's, and whose reads after
// it find nothing.
type laterClosedDB struct {
	dbm.DB
	t *dbTracker
}

func (laterClosedDB) Close() error { return nil }

func (d laterClosedDB) Get(key []byte) ([]byte, error) {
	d.t.mu.RLock()
	defer d.t.mu.RUnlock()
	if d.t.closed {
		return nil, nil
	}
	return d.DB.Get(key)
}

func (d laterClosedDB) Has(key []byte) (bool, error) {
	d.t.mu.RLock()
	defer d.t.mu.RUnlock()
	if d.t.closed {
		return false, nil
	}
	return d.DB.Has(key)
}

// closeGrace is how long after the node stopped its databases stay open, for reactor
// goroutines that had checked the node ran just before it stopped.
const closeGrace = 200 * time.Millisecond

func (t *dbTracker) provider(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dbs == nil {
		t.dbs = map[string]dbm.DB{}
	}
	t.dbs[ctx.ID] = db
	return laterClosedDB{DB: db, t: t}, nil
}

// closeAfterStop closes every database a moment after the node stopped (see dbTracker).
func (t *dbTracker) closeAfterStop() {
	time.Sleep(closeGrace)
	t.closeAll()
}

// closeAll closes everything; used when the node never started.
func (t *dbTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, db := range t.dbs {
		_ = db.Close()
	}
}

// resolvePort replaces a 0 port with a free one (listenFree).
func resolvePort(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", hostport, err)
	}
	if port != "0" {
		return hostport, nil
	}
	l, err := listenFree(host)
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
