package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/router"
)

func newChainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chain",
		Short: "Run the OMNI settlement chain with several validators",
		Long: `Creates and runs a multi-validator OMNI chain (CometBFT) on this machine's loopback
interface: "chain init" writes one home per validator, "chain start" runs one of them.
Blocks commit while validators holding more than 2/3 of the stake are running.`,
	}
	cmd.AddCommand(newChainInitCmd(g), newChainStartCmd(g))
	return cmd
}

type chainInitFlags struct {
	home       string
	validators int
	chainID    string
	basePort   int
	blockTime  time.Duration
	emptyEvery time.Duration
	propose    time.Duration
	routers    []string
	hosts      []string
	funds      []string
	committee  uint64
}

func newChainInitCmd(g *globals) *cobra.Command {
	f := &chainInitFlags{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the genesis, keys and homes of an N-validator network (loopback, or --hosts)",
		Long: `Writes, under --home, one CometBFT home per validator (validator-1 … validator-N), each with
its consensus key, an account key (account.json, Solana keypair format) and omnisync.json
(its listen ports and the other validators as persistent peers); the keys of the genesis
beneficiaries (team, investors, public sale, liquidity) under keys/; and one genesis with
the whitepaper's tokenomics in which every validator stakes the minimum validator stake.

Validator K listens for RPC on base-port + 10·(K-1) and for P2P one port below, on
127.0.0.1. With --hosts, validator K runs on its own machine (or container), the K-th
host: every validator listens on all interfaces at base-port (RPC) and one below (P2P),
and its peers dial HOST:P2P. --fund gives accounts a balance at genesis, out of the public
sale. An existing network is never overwritten.`,
		Example: `  omnisync chain init --validators 4 --home ~/.omnisync/localnet
  omnisync chain start --home ~/.omnisync/localnet/validator-1
  omnisync chain init --validators 4 --home ./net --hosts v1,v2,v3,v4 --router ADDR --fund ADDR=1000`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runChainInit(g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", defaultNetworkDir(), "directory for the validator homes and keys")
	fl.IntVar(&f.validators, "validators", 4, "number of validators (equal stakes; blocks need more than 2/3 of them running)")
	fl.StringVar(&f.chainID, "chain-id", chain.DefaultNetworkChainID, "chain id")
	fl.IntVar(&f.basePort, "base-port", chain.DefaultBasePort, "RPC port of validator-1 (P2P one below, +10 per validator; 0 picks free ports)")
	fl.DurationVar(&f.blockTime, "block-time", time.Second, "pause between blocks")
	fl.DurationVar(&f.emptyEvery, "empty-block-interval", 5*time.Second, "longest wait for txs before an empty block")
	fl.DurationVar(&f.propose, "propose-timeout", time.Second, "wait for a missing proposer before the next round (CometBFT's 3s is for the internet)")
	fl.StringArrayVar(&f.routers, "router", nil, "address of an account allowed to run a router (repeatable; `omnisync wallet show` prints it)")
	fl.StringSliceVar(&f.hosts, "hosts", nil, "one host name or IP per validator, each on its own machine or container (comma-separated or repeated)")
	fl.StringArrayVar(&f.funds, "fund", nil, "ADDRESS=OMNI: an account funded at genesis out of the public sale (repeatable)")
	fl.Uint64Var(&f.committee, "committee-size", 0, "validators drawn to verify each job; it settles when 2/3 of them attest (0 = all)")
	return cmd
}

func defaultNetworkDir() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".omnisync", "localnet")
}

