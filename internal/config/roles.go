package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/router"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/validator"
	"github.com/omnisync/omnisync/internal/verify"
	"github.com/omnisync/omnisync/internal/zk"
)

// The defaults every role shares with the wallet and chain commands, and the names
// those commands already read them from.
const (
	DefaultChainRPC = "http://127.0.0.1:26657"
	DefaultREST     = "127.0.0.1:7070"
	DefaultNodes    = "0.0.0.0:7422"
	DefaultCluster  = "0.0.0.0:7244"
	EnvWalletDir    = "OMNISYNC_WALLET_DIR"
	EnvChainRPC     = "OMNISYNC_RPC"
)

// The shape of each table: a field's `toml` tag is its key; its environment variable is
// OMNISYNC_<ROLE>_<KEY> and its flag --<key-with-dashes> unless `env` or `flag` say
// otherwise; `help` is the flag's help. Field types: string, int, int64, float64,
// []string, Duration, Amount.

// Chain configures `omnisync chain start`: one validator (or full node) of a network made
// by `chain init`, whose ports and peers are in its home, plus the REST API it serves.
type Chain struct {
	Home                string   `toml:"home" help:"the validator's home, DIR/validator-K from chain init"`
	RESTAddr            string   `toml:"rest_addr" help:"REST API listen address (\"\" serves none; port 0 picks a free one); it serves the ledger's metrics at /metrics"`
	StatusInterval      Duration `toml:"status_interval" help:"how often to report height and peers"`
	CometBFTMetricsAddr string   `toml:"cometbft_metrics_addr" help:"where CometBFT serves its own metrics (consensus, p2p, mempool) at /metrics: host:port, \"auto\" (127.0.0.1 at the RPC port + 3: 26660 for validator-1, CometBFT's usual port) or \"\" for none"`
}

// MetricsAuto is cometbft_metrics_addr's default: see Chain.CometBFTMetricsListen.
const MetricsAuto = "auto"

func defaultChain() Chain {
	return Chain{RESTAddr: DefaultREST, StatusInterval: D(10 * time.Second), CometBFTMetricsAddr: MetricsAuto}
}

// CometBFTMetricsListen is the address CometBFT's metrics are served on, for a node whose
// RPC listens on rpcListen: "auto" puts them on 127.0.0.1 at the RPC port + 3, so each
// validator of a network on one machine (RPC ports PortStride apart) has its own, and
// validator-1's is CometBFT's usual 26660; an RPC port 0 gives port 0 (a free one).
func (c Chain) CometBFTMetricsListen(rpcListen string) string {
	if c.CometBFTMetricsAddr != MetricsAuto {
		return c.CometBFTMetricsAddr
	}
	_, port, err := splitHostPort(rpcListen)
	if err != nil || port == 0 || port+3 > 65535 {
		return "127.0.0.1:0"
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port+3))
}

func (c Chain) validate() []error {
	ck := check{role: RoleChain}
	if c.RESTAddr != "" {
		ck.hostPort("rest_addr", c.RESTAddr)
	}
	ck.positive("status_interval", c.StatusInterval)
	if c.CometBFTMetricsAddr != "" && c.CometBFTMetricsAddr != MetricsAuto {
		ck.hostPort("cometbft_metrics_addr", c.CometBFTMetricsAddr)
	}
	return ck.errs
}

// Options reads the chain options chain init recorded in the home.
func (c Chain) Options() (chain.Options, error) { return chain.LoadOptions(c.Home) }

