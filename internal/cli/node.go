package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/node/hw"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/docker"
	"github.com/omnisync/omnisync/internal/runtime/process"
)

const nodeSettingsHelp = `
Hardware: --gpu-tier auto-detect (the default) finds this machine's NVIDIA GPUs through NVML
(or nvidia-smi), and declares them with their published TFLOPS; a machine without a driver
is a CPU node and declares its measured int8 rate. --gpu-tier declared declares what
--gpu-model, --gpus, --vram-mib and --tflops say instead. --region, --latitude and
--longitude are declared either way. Tensor jobs run with the native runtime; container
jobs run where --containers says: none (the default), docker (each in a hardened container on
the local engine, GPUs from --gpu-devices or those detected) or process (unsandboxed child
processes, only for the consumers in --process-consumers).

Settings come from flags, then OMNISYNC_NODE_* variables, then the [node] table of --config,
then the defaults; "omnisync config print --role node" shows the result.`

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Register a compute node on chain and serve jobs",
	}
	cmd.AddCommand(newNodeRegisterCmd(g), newNodeRunCmd(g), newNodeStatusCmd(g), newNodeListCmd(g), newNodeHistoryCmd(g))
	return cmd
}

func newNodeRegisterCmd(g *globals) *cobra.Command {
	var d *daemonFlags
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Stake and register this node on chain; print its id, hardware and status",
		Long: `Stakes --stake OMNI (at least the chain's minimum, 500) from the wallet and registers the
node with its hardware and its bid (--min-price, OMNI per GPU-hour). A node registered before
is left as it is. It needs only the chain (--chain-rpc), no router.
` + nodeSettingsHelp,
		Example: `  omnisync node register --wallet node --chain-rpc http://10.0.0.1:26657 --gpu-tier auto-detect --min-price 0.04`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runNodeRegister(cmd, g, d) },
	}
	d = addDaemonFlags(cmd, config.RoleNode)
	return cmd
}

// nodeDaemon builds the node daemon from the merged settings: the one place register and
// run turn them into node.Options.
func nodeDaemon(ctx context.Context, g *globals, nc config.Node, reg prometheus.Registerer) (*node.Daemon, *chain.Client, string, error) {
	log, err := g.logger()
	if err != nil {
		return nil, nil, "", err
	}
	key, err := loadWallet(nc.WalletDir, nc.Wallet)
	if err != nil {
		return nil, nil, "", err
	}
	client, chainID, err := connectChain(ctx, nc.ChainRPC, log)
	if err != nil {
		return nil, nil, "", err
	}
	if err := client.RegisterMetrics(reg); err != nil {
		return nil, nil, "", err
	}
	roots, err := routerRoots(nc.RouterCA)
	if err != nil {
		return nil, nil, "", err
	}
	opts := nc.Options()
	var gpus []string // the GPUs found, for container jobs
	if nc.GPUTier == config.GPUTierAuto {
		if opts.Hardware, gpus, err = detectHardware(ctx, g, nc); err != nil {
			return nil, nil, "", err
		}
	}
	if opts.Containers, err = containerRuntime(ctx, g, nc, gpus); err != nil {
		return nil, nil, "", err
	}
	// The GPU lives as long as this process: register exits, run serves until it stops.
	gpu, where, _, err := openGPU("compute_gpu", nc.ComputeGPU)
	if err != nil {
		return nil, nil, "", err
	}
	if native, ok := opts.Runtime.(runtime.Native); ok && gpu != nil {
		native.GPU = gpu
		opts.Runtime = native
		fmt.Fprintf(g.stderr, "tensor jobs: int8 products %s\n", where) // on a CPU, detected: said why
	}
	opts.Key, opts.Chain, opts.RootCAs, opts.Logger = key, chain.NewWallet(client, key, chainID), roots, log
	opts.Metrics = reg
	n, err := node.New(opts)
	return n, client, chainID, err
}

