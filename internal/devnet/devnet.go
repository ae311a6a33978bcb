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
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/router"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/docker"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/validator"
	"github.com/omnisync/omnisync/internal/verify"
	"github.com/omnisync/omnisync/internal/zk"
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
	// NodeOptions, when set, edits node i's options last, before its daemon is made: a
	// test's seam to plant a participant that lies in any way a node's operator could (its
	// declared hardware, its container runtime, what it sends the chain).
	NodeOptions func(i int, o *node.Options)
	// Verifiers runs that many validator daemons besides the devnet's own, each with its own
	// key, funded in a new devnet's genesis and staked at the minimum validator stake once
	// the chain is up, so that a committee can have members that disagree. They run no
	// consensus node: with Verifiers > 0 the devnet's consensus validator holds 100 times
	// their stake together (consensusStake), and their CometBFT power stays far below the
	// third that would halt the chain (a home made without them cannot add them: nothing
	// funds their stake). Zero, the default, runs the one validator.
	Verifiers int
	// ValidatorOptions, when set, edits validator i's options last, before its daemon is
	// made (0 is the consensus validator, 1 to Verifiers the others): a test's seam to plant
	// a validator that lies as its operator could, in what it sends the chain.
	ValidatorOptions func(i int, o *validator.Options)
	// Docker gives every node a Docker runtime for container jobs, each its own instance
	// on the local engine; Start fails if none answers (ProbeDocker tells beforehand).
	Docker bool
	// StrictSigning has the router, validator and nodes send one tx per key per block,
	// as before pipelined signing (a benchmark's baseline).
	StrictSigning bool
	// AssignWindow is the router's (router.Options.AssignWindow): negative sends every
	// assignment in its own tx (a benchmark's baseline for batched assignments).
	AssignWindow time.Duration
	// MaxActiveJobs is the router's (router.Options.MaxActiveJobs); 0 is its default.
	MaxActiveJobs int
	// AttestWindow is the validator's (validator.Options.AttestWindow) and CommitWindow
	// every node's (node.Options.CommitWindow): negative sends every attestation or
	// result commitment in its own tx (a benchmark's baseline for batching them).
	AttestWindow time.Duration
	CommitWindow time.Duration
	// Params, when set, edits the chain's parameters in a new devnet's genesis (a test's
	// seam for the audit rate, say); a devnet resumed from its home keeps its chain's.
	Params func(*ledger.Params)
	// ConsumerFunds is what a new devnet's genesis gives its consumer (d.Keys.Consumer),
	// in uomni, from the public sale's allocation; 0 is 10,000 OMNI. A load that funds
	// more consumers, each with a job budget for every job it may have open, needs more.
	ConsumerFunds uint64
	// Capacity is the validator's proof-of-capacity checker (validator.Options.Capacity):
	// off unless Capacity.Every > 0. Its seeds mix in the chain's latest block hash.
	Capacity validator.CapacityOptions
	// GPU, when set, is where every validator computes the products of its int8 checks
	// (validator.Options.GPU): a cuda.Device, say. Nil checks on the CPU.
	GPU interface {
		verify.Accelerator
		Name() string
	}
	Logger *slog.Logger
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
	opts       Options
	Keys       Keys
	chain      *chain.Node
	router     *RouterStack
	nodes      []*node.Daemon
	docker     *docker.Runtime     // the first node's, when nodes run containers: builds demo images
	validators []*validator.Daemon // the consensus validator's first, then the verifiers'
	// zkKeys are the Groth16 keys every node proves zk jobs with, made on first use of a
	// shape and kept under Home/zk-keys, the directory the validator reads verifying keys
	// from: the devnet's single-party setup (see zk.Keys on trust).
	zkKeys  *zk.KeyCache
	closers []func() error
	// metrics holds every daemon's series, served with the REST API at /metrics: the
	// chain's and the router's as they are, each node's labelled node=ID and the
	// validator's validator=ID.
	metrics *prometheus.Registry
}

