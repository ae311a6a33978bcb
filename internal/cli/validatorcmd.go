package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/docker"
	"github.com/omnisync/omnisync/internal/validator"
)

func newValidatorRunCmd(g *globals) *cobra.Command {
	var d *daemonFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the verifier daemon until Ctrl-C: check results and attest on chain",
		Long: `Dials a router's nodes URL (--router wss://HOST:PORT, trusting --router-ca), takes the
verification requests it is sent, re-derives what it checks from the chain (--chain-rpc) and
attests the verdict on chain. Its wallet must be a validator's account: in a network from
"chain init", DIR/validator-K/account.json.

Container jobs the chain draws for audit are checked by running them again: that needs
--containers docker (a Docker engine this user may use, --docker-host; --gpu-devices for
jobs that ask for GPUs). With --containers none, the default, such audits are refused and
left to other validators; tensor jobs are checked either way.

Settings come from flags, then OMNISYNC_VALIDATOR_* variables, then the [validator] table of
--config, then the defaults; "omnisync config print --role validator" shows the result.`,
		Example: `  omnisync validator run --wallet /var/lib/omnisync/chain/validator-1/account.json \
    --router wss://router.example.org:7422 --router-ca ca.pem --chain-rpc http://127.0.0.1:26657`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runValidator(cmd, g, d) },
	}
	d = addDaemonFlags(cmd, config.RoleValidator)
	return cmd
}

func runValidator(cmd *cobra.Command, g *globals, d *daemonFlags) error {
	ctx := cmd.Context()
	c, err := d.load(cmd)
	if err != nil {
		return err
	}
	if err := c.Require(config.RoleValidator, "router"); err != nil {
		return err
	}
	vc := c.Validator
	log, err := g.logger()
	if err != nil {
		return err
	}
	key, err := loadWallet(vc.WalletDir, vc.Wallet)
	if err != nil {
		return err
	}
	client, chainID, err := connectChain(ctx, vc.ChainRPC, log)
	if err != nil {
		return err
	}
	id := keys.AddressOfKey(key)
	if err := checkValidator(ctx, client, id); err != nil {
		return err
	}
	roots, err := routerRoots(vc.RouterCA)
	if err != nil {
		return err
	}
	opts := vc.Options()
	opts.Key, opts.Chain, opts.RootCAs, opts.Logger = key, chain.NewWallet(client, key, chainID), roots, log
	if vc.Containers == config.ContainersDocker {
		r, err := docker.New(ctx, docker.Options{Host: vc.DockerHost, Instance: "validator", GPUs: vc.GPUDevices})
		if err != nil {
			return fmt.Errorf("%w\n(containers = docker needs a Docker engine this user may use; or set containers = none)", err)
		}
		defer func() { _ = r.Close() }()
		fmt.Fprintf(g.stderr, "container audits: docker (engine API %s), GPUs for jobs: %s\n", r.APIVersion(), orNone(strings.Join(vc.GPUDevices, ", ")))
		opts.Containers = runtime.Docker(r)
	}
	gpu, where, closeGPU, err := openCheckGPU(vc.CheckGPU)
	if err != nil {
		return err
	}
	defer closeGPU()
	fmt.Fprintln(g.stderr, where)
	if gpu != nil {
		opts.GPU = gpu
	}
	var metricsURL string
	var stopMetrics func() error
	if opts.Metrics, metricsURL, stopMetrics, err = g.serveMetrics(vc.MetricsAddr); err != nil {
		return err
	}
	defer func() { _ = stopMetrics() }()
	if err := client.RegisterMetrics(opts.Metrics); err != nil {
		return err
	}
	v, err := validator.New(opts)
	if err != nil {
		return err
	}
	if err := v.Start(ctx); err != nil {
		return explainDialError(err, vc.Router)
	}
	started := daemonEvent{Event: "started", Role: config.RoleValidator, ID: v.ID(), ChainID: chainID, ChainRPC: vc.ChainRPC, Router: vc.Router, MetricsURL: metricsURL}
	return g.serve(ctx, started, func() {
		fmt.Fprintf(g.stdout, "validator %s is verifying for %s (chain %s); Freivalds' check, %d rounds\n", v.ID(), vc.Router, chainID, vc.Rounds)
		g.printMetrics(metricsURL)
	}, v.Close)
}

// checkValidator fails unless id is in the validator set: the router admits only nodes
// and validators, and only validators' attestations count.
func checkValidator(ctx context.Context, c *chain.Client, id keys.Address) error {
	var vals []ledger.Validator
	if err := c.Query(ctx, "validators", &vals); err != nil {
		return fmt.Errorf("read the validator set: %w", err)
	}
	for _, v := range vals {
		if v.Address == id {
			return nil
		}
	}
	return fmt.Errorf("%s is not a validator, so routers refuse it and the chain ignores its attestations\n"+
		"(use a validator's account key, e.g. --wallet DIR/validator-1/account.json from `omnisync chain init`, or stake one: `omnisync stake add --role validator --amount 10000 --pubkey KEY`)", id)
}