// Router configures `omnisync router run`: OmniRouter with its embedded NATS server (nodes
// and validators dial nodes_addr over WebSocket + TLS) and the REST API.
type Router struct {
	Wallet    string `toml:"wallet" short:"w" help:"wallet name in the wallet directory, or a keypair file path; its address must be in the chain's routers parameter"`
	WalletDir string `toml:"wallet_dir" env:"OMNISYNC_WALLET_DIR" help:"directory of wallet key files"`
	ChainRPC  string `toml:"chain_rpc" env:"OMNISYNC_RPC" help:"CometBFT RPC URL of a chain node, or of several separated by commas: the first that answers is used until it fails, and the first again once it is back"`

	NodesAddr string   `toml:"nodes_addr" help:"WebSocket+TLS listen address nodes and validators dial (port 0 picks a free one)"`
	TLSHosts  []string `toml:"tls_hosts" flag:"tls-host" help:"names and IPs nodes dial, put in the certificate (repeatable; loopback is always in it)"`
	TLSDir    string   `toml:"tls_dir" help:"where the CA and server certificate live; made if missing (give nodes ca.pem)"`
	StoreDir  string   `toml:"store_dir" help:"JetStream storage: router state and job data"`
	RESTAddr  string   `toml:"rest_addr" help:"REST API listen address (port 0 picks a free one)"`

	HeartbeatTTL    Duration `toml:"heartbeat_ttl" help:"a node counts as online this long after its last heartbeat, and a job placed while none is waits this long for one"`
	DispatchTimeout Duration `toml:"dispatch_timeout" help:"how long a node has to accept a job"`
	VerifyTimeout   Duration `toml:"verify_timeout" help:"how long validators have to verify a result"`
	MaxAttempts     int      `toml:"max_attempts" help:"placements per job before it fails"`
	MaxOutputBytes  int64    `toml:"max_output_bytes" help:"largest output a node may store for one job"`
	RightsInterval  Duration `toml:"rights_interval" help:"how often connected participants are checked against the chain (at most a block)"`
	MaxActiveJobs   int      `toml:"max_active_jobs" help:"unfinished jobs the router holds; past it submissions are refused before escrow (429, retry after)"`

	ClusterName   string   `toml:"cluster_name" help:"join a cluster of routers of this name (same on each; empty runs alone); they share a replicated JetStream and each other's jobs"`
	ClusterAddr   string   `toml:"cluster_addr" help:"listen address of the cluster routes (mutual TLS with the cluster's shared CA in tls_dir)"`
	ClusterRoutes []string `toml:"cluster_routes" flag:"cluster-route" help:"host:port of another router's cluster_addr (repeatable)"`
	LeaseTTL      Duration `toml:"lease_ttl" help:"how long a router that stops renewing its lease keeps its jobs before its peers take them over"`
}

func defaultRouter() Router {
	return Router{
		Wallet: RoleRouter, WalletDir: defaultWalletDir(), ChainRPC: DefaultChainRPC,
		NodesAddr: DefaultNodes, TLSDir: homePath("router", "tls"), StoreDir: homePath("router", "store"), RESTAddr: DefaultREST,
		HeartbeatTTL: D(10 * time.Second), DispatchTimeout: D(5 * time.Second), VerifyTimeout: D(60 * time.Second),
		MaxAttempts: 3, MaxOutputBytes: router.DefaultMaxOutputBytes, RightsInterval: D(time.Second),
		MaxActiveJobs: router.DefaultMaxActiveJobs, ClusterAddr: DefaultCluster, LeaseTTL: D(router.DefaultLeaseTTL),
	}
}

func (r Router) validate() []error {
	ck := check{role: RoleRouter}
	ck.wallet(r.Wallet, r.WalletDir)
	ck.endpoints("chain_rpc", r.ChainRPC, "http", "https", "tcp")
	ck.hostPort("nodes_addr", r.NodesAddr)
	ck.hostPort("rest_addr", r.RESTAddr)
	ck.nonEmpty("tls_dir", r.TLSDir, `"/var/lib/omnisync/router/tls"`)
	ck.nonEmpty("store_dir", r.StoreDir, `"/var/lib/omnisync/router/store"`)
	for _, d := range []struct {
		key string
		v   Duration
	}{{"heartbeat_ttl", r.HeartbeatTTL}, {"dispatch_timeout", r.DispatchTimeout}, {"verify_timeout", r.VerifyTimeout}, {"rights_interval", r.RightsInterval}, {"lease_ttl", r.LeaseTTL}} {
		ck.positive(d.key, d.v)
	}
	if r.MaxAttempts < 1 {
		ck.fail("max_attempts", "%d: want at least 1", r.MaxAttempts)
	}
	if r.MaxOutputBytes < 1 {
		ck.fail("max_output_bytes", "%d: want a positive number of bytes", r.MaxOutputBytes)
	}
	if r.MaxActiveJobs < 1 {
		ck.fail("max_active_jobs", "%d: want at least 1", r.MaxActiveJobs)
	}
	if r.ClusterName != "" {
		ck.hostPort("cluster_addr", r.ClusterAddr)
		if len(r.ClusterRoutes) < 2 {
			ck.fail("cluster_routes", "a cluster of routers needs at least 3 (got %d other routes): JetStream keeps each bucket on 3 servers", len(r.ClusterRoutes))
		}
		for _, route := range r.ClusterRoutes {
			ck.hostPort("cluster_routes", route)
		}
	}
	return ck.errs
}