func runChainInit(g *globals, f *chainInitFlags) error {
	if f.validators < 1 {
		return fmt.Errorf("--validators %d: a network needs at least 1 validator (4 tolerate one stopped)", f.validators)
	}
	if f.blockTime <= 0 || f.emptyEvery <= 0 || f.propose <= 0 {
		return errors.New("--block-time, --empty-block-interval and --propose-timeout must be positive, e.g. 1s")
	}
	routers := make([]keys.Address, len(f.routers))
	for i, r := range f.routers {
		if err := keys.Address(r).Validate(); err != nil {
			return fmt.Errorf("--router %q: %w (want a wallet address, as `omnisync wallet show` prints it)", r, err)
		}
		routers[i] = keys.Address(r)
	}
	funds := make([]ledger.GenesisAccount, len(f.funds))
	for i, fund := range f.funds {
		addr, amount, ok := strings.Cut(fund, "=")
		if err := keys.Address(addr).Validate(); !ok || err != nil {
			return fmt.Errorf("--fund %q: want ADDRESS=OMNI, a wallet address and an amount, e.g. --fund ADDRESS=1000", fund)
		}
		uomni, err := config.ParseOMNI(amount)
		if err != nil || uomni == 0 {
			return fmt.Errorf("--fund %q: the amount must be OMNI above zero, e.g. 1000 or 0.5", fund)
		}
		funds[i] = ledger.GenesisAccount{Address: keys.Address(addr), Balance: uomni}
	}
	nw, err := chain.InitNetwork(chain.NetworkOptions{
		Dir: f.home, Validators: f.validators, ChainID: f.chainID, BasePort: f.basePort,
		BlockTime: f.blockTime, EmptyBlockInterval: f.emptyEvery, ProposeTimeout: f.propose, Routers: routers,
		Hosts: f.hosts, Funds: funds, CommitteeSize: f.committee,
	})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(g.stdout, nw)
	}
	printNetwork(g, nw, routers)
	return nil
}

func printNetwork(g *globals, nw chain.Network, routers []keys.Address) {
	w := g.stdout
	fmt.Fprintf(w, "Initialised %d-validator network %s in %s\n\n", len(nw.Validators), nw.ChainID, nw.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  validator\taccount\tstake\tRPC\tP2P")
	for _, v := range nw.Validators {
		fmt.Fprintf(tw, "  %s\t%s\t%s OMNI\t%s\t%s\n", v.Name, v.Account, ledger.FormatOMNI(v.Stake), v.RPCURL(), v.P2PAddress())
	}
	tw.Flush()
	fmt.Fprintf(w, "\nGenesis accounts (keys in %s):\n", filepath.Join(nw.Dir, "keys"))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range nw.Accounts {
		lock := "unlocked"
		if v := a.Vesting; v != nil {
			lock = fmt.Sprintf("vests %s to %s", time.Unix(v.CliffUnix, 0).UTC().Format(time.DateOnly), time.Unix(v.EndUnix, 0).UTC().Format(time.DateOnly))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s OMNI\t%s\n", a.Name, a.Address, ledger.FormatOMNI(a.Balance), lock)
	}
	tw.Flush()
	if len(nw.Funded) > 0 {
		fmt.Fprintf(w, "\nFunded at genesis out of the public sale:\n")
		for _, a := range nw.Funded {
			fmt.Fprintf(w, "  %s  %s OMNI\n", a.Address, ledger.FormatOMNI(a.Balance))
		}
	}
	if len(routers) == 0 {
		fmt.Fprintf(w, "\nNo routers: jobs need one listed in the genesis (--router ADDRESS) or added by governance.\n")
	} else {
		fmt.Fprintf(w, "\nRouters allowed: %s\n", joinAddresses(routers))
	}
	if nw.Validators[0].Host != "" {
		fmt.Fprintf(w, "\nCopy validator-K to host K and start it there; blocks commit once more than 2/3 of them run.\n"+
			"Every validator listens on all interfaces: keep its RPC port on a private network.\n")
		for _, v := range nw.Validators {
			fmt.Fprintf(w, "  %s: omnisync chain start --home %s --rest-addr 0.0.0.0:7070\n", v.Host, v.Home)
		}
		return
	}
	fmt.Fprintf(w, "\nStart each validator, e.g. in its own terminal; blocks commit once more than 2/3 of them run.\n"+
		"Each serves the REST API too, on its own port:\n")
	for i, v := range nw.Validators {
		fmt.Fprintf(w, "  omnisync chain start --home %s%s\n", v.Home, restFlagFor(i))
	}
}

// restFlagFor spaces the REST ports of validators on one machine as chain init spaces their
// RPC ports: validator-1 takes the default, 7070, validator-K 7070 + 10·(K-1).
func restFlagFor(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf(" --rest-addr 127.0.0.1:%d", 7070+i*chain.PortStride)
}

func joinAddresses(as []keys.Address) string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return strings.Join(out, ", ")
}

func newChainStartCmd(g *globals) *cobra.Command {
	var d *daemonFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run one validator of a network made by chain init, with the REST API, until Ctrl-C",
		Long: `Runs the validator whose home is --home (DIR/validator-K from "chain init"), with the ports
and peers recorded in its omnisync.json, and reports its height until interrupted. Stopping
and starting it again resumes from its home. With --output json it writes one JSON object
per line: a "started" event, "status" events and a "stopped" event.

It also serves the REST API (--rest-addr, "" for none), so wallet, stake, gov, token and
validator commands work against it with --api. A chain node runs no router: it answers every
view of chain state and relays signed transactions, and refuses job submissions, which go to
a router's REST API ("omnisync router run").

Settings come from flags, then OMNISYNC_CHAIN_* variables, then the [chain] table of
--config, then the defaults.`,
		Example: `  omnisync chain start --home ~/.omnisync/localnet/validator-2 --rest-addr 127.0.0.1:7080`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runChainStart(cmd, g, d) },
	}
	d = addDaemonFlags(cmd, config.RoleChain)
	return cmd
}

