package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/ledger"
)

// nodeStatus is what node status reports (--output json), amounts in uomni.
type nodeStatus struct {
	Node    api.Node `json:"node"`
	Balance uint64   `json:"balance"`
	// Reliability is verified jobs per decided job in basis points, or -1 before any.
	ReliabilityBP int64 `json:"reliability_bp"`
}

func newNodeStatusCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "status [ADDRESS]",
		Short: "Show a node's hardware, running jobs, earnings and reliability",
		Long: `Shows a node as a router sees it (--api: its REST API): the hardware it declared on chain,
whether it is online and which jobs its last heartbeat listed, its reliability (jobs verified
against jobs failed), its stake and bid, and the balance its earnings are paid into. The node
is the wallet's (--wallet), or ADDRESS.`,
		Example: `  omnisync node status --wallet node --api http://router.example.org:7070
  omnisync node status 4TWLMELZShDxz41cjJwL3nWxCUtd2h1vgR3WS2b2MXqM -o json`,
		Args:              optionalArg("ADDRESS"),
		ValidArgsFunction: f.completeNodeIDs,
		RunE:              addressView(g, f, readNodeStatus, func(st nodeStatus) { g.printNodeStatus(st, time.Now()) }),
	}
	f.addWalletFlags(cmd)
	// The node's wallet is "node" wherever the node daemon's is (config's default).
	if w := cmd.PersistentFlags().Lookup("wallet"); w != nil {
		w.DefValue, f.wallet = config.RoleNode, config.RoleNode
	}
	return cmd
}

// addressView is the RunE of a read command about one account, ADDRESS or the wallet's:
// read it, then print it as JSON or as text.
func addressView[T any](g *globals, f *remoteFlags, read func(context.Context, *api.Client, string) (T, error), text func(T)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return f.run(cmd, func(ctx context.Context, c *api.Client) error {
			addr, err := f.addressArg(args)
			if err != nil {
				return err
			}
			v, err := read(ctx, c, addr)
			if err != nil {
				return err
			}
			if g.json() {
				return writeJSON(g.stdout, v)
			}
			text(v)
			return nil
		})
	}
}

func readNodeStatus(ctx context.Context, c *api.Client, addr string) (nodeStatus, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nodeStatus{}, err
	}
	st := nodeStatus{ReliabilityBP: -1}
	found := false
	for _, n := range nodes {
		if n.ID == addr {
			st.Node, found = n, true
		}
	}
	if !found {
		return nodeStatus{}, fmt.Errorf("%w: %s is not a registered node (register it with `omnisync node register`)", api.ErrNotFound, addr)
	}
	acct, err := c.Account(ctx, addr)
	if err != nil {
		return nodeStatus{}, err
	}
	st.Balance = acct.Balance
	if decided := st.Node.JobsVerified + st.Node.JobsFailed; decided > 0 {
		st.ReliabilityBP = int64(st.Node.JobsVerified * 10_000 / decided)
	}
	return st, nil
}

func (g *globals) printNodeStatus(st nodeStatus, now time.Time) {
	n, o := st.Node, g.stdout
	state := "OFFLINE (no heartbeat within the router's TTL)"
	if n.Online {
		state = fmt.Sprintf("ONLINE (heartbeat %s ago)", now.Sub(n.LastHeartbeat).Round(100*time.Millisecond))
	}
	fmt.Fprintf(o, "Node:        %s — %s, %s on chain\n", n.ID, state, n.Status)
	fmt.Fprintf(o, "Hardware:    %s · %s\n", hardwareLine(ledger.Hardware{GPUModel: n.GPUModel, GPUs: n.GPUs, VRAMMiB: n.VRAMMiB,
		TFLOPSMilli: uint64(n.TFLOPS*1000 + 0.5)}), n.Region)
	switch {
	case !n.Online:
		fmt.Fprintf(o, "Running:     unknown while offline\n")
	case len(n.Running) == 0:
		fmt.Fprintf(o, "Running:     nothing (%d of %d GPUs free)\n", n.FreeGPUs, n.GPUs)
	default:
		fmt.Fprintf(o, "Running:     %s (%d of %d GPUs free)\n", strings.Join(n.Running, ", "), n.FreeGPUs, n.GPUs)
	}
	switch {
	case !n.Online:
	case n.Containers == "":
		fmt.Fprintf(o, "Containers:  none (tensor kernels only)\n")
	case n.Unsandboxed:
		fmt.Fprintf(o, "Containers:  %s — NOT SANDBOXED: jobs run as child processes on the host, for trusted consumers only\n", n.Containers)
	default:
		fmt.Fprintf(o, "Containers:  %s (sandboxed: no network, read-only root, no capabilities)\n", n.Containers)
	}
	rel := "no job decided yet"
	if st.ReliabilityBP >= 0 {
		rel = fmt.Sprintf("%d.%02d%%", st.ReliabilityBP/100, st.ReliabilityBP%100)
	}
	fmt.Fprintf(o, "Reliability: %s (%d verified, %d failed)\n", rel, n.JobsVerified, n.JobsFailed)
	fmt.Fprintf(o, "Earnings:    paid into its balance, now %s OMNI · stake %s OMNI · bid %s OMNI per GPU-hour\n",
		ledger.FormatOMNI(st.Balance), ledger.FormatOMNI(n.Stake), ledger.FormatOMNI(n.PricePerHour))
}