// Options is the router's Options but for what the cli supplies: Key, Chain, TLS, Logger.
func (r Router) Options() (router.Options, error) {
	host, port, err := splitHostPort(r.NodesAddr)
	if err != nil {
		return router.Options{}, fmt.Errorf("%w: router.nodes_addr: %v", ErrInvalid, err)
	}
	o := router.Options{
		Host: host, WSPort: port, StoreDir: r.StoreDir,
		HeartbeatTTL: r.HeartbeatTTL.Duration, DispatchTimeout: r.DispatchTimeout.Duration,
		VerifyTimeout: r.VerifyTimeout.Duration, MaxAttempts: r.MaxAttempts, MaxOutputBytes: r.MaxOutputBytes,
		RightsInterval: r.RightsInterval.Duration, MaxActiveJobs: r.MaxActiveJobs, LeaseTTL: r.LeaseTTL.Duration,
	}
	if r.ClusterName != "" {
		chost, cport, err := splitHostPort(r.ClusterAddr)
		if err != nil {
			return router.Options{}, fmt.Errorf("%w: router.cluster_addr: %v", ErrInvalid, err)
		}
		// The routes' TLS comes from tls_dir, which the cli loads (transport.TLSFiles.ClusterConfig).
		o.Cluster = &transport.ClusterOptions{Name: r.ClusterName, Host: chost, Port: cport, Routes: r.ClusterRoutes}
	}
	return o, nil
}

// Node configures `omnisync node register` and `node run`. The node finds its hardware
// (gpu_tier auto-detect, the default) or declares the hardware given here (declared; by
// default the devnet's first simulated profile, an RTX 4090), and computes with the
// native tensor runtime.
type Node struct {
	Wallet    string `toml:"wallet" short:"w" help:"wallet name in the wallet directory, or a keypair file path: the node's id and stake"`
	WalletDir string `toml:"wallet_dir" env:"OMNISYNC_WALLET_DIR" help:"directory of wallet key files"`
	ChainRPC  string `toml:"chain_rpc" env:"OMNISYNC_RPC" help:"CometBFT RPC URL of a chain node, or of several separated by commas: the first that answers is used until it fails, and the first again once it is back"`
	Router    string `toml:"router" help:"the router's nodes URL, wss://HOST:PORT; the routers of a cluster separated by commas"`
	RouterCA  string `toml:"router_ca" help:"PEM file of the CA that signed the router's certificate (its tls_dir/ca.pem); empty trusts the system roots"`
	Runtime   string `toml:"runtime" help:"workload runtime: native (built-in tensor kernels)"`

	Containers       string   `toml:"containers" help:"container jobs: none; docker (each job in a hardened container on the local engine); or process (jobs run UNSANDBOXED as child processes, only for the consumers in process_consumers)"`
	DockerHost       string   `toml:"docker_host" help:"the Docker engine's socket, unix:///PATH; empty: $DOCKER_HOST, else unix:///var/run/docker.sock"`
	GPUDevices       []string `toml:"gpu_devices" help:"GPUs container jobs may be given (indices or UUIDs as nvidia-smi prints them), each to one job at a time; empty: the GPUs auto-detect found"`
	ProcessConsumers []string `toml:"process_consumers" help:"consumer addresses the process runtime runs jobs for"`
	ComputeGPU       string   `toml:"compute_gpu" help:"where the native runtime computes matmul-int8 products: auto (GPU 0 when a CUDA driver and GPU answer, else the CPU), off (the CPU), or a GPU's index as the CUDA driver counts them (required: the node will not start without it)"`
	ZKDir            string   `toml:"zk_dir" help:"directory of the deployment's zk keys, one file per model shape, shared with its validators (a shape missing is set up here, once: a single-party setup, for devnets); empty: zk jobs are refused"`

	GPUTier     string   `toml:"gpu_tier" help:"auto-detect (find the GPUs through NVML or nvidia-smi; a machine without them is a CPU node) or declared (what gpu_model, gpus, vram_mib and tflops say)"`
	GPUModel    string   `toml:"gpu_model" help:"declared GPU model"`
	GPUs        int      `toml:"gpus" help:"declared number of GPUs"`
	VRAMMiB     int64    `toml:"vram_mib" help:"declared memory per GPU, MiB"`
	TFLOPS      float64  `toml:"tflops" help:"declared compute per GPU, TFLOPS"`
	Region      string   `toml:"region" help:"region label shown to consumers"`
	Latitude    float64  `toml:"latitude" help:"where the node is, for latency estimates (degrees)"`
	Longitude   float64  `toml:"longitude" help:"where the node is, for latency estimates (degrees)"`
	MinPrice    Amount   `toml:"min_price" help:"bid in OMNI per GPU-hour"`
	Stake       Amount   `toml:"stake" help:"OMNI staked at registration (the chain's minimum is 500)"`
	Heartbeat   Duration `toml:"heartbeat" help:"how often the node reports its load to the router"`
	MetricsAddr string   `toml:"metrics_addr" help:"serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (\"\", the default, serves none)"`
	// ClockOffset exists for chaos runs (deploy/chaos): a container cannot set its clock.
	ClockOffset Duration `toml:"clock_offset" help:"testing aid: run the node's clock this far ahead (negative: behind), as on a host whose clock is wrong"`
}