// Start brings the whole network up; on failure it tears down what it started.
func Start(ctx context.Context, opts Options) (_ *Devnet, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	d := &Devnet{opts: opts, metrics: metrics.NewRegistry(), zkKeys: zk.NewKeyCache(zkKeyDir(opts.Home))}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	log := opts.Logger
	if err := os.MkdirAll(opts.Home, 0o700); err != nil {
		return nil, fmt.Errorf("devnet home: %w", err)
	}
	if d.Keys, err = loadOrCreateKeys(filepath.Join(opts.Home, "keys"), opts.Nodes, opts.Verifiers); err != nil {
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
		vk.Power = int64(consensusStake(opts.Verifiers) / ledger.UomniPerOMNI)
		start := time.Now()
		g, err := devnetGenesis(d.Keys, vk.PubKey, start.Unix(), opts.ConsumerFunds)
		if err != nil {
			return nil, err
		}
		if opts.Params != nil {
			opts.Params(&g.Params)
		}
		if err := chain.WriteGenesis([]string{chainHome}, ChainID, start, []chain.ValidatorKey{vk}, g); err != nil {
			return nil, err
		}
	}
	d.chain, err = chain.New(chain.Options{
		Home: chainHome, RPCListen: opts.RPCListen, P2PListen: opts.P2PListen,
		BlockTime: opts.BlockTime, EmptyBlockInterval: 2 * time.Second, Logger: log, Metrics: d.metrics,
	})
	if err != nil {
		return nil, err
	}
	if err := asRole("chain", func() error { return d.chain.Start(ctx) }); err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.chain.Close)
	height, _ := d.chain.Client().Height(ctx)
	if resumed {
		opts.Progress(fmt.Sprintf("chain %s resumed at height %d (CometBFT RPC %s)", ChainID, height, d.chain.RPCURL()))
	} else {
		opts.Progress(fmt.Sprintf("chain %s started from a new genesis (CometBFT RPC %s)", ChainID, d.chain.RPCURL()))
	}
	wallet := func(k []byte) *chain.Wallet {
		return chain.NewWalletWith(d.chain.Client(), k, ChainID, chain.SignerOptions{Strict: opts.StrictSigning})
	}
	// The router admits only staked validators.
	if err := d.stakeVerifiers(ctx, wallet); err != nil {
		return nil, err
	}

	var rs *RouterStack
	err = asRole("router", func() (err error) {
		rs, err = StartRouter(ctx, RouterOptions{
			Router: router.Options{
				Key: d.Keys.Router, Chain: wallet(d.Keys.Router), Host: "127.0.0.1", WSPort: opts.NodesPort,
				StoreDir: filepath.Join(opts.Home, "router"), HeartbeatTTL: 5 * time.Second,
				RightsInterval: opts.BlockTime, // a participant the chain withdraws is dropped within a block
				AssignWindow:   opts.AssignWindow, MaxActiveJobs: opts.MaxActiveJobs,
				Logger: log,
			},
			TLSDir: filepath.Join(opts.Home, "tls"), RESTListen: opts.RESTListen,
			Info: map[string]string{"chain_id": ChainID, "chain_rpc": d.chain.RPCURL()}, Logger: log,
			Blocks: d.chain.Client().RecentBlocks, Metrics: d.metrics,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	d.router = rs
	d.closers = append(d.closers, rs.Close)
	opts.Progress("router listening for nodes at " + rs.Router.NodesURL() + " (WebSocket + TLS 1.3)")
	opts.Progress("REST API at " + d.RESTURL() + "/v1")

	for i, k := range append([]ed25519.PrivateKey{d.Keys.Validator}, d.Keys.Verifiers...) {
		if err := asRole("validator", func() error { return d.startValidator(ctx, i, k, wallet, rs.RootCAs) }); err != nil {
			return nil, err
		}
	}
	for i := range d.Keys.Nodes {
		if err := asRole("node", func() error { return d.startNode(ctx, i, wallet, rs.RootCAs) }); err != nil {
			return nil, err
		}
	}
	if err := d.awaitNodesOnline(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// asRole runs f with its goroutine labelled role=<role>, which every goroutine f starts
// inherits (a daemon's loops, its NATS connection's, CometBFT's, the REST server's), so a
// CPU profile of a devnet splits by role: `go tool pprof -tags` shows what the router's
// host (router, NATS server, REST API) and the chain spend apart from the nodes',
// validators' and consumers' (unlabelled). Work one role does on another's goroutine
// counts for the caller: a node's in-process CheckTx counts as the node's.
func asRole(role string, f func() error) (err error) {
	pprof.Do(context.Background(), pprof.Labels("role", role), func(context.Context) { err = f() })
	return err
}

// awaitNodesOnline waits until the router has heard every node's heartbeat: a node's
// Start returns once its first heartbeat is sent, and a job submitted before the router
// took it in would find fewer nodes than the devnet runs.
func (d *Devnet) awaitNodesOnline(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		nodes, err := d.router.Router.Nodes(ctx)
		online := 0
		for _, n := range nodes {
			if n.Online && slices.Contains(d.NodeIDs(), n.ID) {
				online++
			}
		}
		if err == nil && online == len(d.nodes) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d nodes online in the router: %w", online, len(d.nodes), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stakeVerifiers stakes each extra validator (Options.Verifiers) not yet staked, together,
// with a consensus key no node runs; a resumed devnet's are staked already.
func (d *Devnet) stakeVerifiers(ctx context.Context, wallet func([]byte) *chain.Wallet) error {
	if len(d.Keys.Verifiers) == 0 {
		return nil
	}
	var vals []ledger.Validator
	if err := d.chain.Client().Query(ctx, "validators", &vals); err != nil {
		return fmt.Errorf("verifiers: %w", err)
	}
	errs := make([]error, len(d.Keys.Verifiers))
	var wg sync.WaitGroup
	for i, k := range d.Keys.Verifiers {
		if slices.ContainsFunc(vals, func(v ledger.Validator) bool { return v.Address == keys.AddressOfKey(k) }) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stake := &ledger.MsgStake{Role: ledger.RoleValidator, Amount: validatorStake, PubKey: verifierConsensusKey(k)}
			if _, err := wallet(k).Send(ctx, ledger.Msg{Stake: stake}); err != nil {
				errs[i] = fmt.Errorf("verifier %d: stake: %w", i+1, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// startValidator starts validator i with key: the consensus validator's (i = 0) or a
// verifier's.
func (d *Devnet) startValidator(ctx context.Context, i int, key ed25519.PrivateKey, wallet func([]byte) *chain.Wallet, roots *x509.CertPool) error {
	opts := validator.Options{
		Key: key, RouterURL: d.router.Router.NodesURL(), RootCAs: roots,
		Chain: wallet(key), AttestWindow: d.opts.AttestWindow, Heartbeat: time.Second, Logger: d.opts.Logger,
		Metrics: d.labelled("validator", key),
		// Its own cache on the nodes' directory: it reads the verifying keys they stored,
		// as a validator on another machine reads the ones distributed to it.
		ZKKeys:   zk.NewKeyCache(zkKeyDir(d.opts.Home)),
		Capacity: d.opts.Capacity,
	}
	if opts.Capacity.BlockHash == nil {
		opts.Capacity.BlockHash = d.latestBlockHash
	}
	checks := "Freivalds checks"
	if d.opts.GPU != nil {
		opts.GPU, checks = d.opts.GPU, "Freivalds checks on "+d.opts.GPU.Name()
	}
	if d.opts.Docker {
		// The same runtime as the nodes', so that it can audit the container jobs they run.
		dr, err := d.dockerFor(ctx, string(keys.AddressOfKey(key)))
		if err != nil {
			return fmt.Errorf("validator: %w", err)
		}
		d.closers = append(d.closers, dr.Close)
		opts.Containers, checks = runtime.Docker(dr), checks+", container audits in docker"
	}
	if d.opts.ValidatorOptions != nil {
		d.opts.ValidatorOptions(i, &opts)
	}
	v, err := validator.New(opts)
	if err != nil {
		return err
	}
	if err := v.Start(ctx); err != nil {
		return err
	}
	d.validators = append(d.validators, v)
	d.closers = append(d.closers, v.Close)
	name := "validator"
	if i > 0 {
		name = fmt.Sprintf("verifier %d", i)
	}
	d.opts.Progress(name + " " + keys.Address(v.ID()).Short() + " connected (" + checks + ")")
	return nil
}

func (d *Devnet) startNode(ctx context.Context, i int, wallet func([]byte) *chain.Wallet, roots *x509.CertPool) error {
	var rt runtime.Runtime = runtime.Native{ZK: d.zkKeys}
	if d.opts.NodeRuntime != nil {
		if custom := d.opts.NodeRuntime(i); custom != nil {
			rt = custom
		}
	}
	p := profileFor(i)
	opts := node.Options{
		Key: d.Keys.Nodes[i], RouterURL: d.router.Router.NodesURL(), RootCAs: roots, Chain: wallet(d.Keys.Nodes[i]),
		Runtime: rt, Hardware: p.hw, PricePerHour: p.price, Stake: nodeStake, Heartbeat: time.Second, Logger: d.opts.Logger,
		Metrics: d.labelled("node", d.Keys.Nodes[i]), CommitWindow: d.opts.CommitWindow,
	}
	containers := ""
	if d.opts.Docker {
		dr, err := d.dockerFor(ctx, string(keys.AddressOfKey(d.Keys.Nodes[i])))
		if err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		d.closers = append(d.closers, dr.Close)
		if d.docker == nil {
			d.docker = dr
		}
		opts.Containers, containers = runtime.Docker(dr), ", docker containers"
	}
	if d.opts.NodeOptions != nil {
		d.opts.NodeOptions(i, &opts)
	}
	n, err := node.New(opts)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	d.nodes = append(d.nodes, n)
	d.closers = append(d.closers, n.Close)
	d.opts.Progress(fmt.Sprintf("node %d %s online: %s, %s, bids %s OMNI/GPU-hour (%s runtime%s)",
		i+1, keys.Address(n.ID()).Short(), opts.Hardware.GPUModel, opts.Hardware.Region, ledger.FormatOMNI(opts.PricePerHour), opts.Runtime.Name(), containers))
	return nil
}

// latestBlockHash is the hash of the chain's latest block.
func (d *Devnet) latestBlockHash(ctx context.Context) ([]byte, error) {
	blocks, err := d.chain.Client().RecentBlocks(ctx, 1)
	if err != nil || len(blocks) == 0 {
		return nil, fmt.Errorf("latest block: %v", err)
	}
	return hex.DecodeString(blocks[0].Hash)
}

// zkKeyDir is where a devnet keeps its zk keys.
func zkKeyDir(home string) string { return filepath.Join(home, "zk-keys") }

// labelled registers a daemon's series in the devnet's registry under label=its address,
// so that several daemons of a kind can share it.
func (d *Devnet) labelled(label string, key ed25519.PrivateKey) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{label: string(keys.AddressOfKey(key))}, d.metrics)
}

// SimulatedProfile is the hardware the devnet's i-th node declares and its bid in uomni per
// GPU-hour. `omnisync node register --gpu-tier declared` declares the first one unless its
// settings say otherwise.
func SimulatedProfile(i int) (ledger.Hardware, uint64) {
	p := profileFor(i)
	return p.hw, p.price
}

// RESTURL is the REST API's base URL (without /v1).
func (d *Devnet) RESTURL() string { return d.router.RESTURL() }

// NodesURL is where nodes connect (wss://…).
func (d *Devnet) NodesURL() string { return d.router.Router.NodesURL() }

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

// RouterOptions configure StartRouter: a router, its TLS material and its REST API, the
// wiring `omnisync router run` and the devnet share.
type RouterOptions struct {
	// Router is the router's Options but for TLS, which StartRouter makes from TLSDir.
	Router router.Options
	// TLSDir holds the CA and server certificate (made if missing; see transport.EnsureTLS)
	// and TLSHosts the names and addresses nodes dial, besides loopback.
	TLSDir   string
	TLSHosts []string
	// RESTListen is the REST API's host:port (port 0 picks a free one); Info is shown at
	// /v1/health beside the nodes URL.
	RESTListen string
	Info       map[string]string
	// Blocks, when set, serves the chain's latest blocks at GET /v1/chain/blocks.
	Blocks func(ctx context.Context, limit int) ([]api.Block, error)
	Logger *slog.Logger
	// Metrics is the registry the router's series go in and the REST API serves at
	// /metrics; nil makes one (metrics.NewRegistry).
	Metrics *prometheus.Registry
}

// RouterStack is a running router with its REST API.
type RouterStack struct {
	Router  *router.Router
	TLS     *transport.TLSFiles
	RootCAs *x509.CertPool // the CA nodes and validators trust
	rest    *restServer
	closers []func() error
}

// StartRouter makes the TLS material if missing, starts the router and serves its REST API.
// Both ports are taken before anything starts, so a busy one fails at once with an error
// wrapping syscall.EADDRINUSE rather than after the NATS server's start-up timeout.
func StartRouter(ctx context.Context, o RouterOptions) (_ *RouterStack, err error) {
	s := &RouterStack{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if o.Router.WSPort != 0 {
		addr := net.JoinHostPort(o.Router.Host, strconv.Itoa(o.Router.WSPort))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("router nodes port: %w", err)
		}
		_ = l.Close()
	}
	rest, err := listenREST(o.RESTListen)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, rest.listener.Close)
	if s.TLS, err = transport.EnsureTLS(o.TLSDir, o.TLSHosts); err != nil {
		return nil, err
	}
	if o.Router.TLS, err = s.TLS.ServerConfig(); err != nil {
		return nil, err
	}
	if c := o.Router.Cluster; c != nil && c.TLS == nil {
		cluster := *c
		if cluster.TLS, err = s.TLS.ClusterConfig(); err != nil {
			return nil, err
		}
		o.Router.Cluster = &cluster
	}
	if s.RootCAs, err = s.TLS.ClientRootCAs(); err != nil {
		return nil, err
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewRegistry()
	}
	o.Router.Metrics = o.Metrics
	if s.Router, err = router.New(o.Router); err != nil {
		return nil, err
	}
	if err := s.Router.Start(ctx); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Router.Close)
	info := maps.Clone(o.Info)
	if info == nil {
		info = map[string]string{}
	}
	info["nodes_url"] = s.Router.NodesURL()
	if err := rest.serve(httpapi.Options{Service: s.Router, Logger: o.Logger, Info: info, Live: s.Router.Health, Blocks: o.Blocks, Metrics: o.Metrics}, o.Logger); err != nil {
		return nil, err
	}
	s.rest = rest
	s.closers = append(s.closers, rest.stop)
	return s, nil
}

// RESTURL is the REST API's base URL (without /v1).
func (s *RouterStack) RESTURL() string { return "http://" + s.rest.addr() }

// Close stops the REST API, then the router.
func (s *RouterStack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// ServeREST serves a REST API on listen (port 0 picks a free one) until stop is called,
// and returns the address it bound: what `omnisync chain start` runs beside its chain node.
func ServeREST(listen string, opts httpapi.Options) (addr string, stop func() error, err error) {
	rest, err := listenREST(listen)
	if err != nil {
		return "", nil, err
	}
	if err := rest.serve(opts, opts.Logger); err != nil {
		_ = rest.listener.Close()
		return "", nil, err
	}
	return rest.addr(), rest.stop, nil
}

// restServer is the REST API's listener and, once it serves, its server.
type restServer struct {
	listener net.Listener
	http     *http.Server
}

func listenREST(listen string) (*restServer, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("REST API: listen on %s: %w", listen, err)
	}
	return &restServer{listener: l}, nil
}

func (r *restServer) addr() string { return r.listener.Addr().String() }

// serve starts serving; NewServer bounds connections, time and request-body memory
// (httpapi.Limits defaults).
func (r *restServer) serve(opts httpapi.Options, log *slog.Logger) error {
	srv, err := httpapi.NewServer(opts)
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r.http = srv
	go func() {
		if err := srv.Serve(r.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("REST API stopped", "err", err)
		}
	}()
	return nil
}

func (r *restServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.http.Shutdown(ctx)
}