// containerRuntime starts the container runtime the configuration names, or none. Docker
// jobs may be given the configured gpu_devices, else the GPUs discovery found.
func containerRuntime(ctx context.Context, g *globals, nc config.Node, found []string) (runtime.Container, error) {
	switch nc.Containers {
	case config.ContainersDocker:
		devices := nc.GPUDevices
		if len(devices) == 0 {
			devices = found
		}
		r, err := docker.New(ctx, docker.Options{Host: nc.DockerHost, Instance: "node", GPUs: devices})
		if err != nil {
			return nil, fmt.Errorf("%w\n(containers = docker needs a Docker engine this user may use; or set containers = none)", err)
		}
		fmt.Fprintf(g.stderr, "container jobs: docker (engine API %s), GPUs for jobs: %s\n", r.APIVersion(), orNone(strings.Join(devices, ", ")))
		return runtime.Docker(r), nil
	case config.ContainersProcess:
		r, err := process.New(process.Options{Enabled: true, AllowedConsumers: nc.ProcessConsumers})
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(g.stderr, "warning: container jobs run UNSANDBOXED as child processes of this daemon, for %s only\n", strings.Join(nc.ProcessConsumers, ", "))
		return runtime.Process(r), nil
	}
	return nil, nil
}

// detectHardware finds this machine's hardware and what the node declares of it: the
// discovered GPUs (or the CPU), at the configured region and location. gpus are the
// GPUs' ids as nvidia-smi prints them (UUIDs where known, else indices).
func detectHardware(ctx context.Context, g *globals, nc config.Node) (h ledger.Hardware, gpus []string, err error) {
	rep, err := hw.Discover(ctx, hw.Options{DiskDir: nc.WalletDir})
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: hardware discovery: %v\n", err)
	}
	fmt.Fprintf(g.stderr, "detected: %s\n", rep.Summary())
	if h, err = rep.LedgerHardware(); err != nil {
		return ledger.Hardware{}, nil, fmt.Errorf("%w\n(declare the hardware instead: --gpu-tier declared --gpu-model M --gpus N --vram-mib V --tflops T)", err)
	}
	declared := nc.Hardware()
	h.Region, h.LatE6, h.LonE6 = declared.Region, declared.LatE6, declared.LonE6
	for _, gpu := range rep.GPUs {
		id := gpu.UUID
		if id == "" {
			id = strconv.Itoa(gpu.Index)
		}
		gpus = append(gpus, id)
	}
	return h, gpus, nil
}

// nodeRegistration is what node register reports (--output json), amounts in uomni.
type nodeRegistration struct {
	NodeID           string          `json:"node_id"`
	ChainID          string          `json:"chain_id"`
	Hardware         ledger.Hardware `json:"hardware"`
	HardwareDetected bool            `json:"hardware_detected"` // --gpu-tier auto-detect: found on this machine
	PricePerHour     uint64          `json:"price_per_hour"`
	Stake            uint64          `json:"stake"`
	Status           string          `json:"status"`
	RegisteredHeight int64           `json:"registered_height"`
	Tx               string          `json:"tx,omitempty"` // empty when it was registered before
}