// The containers values.
const (
	ContainersNone    = "none"
	ContainersDocker  = "docker"
	ContainersProcess = "process"
)

// The gpu_tier values.
const (
	GPUTierAuto     = "auto-detect"
	GPUTierDeclared = "declared"
)

func defaultNode() Node {
	hw, price := devnet.SimulatedProfile(0)
	return Node{
		Wallet: RoleNode, WalletDir: defaultWalletDir(), ChainRPC: DefaultChainRPC, Runtime: "native",
		Containers: ContainersNone, ComputeGPU: CheckGPUAuto, GPUTier: GPUTierAuto, GPUModel: hw.GPUModel, GPUs: int(hw.GPUs), VRAMMiB: int64(hw.VRAMMiB),
		TFLOPS: float64(hw.TFLOPSMilli) / 1000, Region: hw.Region,
		Latitude: float64(hw.LatE6) / 1e6, Longitude: float64(hw.LonE6) / 1e6,
		MinPrice: OMNI(price), Stake: OMNI(500 * ledger.UomniPerOMNI), Heartbeat: D(2 * time.Second),
	}
}

func (n Node) validate() []error {
	ck := check{role: RoleNode}
	ck.wallet(n.Wallet, n.WalletDir)
	ck.endpoints("chain_rpc", n.ChainRPC, "http", "https", "tcp")
	ck.urls("router", n.Router, "wss")
	ck.oneOf("runtime", n.Runtime, "native")
	ck.oneOf("containers", n.Containers, ContainersNone, ContainersDocker, ContainersProcess)
	ck.gpu("compute_gpu", n.ComputeGPU)
	if n.Containers == ContainersProcess && len(n.ProcessConsumers) == 0 {
		ck.fail("process_consumers", "the process runtime runs jobs unsandboxed: list the consumer addresses it may run jobs for")
	}
	if n.DockerHost != "" && !strings.HasPrefix(n.DockerHost, "unix://") {
		ck.fail("docker_host", "%q: want unix:///PATH", n.DockerHost)
	}
	ck.oneOf("gpu_tier", n.GPUTier, GPUTierAuto, GPUTierDeclared)
	ck.nonEmpty("gpu_model", n.GPUModel, `"RTX 4090"`)
	if n.GPUs < 1 || n.GPUs > 1<<16 {
		ck.fail("gpus", "%d: want between 1 and 65536", n.GPUs)
	}
	if n.VRAMMiB < 1 {
		ck.fail("vram_mib", "%d: want a positive number of MiB, e.g. 24576", n.VRAMMiB)
	}
	if !(n.TFLOPS > 0 && n.TFLOPS < 1e9) {
		ck.fail("tflops", "%v: want a positive number, e.g. 82.6", n.TFLOPS)
	}
	if !(n.Latitude >= -90 && n.Latitude <= 90) {
		ck.fail("latitude", "%v: want degrees between -90 and 90", n.Latitude)
	}
	if !(n.Longitude >= -180 && n.Longitude <= 180) {
		ck.fail("longitude", "%v: want degrees between -180 and 180", n.Longitude)
	}
	if n.MinPrice.Uomni == 0 {
		ck.fail("min_price", "must be positive, e.g. \"0.04\" OMNI per GPU-hour")
	}
	ck.positive("heartbeat", n.Heartbeat)
	ck.optionalHostPort("metrics_addr", n.MetricsAddr)
	return ck.errs
}