// chainEvent is one line of `chain start --output json`.
type chainEvent struct {
	Event     string `json:"event"` // started, status or stopped
	Validator string `json:"validator,omitempty"`
	ChainID   string `json:"chain_id,omitempty"`
	Home      string `json:"home,omitempty"`
	RPCURL    string `json:"rpc_url,omitempty"`
	P2PListen string `json:"p2p_listen,omitempty"`
	NodeID    string `json:"node_id,omitempty"`
	RESTURL   string `json:"rest_url,omitempty"`
	// CometBFTMetricsURL is where CometBFT serves its own metrics; the ledger's are at the
	// REST API's /metrics.
	CometBFTMetricsURL string `json:"cometbft_metrics_url,omitempty"`
	Height             int64  `json:"height"`
	Peers              int    `json:"peers"`
}

func runChainStart(cmd *cobra.Command, g *globals, d *daemonFlags) error {
	ctx := cmd.Context()
	c, err := d.load(cmd)
	if err != nil {
		return err
	}
	cc := c.Chain
	if cc.Home == "" {
		return fmt.Errorf("--home is required: pass one validator's home, e.g. --home %s (create them with `omnisync chain init`)",
			filepath.Join(defaultNetworkDir(), "validator-1"))
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	opts, err := cc.Options()
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(cc.Home, "validator-1", chain.HomeConfigFile)); statErr == nil {
			return fmt.Errorf("%s holds a whole network; pass one validator's home, e.g. --home %s", cc.Home, filepath.Join(cc.Home, "validator-1"))
		}
		return err
	}
	opts.Logger = log
	// The first block needs the others; report while waiting instead of blocking silently.
	opts.SkipFirstBlockWait = true
	reg := metrics.NewRegistry() // served with the REST API
	opts.Metrics, opts.PrometheusListen = reg, cc.CometBFTMetricsListen(opts.RPCListen)
	n, err := chain.New(opts)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return explainChainStartError(cc.Home, err)
	}
	defer n.Close()
	stopREST := func() error { return nil }
	restURL := ""
	if cc.RESTAddr != "" {
		addr, stop, err := devnet.ServeREST(cc.RESTAddr, httpapi.Options{
			Service: router.ChainService{ChainViews: router.ChainViews{Chain: chainRPC{n.Client()}}}, Logger: log,
			Info:   map[string]string{"chain_id": n.ChainID(), "chain_rpc": n.RPCURL(), "role": config.RoleChain},
			Blocks: n.Client().RecentBlocks, Metrics: reg,
		})
		if err != nil {
			return explainChainStartError(cc.Home, err)
		}
		stopREST, restURL = sync.OnceValue(stop), "http://"+addr+"/v1"
		defer func() { _ = stopREST() }() // for early returns; Ctrl-C stops it below and reports
	}

	name := filepath.Base(filepath.Clean(cc.Home))
	qctx := context.WithoutCancel(ctx) // the last status is read after Ctrl-C
	status := func() chainEvent {
		h, _ := n.Client().Height(qctx)
		return chainEvent{Event: "status", Height: h, Peers: n.NumPeers()}
	}
	emit := func(e chainEvent) error { return json.NewEncoder(g.stdout).Encode(e) }
	st := status()
	if g.json() {
		started := chainEvent{Event: "started", Validator: name, ChainID: n.ChainID(), Home: cc.Home, RPCURL: n.RPCURL(),
			P2PListen: opts.P2PListen, NodeID: n.P2PID(), RESTURL: restURL, CometBFTMetricsURL: n.PrometheusURL(), Height: st.Height, Peers: st.Peers}
		if err := emit(started); err != nil {
			return err
		}
	} else {
		printChainStarted(g, n, opts, restURL, st.Height)
	}
	report := func(e chainEvent) error {
		if g.json() {
			return emit(e)
		}
		_, err := fmt.Fprintf(g.stdout, "%s  height %d · %d peers\n", time.Now().Format(time.TimeOnly), e.Height, e.Peers)
		return err
	}

	interval := cc.StatusInterval.Duration
	poll := time.NewTicker(min(time.Second, interval))
	defer poll.Stop()
	lastReport, first := time.Now(), st.Height > 0
	for {
		select {
		case <-ctx.Done():
			st := status()
			if err := stopREST(); err != nil {
				log.Warn("stopping the REST API", "err", err)
			}
			if err := n.Close(); err != nil {
				return fmt.Errorf("stopping %s: %w", name, err)
			}
			if g.json() {
				return emit(chainEvent{Event: "stopped", Validator: name, Height: st.Height})
			}
			fmt.Fprintf(g.stdout, "stopped %s at height %d\n", name, st.Height)
			return nil
		case <-poll.C:
		}
		st := status()
		// Report at every interval, and at once when the first block commits.
		if time.Since(lastReport) >= interval || (!first && st.Height > 0) {
			first = first || st.Height > 0
			lastReport = time.Now()
			if err := report(st); err != nil {
				return err
			}
		}
	}
}