func runNodeRegister(cmd *cobra.Command, g *globals, d *daemonFlags) error {
	ctx := cmd.Context()
	c, err := d.load(cmd)
	if err != nil {
		return err
	}
	n, client, chainID, err := nodeDaemon(ctx, g, c.Node, nil)
	if err != nil {
		return err
	}
	tx, err := n.Register(ctx)
	if err != nil {
		return explainRegisterError(err, c.Node.Stake)
	}
	var rec ledger.Node
	if err := client.Query(ctx, "node/"+n.ID(), &rec); err != nil {
		return fmt.Errorf("read the node's registration: %w", err)
	}
	out := nodeRegistration{
		NodeID: n.ID(), ChainID: chainID, Hardware: rec.Hardware, PricePerHour: rec.PricePerHour, Stake: rec.Stake,
		Status: rec.Status, RegisteredHeight: rec.RegisteredHeight, Tx: tx, HardwareDetected: c.Node.GPUTier == config.GPUTierAuto,
	}
	if g.json() {
		return writeJSON(g.stdout, out)
	}
	o := g.stdout
	if tx == "" {
		fmt.Fprintf(o, "Already registered at height %d; the chain's record:\n", rec.RegisteredHeight)
	}
	fmt.Fprintf(o, "Node ID:   %s\n", out.NodeID)
	how := "declared with --gpu-tier declared"
	if out.HardwareDetected {
		how = "detected on this machine"
	}
	fmt.Fprintf(o, "Hardware:  %s (%s)\n", hardwareLine(rec.Hardware), how)
	fmt.Fprintf(o, "Region:    %s (%.2f, %.2f)\n", rec.Hardware.Region, float64(rec.Hardware.LatE6)/1e6, float64(rec.Hardware.LonE6)/1e6)
	fmt.Fprintf(o, "Bid:       %s per GPU-hour · stake %s\n", omni(rec.PricePerHour), omni(rec.Stake))
	switch rec.Status {
	case ledger.NodeActive:
		fmt.Fprintf(o, "Status:    ACTIVE — earns OMNI once it serves jobs: omnisync node run --wallet %s --router wss://HOST:PORT --router-ca FILE\n", c.Node.Wallet)
	default:
		fmt.Fprintf(o, "Status:    %s — stake at least the chain's minimum to take jobs (omnisync stake add --role node)\n", strings.ToUpper(rec.Status))
	}
	if tx != "" {
		fmt.Fprintf(o, "Tx:        %s\n", tx)
	}
	return nil
}

func explainRegisterError(err error, stake config.Amount) error {
	switch {
	case errors.Is(err, ledger.ErrInsufficientFunds):
		return fmt.Errorf("%w\n(staking %s needs that much spendable in the wallet: fund it with `omnisync wallet send`)", err, omni(stake.Uomni))
	case errors.Is(err, ledger.ErrStakeTooLow):
		return fmt.Errorf("%w\n(raise --stake to at least the chain's min_node_stake: `omnisync gov params` shows it)", err)
	}
	return err
}

// hardwareLine renders hardware as the whitepaper does: "RTX 4090 (24GB VRAM, 82.6 TFLOPS)".
func hardwareLine(hw ledger.Hardware) string {
	if strings.HasPrefix(hw.GPUModel, "cpu: ") {
		// A CPU node declares its memory and measured rate in the GPU fields (see hw).
		return fmt.Sprintf("%s (%dGB RAM, %.1f GOPS int8 measured)", hw.GPUModel, hw.VRAMMiB/1024, float64(hw.TFLOPSMilli))
	}
	gpus := ""
	if hw.GPUs > 1 {
		gpus = fmt.Sprintf("%d× ", hw.GPUs)
	}
	return fmt.Sprintf("%s%s (%dGB VRAM, %.1f TFLOPS)", gpus, hw.GPUModel, hw.VRAMMiB/1024, float64(hw.TFLOPSMilli)/1000)
}

func newNodeRunCmd(g *globals) *cobra.Command {
	var d *daemonFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Connect to a router and serve jobs until Ctrl-C",
		Long: `Registers the node if it is not yet (as node register does), dials the router's nodes URL
(--router wss://HOST:PORT) trusting the CA the router made (--router-ca), heartbeats, and runs
the jobs it is given, committing each result's digest on chain.
` + nodeSettingsHelp,
		Example: `  omnisync node run --wallet node --router wss://router.example.org:7422 --router-ca ca.pem --chain-rpc http://10.0.0.1:26657`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runNode(cmd, g, d) },
	}
	d = addDaemonFlags(cmd, config.RoleNode)
	return cmd
}

