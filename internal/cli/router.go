package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
)

func newRouterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "router",
		Short: "Run OmniRouter: job intake, placement and the REST API",
	}
	cmd.AddCommand(newRouterRunCmd(g))
	return cmd
}

func newRouterRunCmd(g *globals) *cobra.Command {
	var d *daemonFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a router until Ctrl-C: NATS over WebSocket+TLS for nodes, REST for consumers",
		Long: `Runs OmniRouter with its embedded NATS/JetStream server, which nodes and validators dial
over WebSocket + TLS 1.3 (--nodes-addr), and the REST API consumers and wallets use
(--rest-addr). It reaches the chain through a chain node's CometBFT RPC (--chain-rpc).

The router's wallet must be listed in the chain's routers parameter: name it at genesis with
"omnisync chain init --router ADDRESS", or by governance (gov propose --param routers=…).

TLS: --tls-dir holds a CA and a server certificate; both are made on first start, the
certificate covering --tls-host names and loopback. Give nodes and validators the CA file it
prints (their --router-ca).

Settings come from flags, then OMNISYNC_ROUTER_* variables, then the [router] table of
--config, then the defaults; "omnisync config print --role router" shows the result.`,
		Example: `  omnisync router run --wallet router --chain-rpc http://10.0.0.1:26657 \
    --nodes-addr 0.0.0.0:7422 --tls-host router.example.org --rest-addr 0.0.0.0:7070
  omnisync router run --config /etc/omnisync/omnisync.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runRouter(cmd, g, d) },
	}
	d = addDaemonFlags(cmd, config.RoleRouter)
	return cmd
}

func runRouter(cmd *cobra.Command, g *globals, d *daemonFlags) error {
	ctx := cmd.Context()
	c, err := d.load(cmd)
	if err != nil {
		return err
	}
	rc := c.Router
	log, err := g.logger()
	if err != nil {
		return err
	}
	key, err := loadWallet(rc.WalletDir, rc.Wallet)
	if err != nil {
		return err
	}
	client, chainID, err := connectChain(ctx, rc.ChainRPC, log)
	if err != nil {
		return err
	}
	id := keys.AddressOfKey(key)
	if err := checkListedRouter(ctx, client, id); err != nil {
		return err
	}
	opts, err := rc.Options()
	if err != nil {
		return err
	}
	opts.Key, opts.Chain, opts.Logger = key, chain.NewWallet(client, key, chainID), log
	hosts := rc.TLSHosts
	if ip := net.ParseIP(opts.Host); opts.Host != "" && (ip == nil || !ip.IsUnspecified()) && !slices.Contains(hosts, opts.Host) {
		hosts = append(hosts, opts.Host) // the address it listens on is one nodes may dial
	}
	reg := metrics.NewRegistry()
	if err := client.RegisterMetrics(reg); err != nil {
		return err
	}
	rs, err := devnet.StartRouter(ctx, devnet.RouterOptions{
		Router: opts, TLSDir: rc.TLSDir, TLSHosts: hosts, RESTListen: rc.RESTAddr, Logger: log, Metrics: reg,
		Info:   map[string]string{"chain_id": chainID, "chain_rpc": rc.ChainRPC, "role": config.RoleRouter},
		Blocks: client.RecentBlocks,
	})
	if err != nil {
		return explainRouterStartError(err)
	}
	nodesURL := dialURL(rs.Router.NodesURL(), opts.Host, rc.TLSHosts)
	started := daemonEvent{
		Event: "started", Role: config.RoleRouter, ID: string(id), ChainID: chainID, ChainRPC: rc.ChainRPC,
		NodesURL: nodesURL, NodesListen: listenAddr(rs.Router.NodesURL(), opts.Host), RESTURL: rs.RESTURL() + "/v1",
		CAFile: rs.TLS.CA, TLSHosts: hosts,
	}
	if opts.Cluster != nil {
		started.Cluster, started.ClusterAddr, started.Peers = opts.Cluster.Name, rs.Router.ClusterAddr(), rs.Router.Peers()
	}
	return g.serve(ctx, started, func() {
		w := g.stdout
		fmt.Fprintf(w, "router %s is running on chain %s (RPC %s)\n", id, chainID, rc.ChainRPC)
		fmt.Fprintf(w, "  nodes  %s (listening on %s; WebSocket + TLS 1.3)\n", started.NodesURL, started.NodesListen)
		fmt.Fprintf(w, "  REST   %s\n", started.RESTURL)
		fmt.Fprintf(w, "  CA     %s\n", rs.TLS.CA)
		fmt.Fprintf(w, "         give this file to every node and validator: --router-ca FILE --router %s\n", started.NodesURL)
		fmt.Fprintf(w, "  cert   valid for %s (add names nodes dial with --tls-host)\n", strings.Join(certHosts(hosts), ", "))
		if started.Cluster != "" {
			fmt.Fprintf(w, "  cluster %s: routes on %s (mutual TLS, the CA above), peers now %v\n", started.Cluster, started.ClusterAddr, started.Peers)
			fmt.Fprintf(w, "         nodes may list every router: --router wss://A:PORT,wss://B:PORT,…\n")
		}
	}, rs.Close)
}

// checkListedRouter fails unless the chain lists id as a router: the ledger refuses every
// escrow and assignment from anyone else, so starting would only fail each job later.
func checkListedRouter(ctx context.Context, c *chain.Client, id keys.Address) error {
	var p ledger.Params
	if err := c.Query(ctx, "params", &p); err != nil {
		return fmt.Errorf("read the chain's parameters: %w", err)
	}
	if slices.Contains(p.Routers, id) {
		return nil
	}
	return fmt.Errorf("%s is not in the chain's routers parameter (listed: %d), so the chain would refuse every job it escrows\n"+
		"(name it at genesis with `omnisync chain init --router %s`, or by governance: `omnisync gov propose --param routers='[…,\"%s\"]'`)",
		id, len(p.Routers), id, id)
}

// dialURL is the nodes URL to hand out: on the name nodes dial (the first --tls-host) when
// the router listens on every interface, else the URL the router reports.
func dialURL(nodesURL, host string, tlsHosts []string) string {
	ip := net.ParseIP(host)
	if (host == "" || ip != nil && ip.IsUnspecified()) && len(tlsHosts) > 0 {
		if u, err := url.Parse(nodesURL); err == nil {
			return "wss://" + net.JoinHostPort(tlsHosts[0], u.Port())
		}
	}
	return nodesURL
}

// listenAddr is the host:port the router bound.
func listenAddr(nodesURL, host string) string {
	u, err := url.Parse(nodesURL)
	if err != nil {
		return nodesURL
	}
	return net.JoinHostPort(host, u.Port())
}

func explainRouterStartError(err error) error {
	if portInUse(err) {
		return fmt.Errorf("%w\n(a port is taken: is a router or devnet already running? Pick others with --nodes-addr and --rest-addr; port 0 picks a free one)", err)
	}
	if dataLocked(err) {
		return fmt.Errorf("%w\n(--store-dir is in use: is another router running with it?)", err)
	}
	return err
}

// certHosts is what transport.EnsureTLS puts in the certificate: the hosts given, then loopback.
func certHosts(hosts []string) []string {
	var out []string
	for _, h := range append(slices.Clone(hosts), "127.0.0.1", "::1", "localhost") {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}
