package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
)

// networkStatus is what omnisync status reports (--output json): the chain from its RPC,
// the rest from a router's REST API. Amounts in uomni.
type networkStatus struct {
	Chain       *chain.Status     `json:"chain,omitempty"`
	ChainError  string            `json:"chain_error,omitempty"`
	Router      map[string]string `json:"router"`
	Routers     []string          `json:"routers"`
	Nodes       int               `json:"nodes"`
	NodesOnline int               `json:"nodes_online"`
	GPUsOnline  map[string]int    `json:"gpus_online"` // by model
	GPUsFree    int               `json:"gpus_free"`
	Validators  int               `json:"validators"`
	Staked      uint64            `json:"validator_stake"`
	Supply      api.Supply        `json:"supply"`
	Voting      []api.Proposal    `json:"proposals_voting"`
	Work        *api.RouterStats  `json:"router_stats,omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	var rpc string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The network at a glance: chain height and block time, routers, nodes, validators, supply, votes",
		Long: `Reads the chain's height, latest block and average block time from a CometBFT RPC (--rpc),
and the routers, nodes online, GPUs, validators, supply and open proposals from a router's
REST API (--api). With block heights and the block time side by side, "voting ends at 145"
reads as a time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				st, err := readStatus(ctx, c, rpc)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, st)
				}
				printStatus(g.stdout, st, time.Now())
				return nil
			})
		},
	}
	f.addAPIFlag(cmd)
	cmd.Flags().StringVar(&rpc, "rpc", envOr(envRPCURL, defaultRPCURL), "CometBFT RPC of a chain node (env "+envRPCURL+")")
	return cmd
}

func readStatus(ctx context.Context, c *api.Client, rpc string) (networkStatus, error) {
	var st networkStatus
	var err error
	if st.Router, err = c.Health(ctx); err != nil {
		return st, err
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return st, err
	}
	st.Nodes, st.GPUsOnline = len(nodes), map[string]int{}
	for _, n := range nodes {
		if n.Online {
			st.NodesOnline++
			st.GPUsOnline[n.GPUModel] += int(n.GPUs)
			st.GPUsFree += n.FreeGPUs
		}
	}
	vals, err := c.Validators(ctx)
	if err != nil {
		return st, err
	}
	for _, v := range vals {
		if v.Power > 0 {
			st.Validators++
			st.Staked += v.Stake
		}
	}
	if st.Supply, err = c.Supply(ctx); err != nil {
		return st, err
	}
	p, err := c.Params(ctx)
	if err != nil {
		return st, err
	}
	st.Routers = p.Routers
	if work, err := c.Stats(ctx); err == nil {
		st.Work = &work // a chain node's REST API has none
	}
	props, err := c.Proposals(ctx)
	if err != nil {
		return st, err
	}
	for _, pr := range props {
		if pr.Status == "voting" {
			st.Voting = append(st.Voting, pr)
		}
	}
	// The chain's own view is a convenience: the rest stands without it.
	cl, err := chain.NewHTTPClient(rpc)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var cs chain.Status
		if cs, err = cl.Status(rctx); err == nil {
			st.Chain = &cs
		}
	}
	if err != nil {
		st.ChainError = fmt.Sprintf("chain RPC %s: %v", rpc, err)
	}
	return st, nil
}

func printStatus(w io.Writer, st networkStatus, now time.Time) {
	if c := st.Chain; c != nil {
		sync := ""
		if c.CatchingUp {
			sync = " (its RPC node is catching up)"
		}
		fmt.Fprintf(w, "Chain:       %s at height %d, latest block %s ago, lately a block every %s%s\n",
			c.ChainID, c.Height, now.Sub(c.Time).Round(100*time.Millisecond), c.BlockTime.Round(time.Millisecond), sync)
	} else {
		fmt.Fprintf(w, "Chain:       %s — %s\n", st.Router["chain_id"], st.ChainError)
	}
	fmt.Fprintf(w, "Routers:     %d on chain", len(st.Routers))
	if peers := st.Router["cluster_peers"]; peers != "" {
		fmt.Fprintf(w, "; this one's cluster peers: %s", peers)
	}
	fmt.Fprintln(w)
	models := make([]string, 0, len(st.GPUsOnline))
	for m, n := range st.GPUsOnline {
		models = append(models, fmt.Sprintf("%d× %s", n, m))
	}
	sort.Strings(models)
	fmt.Fprintf(w, "Nodes:       %d online of %d registered; GPUs online: %s (%d free)\n",
		st.NodesOnline, st.Nodes, orNone(strings.Join(models, ", ")), st.GPUsFree)
	if s := st.Work; s != nil {
		fmt.Fprintf(w, "Jobs:        %d settled in the last %s (%.1f a minute), %d waiting for a node, %d running; placement p50 %.0f ms, p90 %.0f ms\n",
			s.SettledInWindow, time.Duration(s.WindowSeconds)*time.Second, s.SettledPerMinute, s.Waiting, s.Running, s.PlacementP50Ms, s.PlacementP90Ms)
	}
	fmt.Fprintf(w, "Validators:  %d active, %s staked\n", st.Validators, omni(st.Staked))
	s := st.Supply
	fmt.Fprintf(w, "Supply:      %s total · %s staked · %s in escrow · %s burned\n", omni(s.Total), omni(s.Staked), omni(s.Escrowed), omni(s.Burned))
	if len(st.Voting) == 0 {
		fmt.Fprintf(w, "Governance:  no proposal is being voted on\n")
		return
	}
	slices.SortFunc(st.Voting, func(a, b api.Proposal) int { return int(a.VotingEnd - b.VotingEnd) })
	for _, p := range st.Voting {
		when := ""
		if c := st.Chain; c != nil && c.BlockTime > 0 {
			left := p.VotingEnd - c.Height
			when = fmt.Sprintf(" (in %d blocks, about %s)", left, (time.Duration(left) * c.BlockTime).Round(time.Second))
		}
		fmt.Fprintf(w, "Governance:  #%d %q: voting ends at height %d%s — yes %s, no %s, abstain %s\n",
			p.ID, p.Title, p.VotingEnd, when, omni(p.Yes), omni(p.No), omni(p.Abstain))
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