func runNode(cmd *cobra.Command, g *globals, d *daemonFlags) (err error) {
	ctx := cmd.Context()
	c, err := d.load(cmd)
	if err != nil {
		return err
	}
	if err := c.Require(config.RoleNode, "router"); err != nil {
		return err
	}
	reg, metricsURL, stopMetrics, err := g.serveMetrics(c.Node.MetricsAddr)
	if err != nil {
		return err
	}
	defer func() { _ = stopMetrics() }()
	n, client, chainID, err := nodeDaemon(ctx, g, c.Node, reg)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return explainDialError(explainRegisterError(err, c.Node.Stake), c.Node.Router)
	}
	nc := c.Node
	// Report what the chain records: a node registered before keeps its registration.
	var rec ledger.Node
	if err := client.Query(ctx, "node/"+n.ID(), &rec); err != nil {
		_ = n.Close()
		return fmt.Errorf("read the node's registration: %w", err)
	}
	// A bid or a place nobody set is the default, not a change of mind: only configured
	// ones are compared with the chain's.
	set := func(key string) bool { return c.SourceOf(config.RoleNode, key) != config.FromDefault }
	priceSet := set("min_price")
	now := n.Hardware()
	if !set("region") && !set("latitude") && !set("longitude") {
		now.Region, now.LatE6, now.LonE6 = rec.Hardware.Region, rec.Hardware.LatE6, rec.Hardware.LonE6
	}
	if nc.GPUTier == config.GPUTierAuto && now.GPUModel == rec.Hardware.GPUModel && now.GPUs == rec.Hardware.GPUs {
		// Measured figures (a CPU's rate, its free memory) move from run to run; the same
		// model and count is the same hardware.
		now.VRAMMiB, now.TFLOPSMilli = rec.Hardware.VRAMMiB, rec.Hardware.TFLOPSMilli
	}
	if (priceSet && rec.PricePerHour != nc.MinPrice.Uomni) || rec.Hardware != now {
		configured := hardwareLine(now)
		if now.Region != rec.Hardware.Region || now.LatE6 != rec.Hardware.LatE6 || now.LonE6 != rec.Hardware.LonE6 {
			configured += fmt.Sprintf(" in %s (%.2f, %.2f)", now.Region, float64(now.LatE6)/1e6, float64(now.LonE6)/1e6)
		}
		if priceSet {
			configured += " at " + omni(nc.MinPrice.Uomni)
		}
		fmt.Fprintf(g.stderr, "note: the chain records this node's registration from height %d (%s in %s, %s per GPU-hour), not %s as detected and configured now: a registered node keeps its registration\n",
			rec.RegisteredHeight, hardwareLine(rec.Hardware), rec.Hardware.Region, omni(rec.PricePerHour), configured)
	}
	started := daemonEvent{Event: "started", Role: config.RoleNode, ID: n.ID(), ChainID: chainID, ChainRPC: nc.ChainRPC,
		Router: nc.Router, Runtime: nc.Runtime, MetricsURL: metricsURL}
	runtimes := nc.Runtime + " runtime for tensor jobs, no container jobs"
	if name, sandboxed := n.Containers(); name != "" {
		runtimes = fmt.Sprintf("%s runtime for tensor jobs, %s for containers", nc.Runtime, name)
		if !sandboxed {
			runtimes += " (NOT sandboxed)"
		}
	}
	// A node the chain no longer lists as active is refused by its router: stop then with
	// what to do, rather than reconnect forever.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		if n.Err() != nil {
			err = n.Err()
		}
	}()
	return g.serve(ctx, started, func() {
		fmt.Fprintf(g.stdout, "node %s is serving jobs from %s (chain %s)\n", n.ID(), nc.Router, chainID)
		fmt.Fprintf(g.stdout, "  hardware  %s, on chain · bid %s per GPU-hour · stake %s · %s\n",
			hardwareLine(rec.Hardware), omni(rec.PricePerHour), omni(rec.Stake), runtimes)
		g.printMetrics(metricsURL)
	}, n.Close)
}

// explainDialError adds what to check when a node or validator cannot reach its router.
func explainDialError(err error, router string) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "certificate"):
		return fmt.Errorf("%w\n(the router's certificate is not trusted or does not name %s: pass the router's ca.pem with --router-ca, and dial a name it printed under \"cert\")", err, router)
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "timeout"):
		return fmt.Errorf("%w\n(is the router running, and is %s its nodes URL? `omnisync router run` prints it)", err, router)
	case strings.Contains(msg, "uthoriz"):
		return fmt.Errorf("%w\n(the router admits only active nodes and validators on chain: register first)", err)
	}
	return err
}
