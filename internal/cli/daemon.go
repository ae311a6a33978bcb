package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/transport"
)

// daemonFlags are what every daemon command takes: --config, and its role's settings as
// flags (config.BindFlags), which override the file and the environment.
type daemonFlags struct {
	role   string
	config string
}

func addDaemonFlags(cmd *cobra.Command, role string) *daemonFlags {
	d := &daemonFlags{role: role}
	fl := cmd.Flags()
	fl.StringVar(&d.config, "config", "", "TOML config file; its ["+role+"] table sets what flags do not (env "+config.EnvConfig+")")
	config.BindFlags(fl, role)
	// --rpc is what the wallet and chain commands call the chain's RPC URL.
	fl.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "rpc" {
			name = "chain-rpc"
		}
		return pflag.NormalizedName(name)
	})
	return d
}

// load merges defaults ← --config ← environment ← flags and validates the role's settings.
func (d *daemonFlags) load(cmd *cobra.Command) (*config.Config, error) {
	file := d.config
	if !cmd.Flags().Changed("config") {
		file = os.Getenv(config.EnvConfig)
	}
	c, err := config.Load(config.Inputs{File: file, Role: d.role, Flags: cmd.Flags()})
	if err != nil {
		return nil, err
	}
	if err := c.Validate(d.role); err != nil {
		return nil, err
	}
	return c, nil
}

// loadWallet reads a daemon's key the way the wallet commands do: a name in the wallet
// directory, or a path to a keypair file.
func loadWallet(dir, name string) (ed25519.PrivateKey, error) {
	return (&remoteFlags{walletDir: dir, wallet: name}).loadKey()
}

// connectChain reaches a chain node's CometBFT RPC, or the first of several (separated by
// commas) that answers, and asks which chain it runs. Switches from one to another later
// are logged to log.
func connectChain(ctx context.Context, rpc string, log *slog.Logger) (*chain.Client, string, error) {
	c, err := chain.NewHTTPClient(rpc)
	if err != nil {
		return nil, "", err
	}
	c.LogFailovers(log)
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	id, err := c.ChainID(qctx)
	if err != nil {
		if chain.Unreachable(err) {
			return nil, "", fmt.Errorf("cannot reach the chain RPC at %s: %v\n(start a chain node with `omnisync chain start`, or point --chain-rpc or %s at one)", rpc, err, envRPCURL)
		}
		return nil, "", fmt.Errorf("chain RPC at %s: %w", rpc, err)
	}
	return c, id, nil
}

// routerRoots is the trust root for a router's certificate: the CA file the router made
// (its tls_dir/ca.pem), or the system roots when none is given.
func routerRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pool, err := (&transport.TLSFiles{CA: caFile}).ClientRootCAs()
	if err != nil {
		return nil, fmt.Errorf("router CA: %w\n(copy the router's ca.pem, printed by `omnisync router run`, and pass it with --router-ca)", err)
	}
	return pool, nil
}

// daemonEvent is one line of a daemon command's --output json: "started" when it serves,
// "stopped" when it has shut down.
type daemonEvent struct {
	Event       string   `json:"event"`
	Role        string   `json:"role"`
	ID          string   `json:"id,omitempty"` // the daemon's account address
	ChainID     string   `json:"chain_id,omitempty"`
	ChainRPC    string   `json:"chain_rpc,omitempty"`
	Router      string   `json:"router,omitempty"`       // the router a node or validator dialled
	NodesURL    string   `json:"nodes_url,omitempty"`    // where nodes dial a router
	NodesListen string   `json:"nodes_listen,omitempty"` // the address the router bound
	RESTURL     string   `json:"rest_url,omitempty"`
	CAFile      string   `json:"ca_file,omitempty"`
	TLSHosts    []string `json:"tls_hosts,omitempty"`
	Runtime     string   `json:"runtime,omitempty"`
	Cluster     string   `json:"cluster,omitempty"`      // a router's cluster name
	ClusterAddr string   `json:"cluster_addr,omitempty"` // where its peers route to it
	Peers       []string `json:"peers,omitempty"`        // the peer routers it is routed to at start
	MetricsURL  string   `json:"metrics_url,omitempty"`  // where its Prometheus metrics are served
}

// serve reports that a daemon runs, waits for Ctrl-C or SIGTERM (cancelling ctx; see
// cmd/omnisync), then stops it and reports that.
func (g *globals) serve(ctx context.Context, started daemonEvent, printText func(), stop func() error) error {
	if g.json() {
		if err := json.NewEncoder(g.stdout).Encode(started); err != nil {
			_ = stop()
			return err
		}
	} else {
		printText()
		fmt.Fprintln(g.stdout, "Press Ctrl-C to stop.")
	}
	<-ctx.Done()
	if !g.json() {
		fmt.Fprintln(g.stdout, "stopping…")
	}
	if err := stop(); err != nil {
		return fmt.Errorf("stopping the %s: %w", started.Role, err)
	}
	if g.json() {
		return json.NewEncoder(g.stdout).Encode(daemonEvent{Event: "stopped", Role: started.Role, ID: started.ID})
	}
	fmt.Fprintf(g.stdout, "%s stopped\n", started.Role)
	return nil
}
