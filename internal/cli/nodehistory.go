package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/ledger"
)

func newNodeHistoryCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	var (
		before int64
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "history [NODE_ID]",
		Short: "Show a node's earnings and slashes: its settled jobs, failures and slashes, newest first",
		Long: fmt.Sprintf(`Shows a node's record on chain (--api: a REST API, GET /v1/nodes/{id}/history): its totals
(jobs settled and failed, OMNI earned and slashed) and a page of its entries, newest first.
A settled job shows what the node was paid from the job's escrow and rewarded from the
network-rewards pool; a failure, why; a slash, the stake it cost. The node is NODE_ID, or
the wallet's (--wallet). --limit sets the page size (1 to %d, default %d); the page's last
line gives the --before that reads the next one.`, ledger.MaxHistoryLimit, ledger.DefaultHistoryLimit),
		Example: `  omnisync node history --wallet node
  omnisync node history 4TWLMELZShDxz41cjJwL3nWxCUtd2h1vgR3WS2b2MXqM --limit 20
  omnisync node history 4TWLMELZShDxz41cjJwL3nWxCUtd2h1vgR3WS2b2MXqM --before 1200 -o json`,
		Args:              optionalArg("NODE_ID"),
		ValidArgsFunction: f.completeNodeIDs,
		PreRunE: func(*cobra.Command, []string) error {
			switch {
			case before < 0:
				return usageError{fmt.Errorf("--before %d: want a block height (1 or more), or 0 for the newest", before)}
			case limit < 0 || limit > ledger.MaxHistoryLimit:
				return usageError{fmt.Errorf("--limit %d: want 1 to %d, or 0 for %d", limit, ledger.MaxHistoryLimit, ledger.DefaultHistoryLimit)}
			}
			return nil
		},
		RunE: addressView(g, f, func(ctx context.Context, c *api.Client, addr string) (api.NodeHistory, error) {
			return c.NodeHistory(ctx, addr, before, limit)
		}, func(h api.NodeHistory) { printNodeHistory(g.stdout, h, limit) }),
	}
	f.addWalletFlags(cmd)
	// The node's wallet is "node" wherever the node daemon's is (config's default).
	if w := cmd.PersistentFlags().Lookup("wallet"); w != nil {
		w.DefValue, f.wallet = config.RoleNode, config.RoleNode
	}
	fl := cmd.Flags()
	fl.Int64Var(&before, "before", 0, "show entries below this block height (the previous page's next --before); 0: the newest")
	fl.IntVar(&limit, "limit", 0, fmt.Sprintf("entries per page, 1 to %d (0: %d)", ledger.MaxHistoryLimit, ledger.DefaultHistoryLimit))
	return cmd
}

// completeNodeIDs offers the ids of the nodes registered on chain, as --api lists them.
func (f *remoteFlags) completeNodeIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	nodes, err := f.client().Nodes(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	ids := make([]string, 0, len(nodes))
	for _, n := range nodes {
		ids = append(ids, n.ID+"\t"+n.GPUModel+", "+n.Region)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

func printNodeHistory(w io.Writer, h api.NodeHistory, limit int) {
	r := h.Record
	fmt.Fprintf(w, "Node:     %s\n", h.Node)
	slashes := "slashes"
	if r.Slashes == 1 {
		slashes = "slash"
	}
	fmt.Fprintf(w, "Jobs:     %d settled, %d failed (%d %s among them)\n", r.Settled, r.Failed, r.Slashes, slashes)
	fmt.Fprintf(w, "Earned:   %s (paid from escrow plus network rewards)\n", omni(r.Earned))
	fmt.Fprintf(w, "Slashed:  %s\n", omni(r.Slashed))
	if len(h.Entries) == 0 {
		fmt.Fprintln(w, "\nno settled jobs, failures or slashes yet")
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HEIGHT\tTIME\tKIND\tJOB\tPAID\tREWARD\tSLASHED\tREASON")
	for _, e := range h.Entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Height, unixTime(e.Time), e.Kind, orDash(e.JobID),
			omniOrDash(e.Paid), omniOrDash(e.Reward), omniOrDash(e.Amount), orDash(e.Reason))
	}
	_ = tw.Flush()
	if h.NextBefore > 0 {
		next := fmt.Sprintf("omnisync node history %s --before %d", h.Node, h.NextBefore)
		if limit > 0 {
			next += fmt.Sprintf(" --limit %d", limit)
		}
		fmt.Fprintf(w, "\nOlder entries: %s\n", next)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func omniOrDash(uomni uint64) string {
	if uomni == 0 {
		return "-"
	}
	return omni(uomni)
}