func printChainStarted(g *globals, n *chain.Node, opts chain.Options, restURL string, height int64) {
	w := g.stdout
	validators := 1 // chain init makes every other validator a persistent peer
	if opts.Peers != "" {
		validators += len(strings.Split(opts.Peers, ","))
	}
	fmt.Fprintf(w, "%s of chain %s is running (home %s)\n", filepath.Base(filepath.Clean(opts.Home)), n.ChainID(), opts.Home)
	fmt.Fprintf(w, "  RPC    %s\n", n.RPCURL())
	fmt.Fprintf(w, "  P2P    %s (node id %s)\n", opts.P2PListen, n.P2PID())
	if restURL != "" {
		fmt.Fprintf(w, "  REST   %s (chain views and transactions; jobs go to a router)\n", restURL)
		fmt.Fprintf(w, "  metrics %s/metrics (the ledger's)\n", strings.TrimSuffix(restURL, "/v1"))
	}
	if u := n.PrometheusURL(); u != "" {
		fmt.Fprintf(w, "  metrics %s (CometBFT's)\n", u)
	}
	fmt.Fprintf(w, "  peers  %d other validator(s), dialled until they answer\n", validators-1)
	if height == 0 && validators > 1 {
		fmt.Fprintf(w, "No blocks here yet: this validator first catches up from its peers, and the chain commits only\n"+
			"while %d of the %d validators run (more than 2/3 of equal stakes). Start the others with\n`omnisync chain start --home %s`.\n",
			2*validators/3+1, validators, filepath.Join(filepath.Dir(filepath.Clean(opts.Home)), "validator-K"))
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

func explainChainStartError(home string, err error) error {
	switch {
	case portInUse(err):
		return fmt.Errorf("%w\n(a port of this validator is taken: is it already running? Its RPC and P2P ports are in %s; pick another REST port with --rest-addr, port 0 = any free port)", err, filepath.Join(home, chain.HomeConfigFile))
	case dataLocked(err):
		return fmt.Errorf("%w\n(this validator's data is locked: it is probably already running)", err)
	}
	return err
}

// chainRPC gives the chain views what they need from a chain node's client.
type chainRPC struct{ c *chain.Client }

func (r chainRPC) BroadcastTx(ctx context.Context, tx []byte) (string, int64, error) {
	c, err := r.c.Broadcast(ctx, tx)
	return c.Hash, c.Height, err
}

func (r chainRPC) Query(ctx context.Context, path string, v any) error {
	return r.c.Query(ctx, path, v)
}