// Hardware is the hardware the node declares on chain.
func (n Node) Hardware() ledger.Hardware {
	return ledger.Hardware{
		GPUModel: n.GPUModel, GPUs: uint32(n.GPUs), VRAMMiB: uint64(n.VRAMMiB),
		TFLOPSMilli: uint64(n.TFLOPS*1000 + 0.5), Region: n.Region,
		LatE6: int32(n.Latitude * 1e6), LonE6: int32(n.Longitude * 1e6),
	}
}

// Options is the node's Options but for what the cli supplies: Key, Chain, RootCAs, Logger.
func (n Node) Options() node.Options {
	return node.Options{
		RouterURL: n.Router, Runtime: runtime.Native{ZK: zkKeys(n.ZKDir)}, Hardware: n.Hardware(),
		PricePerHour: n.MinPrice.Uomni, Stake: n.Stake.Uomni, Heartbeat: n.Heartbeat.Duration,
		Now: offsetClock(n.ClockOffset.Duration),
	}
}

// offsetClock is time.Now, offset by d; nil (time.Now itself) when d is zero.
func offsetClock(d time.Duration) func() time.Time {
	if d == 0 {
		return nil
	}
	return func() time.Time { return time.Now().Add(d) }
}

// Validator configures `omnisync validator run`: the verifier daemon. Its wallet must be a
// validator's account (in chain init networks, DIR/validator-K/account.json).
type Validator struct {
	Wallet      string   `toml:"wallet" short:"w" help:"wallet name in the wallet directory, or a keypair file path: a validator's account"`
	WalletDir   string   `toml:"wallet_dir" env:"OMNISYNC_WALLET_DIR" help:"directory of wallet key files"`
	ChainRPC    string   `toml:"chain_rpc" env:"OMNISYNC_RPC" help:"CometBFT RPC URL of a chain node, or of several separated by commas: the first that answers is used until it fails, and the first again once it is back"`
	Router      string   `toml:"router" help:"the router's nodes URL, wss://HOST:PORT; the routers of a cluster separated by commas"`
	RouterCA    string   `toml:"router_ca" help:"PEM file of the CA that signed the router's certificate; empty trusts the system roots"`
	Rounds      int      `toml:"rounds" help:"rounds of Freivalds' check per product (each errs with probability below 2^-60)"`
	Heartbeat   Duration `toml:"heartbeat" help:"how often the validator tells the router it is online"`
	MetricsAddr string   `toml:"metrics_addr" help:"serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9465 (\"\", the default, serves none)"`

	Containers string   `toml:"containers" help:"container jobs drawn for audit: none (audit tensor jobs only; a container audit is refused, never attested) or docker (run each again in a hardened container on the local engine, as nodes run them)"`
	DockerHost string   `toml:"docker_host" help:"the Docker engine's socket, unix:///PATH; empty: $DOCKER_HOST, else unix:///var/run/docker.sock"`
	GPUDevices []string `toml:"gpu_devices" help:"GPUs audited containers may be given (indices or UUIDs as nvidia-smi prints them), each to one job at a time; empty: none, so audits of jobs that ask for GPUs are refused"`
	CheckGPU   string   `toml:"check_gpu" help:"where Freivalds' checks of int8 products compute: auto (GPU 0 when a CUDA driver and GPU answer, else the CPU), off (the CPU), or a GPU's index as the CUDA driver counts them (required: the validator will not start without it)"`
	ZKDir      string   `toml:"zk_dir" help:"directory of the deployment's zk keys, as its nodes prove with (read only: a validator never sets keys up); empty: zk jobs are refused, never attested"`
	// CapacityEvery turns the proof-of-capacity checker on (validator.CapacityOptions).
	CapacityEvery Duration `toml:"capacity_every" help:"challenge each node's declared TFLOPS when first seen and then about this often (a random time of this mean), reporting on chain; 0, the default, checks none"`
	// AuditEvery paces the audits of attestations (validator.Options.AuditEvery).
	AuditEvery Duration `toml:"audit_every" help:"read the chain's open audits of attestations this often and report the false passes of jobs this validator checked; 0 audits none"`
	// OutputPatience is validator.Options.OutputPatience.
	OutputPatience Duration `toml:"output_patience" help:"how long a committed output that cannot be found is looked for again, every 250 ms, before the check finds it never uploaded (a router cluster copies blobs between its servers in their own time)"`
}

// gpu checks a GPU setting (check_gpu, compute_gpu): auto, off or a GPU index.
func (c *check) gpu(key, v string) {
	if v != CheckGPUAuto && v != CheckGPUOff {
		if i, err := strconv.Atoi(v); err != nil || i < 0 {
			c.fail(key, "%q: want auto, off or a GPU index (0, 1, …)", v)
		}
	}
}

