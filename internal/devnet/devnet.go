// Package devnet runs a whole OmniSync network in one process on one machine: a
// single-validator CometBFT chain running the OMNI ledger, an OmniRouter with its embedded
// NATS/JetStream server (nodes connect over WebSocket + TLS with certificates generated
// here), node daemons on the native tensor runtime, a validator, and the REST API. Nothing
// is mocked; everything listens on loopback.
//
// State lives under Options.Home, so starting again with the same home resumes the same
// chain: keys, genesis, blocks and balances survive.
package devnet

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/router"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/validator"
)

// ChainID of every devnet.
const ChainID = "omnisync-devnet"

// Options configure a devnet. Zero ports pick free ones.
type Options struct {
	Home       string
	RESTListen string // host:port of the REST API
	RPCListen  string // host:port of the CometBFT RPC
	P2PListen  string
	NodesPort  int // WebSocket+TLS port nodes connect to
	BlockTime  time.Duration
	Nodes      int
	// NodeRuntime chooses each node's runtime (index from 0); nil means native. Tests use
	// it to plant a dishonest node.
	NodeRuntime func(i int) runtime.Runtime
	Logger      *slog.Logger
	// Progress receives one line per start-up step; nil discards them.
	Progress func(string)
}

func (o *Options) setDefaults() error {
	if o.Home == "" {
		return errors.New("devnet: home is required")
	}
	for _, a := range []*string{&o.RESTListen, &o.RPCListen, &o.P2PListen} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	if o.BlockTime <= 0 {
		o.BlockTime = 250 * time.Millisecond
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return nil
}

// Devnet is a running network.
type Devnet struct {
	opts      Options
	Keys      Keys
	chain     *chain.Node
	router    *router.Router
	http      *http.Server
	restAddr  string
	nodes     []*node.Daemon
	validator *validator.Daemon
	closers   []func() error
}

// Start brings the whole network up; on failure it tears down what it started.
func Start(ctx context.Context, opts Options) (_ *Devnet, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	d := &Devnet{opts: opts}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	log := opts.Logger
	if err := os.MkdirAll(opts.Home, 0o700); err != nil {
		return nil, fmt.Errorf("devnet home: %w", err)
	}
	if d.Keys, err = loadOrCreateKeys(filepath.Join(opts.Home, "keys"), opts.Nodes); err != nil {
		return nil, fmt.Errorf("devnet keys: %w", err)
	}

	chainHome := filepath.Join(opts.Home, "chain")
	resumed := chain.HasGenesis(chainHome)
	if !resumed {
		vk, err := chain.InitHome(chainHome)
		if err != nil {
			return nil, err
		}
		vk.Name = "devnet-validator"
		vk.Power = int64(validatorStake / ledger.UomniPerOMNI)
		start := time.Now()
		g, err := devnetGenesis(d.Keys, vk.PubKey, start.Unix())
		if err != nil {
			return nil, err
		}
		if err := chain.WriteGenesis([]string{chainHome}, ChainID, start, []chain.ValidatorKey{vk}, g); err != nil {
			return nil, err
		}
	}
	d.chain, err = chain.New(chain.Options{
		Home: chainHome, RPCListen: opts.RPCListen, P2PListen: opts.P2PListen,
		BlockTime: opts.BlockTime, EmptyBlockInterval: 2 * time.Second, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	if err := d.chain.Start(ctx); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.chain.Close)
	height, _ := d.chain.Client().Height(ctx)
	if resumed {
		opts.Progress(fmt.Sprintf("chain %s resumed at height %d (CometBFT RPC %s)", ChainID, height, d.chain.RPCURL()))
	} else {
		opts.Progress(fmt.Sprintf("chain %s started from a new genesis (CometBFT RPC %s)", ChainID, d.chain.RPCURL()))
	}
	wallet := func(k []byte) *chain.Wallet { return chain.NewWallet(d.chain.Client(), k, ChainID) }

	tlsFiles, err := transport.EnsureTLS(filepath.Join(opts.Home, "tls"), nil)
	if err != nil {
		return nil, err
	}
	serverTLS, err := tlsFiles.ServerConfig()
	if err != nil {
		return nil, err
	}
	roots, err := tlsFiles.ClientRootCAs()
	if err != nil {
		return nil, err
	}
	if d.router, err = router.New(router.Options{
		Key: d.Keys.Router, Chain: wallet(d.Keys.Router), Host: "127.0.0.1", WSPort: opts.NodesPort,
		TLS: serverTLS, StoreDir: filepath.Join(opts.Home, "router"), HeartbeatTTL: 5 * time.Second,
		RightsInterval: opts.BlockTime, // a participant the chain withdraws is dropped within a block
		Logger:         log,
	}); err != nil {
		return nil, err
	}
	if err := d.router.Start(ctx); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.router.Close)
	opts.Progress("router listening for nodes at " + d.router.NodesURL() + " (WebSocket + TLS 1.3)")

	if err := d.startREST(); err != nil {
		return nil, err
	}
	opts.Progress("REST API at " + d.RESTURL() + "/v1")

	if err := d.startValidator(ctx, wallet, roots); err != nil {
		return nil, err
	}
	for i := range d.Keys.Nodes {
		if err := d.startNode(ctx, i, wallet, roots); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Devnet) startREST() error {
	// NewServer bounds connections, time and request-body memory (httpapi.Limits defaults).
	srv, err := httpapi.NewServer(httpapi.Options{
		Service: d.router, Logger: d.opts.Logger,
		Info: map[string]string{"chain_id": ChainID, "chain_rpc": d.chain.RPCURL(), "nodes_url": d.router.NodesURL()},
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", d.opts.RESTListen)
	if err != nil {
		return fmt.Errorf("REST API: listen on %s: %w", d.opts.RESTListen, err)
	}
	d.restAddr = l.Addr().String()
	d.http = srv
	go func() {
		if err := d.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.opts.Logger.Error("REST API stopped", "err", err)
		}
	}()
	d.closers = append(d.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return d.http.Shutdown(ctx)
	})
	return nil
}

func (d *Devnet) startValidator(ctx context.Context, wallet func([]byte) *chain.Wallet, roots *x509.CertPool) error {
	v, err := validator.New(validator.Options{
		Key: d.Keys.Validator, RouterURL: d.router.NodesURL(), RootCAs: roots,
		Chain: wallet(d.Keys.Validator), Heartbeat: time.Second, Logger: d.opts.Logger,
	})
	if err != nil {
		return err
	}
	if err := v.Start(ctx); err != nil {
		return err
	}
	d.validator = v
	d.closers = append(d.closers, v.Close)
	d.opts.Progress("validator " + keys.Address(v.ID()).Short() + " connected (Freivalds checks)")
	return nil
}

func (d *Devnet) startNode(ctx context.Context, i int, wallet func([]byte) *chain.Wallet, roots *x509.CertPool) error {
	var rt runtime.Runtime = runtime.Native{}
	if d.opts.NodeRuntime != nil {
		if custom := d.opts.NodeRuntime(i); custom != nil {
			rt = custom
		}
	}
	p := profileFor(i)
	n, err := node.New(node.Options{
		Key: d.Keys.Nodes[i], RouterURL: d.router.NodesURL(), RootCAs: roots, Chain: wallet(d.Keys.Nodes[i]),
		Runtime: rt, Hardware: p.hw, PricePerHour: p.price, Stake: nodeStake, Heartbeat: time.Second, Logger: d.opts.Logger,
	})
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	d.nodes = append(d.nodes, n)
	d.closers = append(d.closers, n.Close)
	d.opts.Progress(fmt.Sprintf("node %d %s online: %s, %s, bids %s OMNI/GPU-hour (%s runtime)",
		i+1, keys.Address(n.ID()).Short(), p.hw.GPUModel, p.hw.Region, ledger.FormatOMNI(p.price), rt.Name()))
	return nil
}

// RESTURL is the REST API's base URL (without /v1).
func (d *Devnet) RESTURL() string { return "http://" + d.restAddr }

// NodesURL is where nodes connect (wss://…).
func (d *Devnet) NodesURL() string { return d.router.NodesURL() }

// RPCURL is the CometBFT RPC address.
func (d *Devnet) RPCURL() string { return d.chain.RPCURL() }

// Chain is the in-process chain client.
func (d *Devnet) Chain() *chain.Client { return d.chain.Client() }

// NodeIDs lists the node daemons' ids in start order.
func (d *Devnet) NodeIDs() []string {
	ids := make([]string, len(d.nodes))
	for i, n := range d.nodes {
		ids[i] = n.ID()
	}
	return ids
}

// Close stops everything in reverse start order.
func (d *Devnet) Close() error {
	var errs []error
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}