// The check_gpu and compute_gpu settings besides a GPU index.
const (
	CheckGPUAuto = "auto"
	CheckGPUOff  = "off"
)

func defaultValidator() Validator {
	return Validator{Wallet: RoleValidator, WalletDir: defaultWalletDir(), ChainRPC: DefaultChainRPC, Rounds: verify.DefaultRounds, Heartbeat: D(2 * time.Second),
		Containers: ContainersNone, CheckGPU: CheckGPUAuto, AuditEvery: D(2 * time.Second), OutputPatience: D(validator.DefaultOutputPatience)}
}

func (v Validator) validate() []error {
	ck := check{role: RoleValidator}
	ck.wallet(v.Wallet, v.WalletDir)
	ck.endpoints("chain_rpc", v.ChainRPC, "http", "https", "tcp")
	ck.urls("router", v.Router, "wss")
	if v.Rounds < 1 || v.Rounds > 64 {
		ck.fail("rounds", "%d: want between 1 and 64", v.Rounds)
	}
	ck.positive("heartbeat", v.Heartbeat)
	ck.positive("output_patience", v.OutputPatience)
	ck.optionalHostPort("metrics_addr", v.MetricsAddr)
	ck.oneOf("containers", v.Containers, ContainersNone, ContainersDocker)
	ck.gpu("check_gpu", v.CheckGPU)
	if v.DockerHost != "" && !strings.HasPrefix(v.DockerHost, "unix://") {
		ck.fail("docker_host", "%q: want unix:///PATH", v.DockerHost)
	}
	return ck.errs
}

// Options is the validator's Options but for what the cli supplies: Key, Chain, RootCAs,
// Logger, and the container runtime containers names.
func (v Validator) Options() validator.Options {
	return validator.Options{RouterURL: v.Router, Rounds: v.Rounds, Heartbeat: v.Heartbeat.Duration, ZKKeys: zkKeys(v.ZKDir),
		Capacity: validator.CapacityOptions{Every: v.CapacityEvery.Duration}, AuditEvery: auditEvery(v.AuditEvery.Duration),
		OutputPatience: v.OutputPatience.Duration}
}

// auditEvery is validator.Options.AuditEvery for the setting d, where 0 audits none
// (negative in Options, whose 0 is the default).
func auditEvery(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// zkKeys is the key cache on dir, nil for none.
func zkKeys(dir string) *zk.KeyCache {
	if dir == "" {
		return nil
	}
	return zk.NewKeyCache(dir)
}

func (c *check) wallet(name, dir string) {
	c.nonEmpty("wallet", name, `"router", or a keypair file path`)
	c.nonEmpty("wallet_dir", dir, `"/var/lib/omnisync/wallets"`)
}

func (c *check) url(key, raw string, schemes ...string) {
	if schemes[0] == "http" && !strings.Contains(raw, "://") {
		raw = "http://" + raw // a chain RPC may be given as host:port, as the wallet commands take it
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		c.fail(key, "%q is not a URL like %s://HOST:PORT", raw, schemes[0])
		return
	}
	if !slices.Contains(schemes, u.Scheme) {
		c.fail(key, "%q: want a %s:// URL", raw, strings.Join(schemes, ":// or "))
	}
}

// urls checks a comma-separated list of URLs, which may be empty.
func (c *check) urls(key, list string, schemes ...string) {
	if list != "" {
		c.endpoints(key, list, schemes...)
	}
}

// endpoints checks a comma-separated list of one URL or more.
func (c *check) endpoints(key, list string, schemes ...string) {
	for _, raw := range strings.Split(list, ",") {
		c.url(key, strings.TrimSpace(raw), schemes...)
	}
}

func (c *check) hostPort(key, addr string) {
	if _, _, err := splitHostPort(addr); err != nil {
		c.fail(key, "%v", err)
	}
}

// optionalHostPort checks addr unless it is "" (the setting is off).
func (c *check) optionalHostPort(key, addr string) {
	if addr != "" {
		c.hostPort(key, addr)
	}
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port, e.g. 127.0.0.1:7070", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	return host, p, nil
}

func defaultWalletDir() string { return homePath("wallets") }

// homePath is a path under ~/.omnisync, where every default file of every role lives.
func homePath(parts ...string) string {
	home, _ := os.UserHomeDir()
	return filepath.Join(append([]string{home, ".omnisync"}, parts...)...)
}
