package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

func newNodeListCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	var (
		online     bool
		containers bool
		region     string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered nodes: hardware, online or not, free GPUs, bid, reliability",
		Long: `Lists every node registered on chain as a router sees it (--api: its REST API): online
nodes first, then by bid. --online, --containers and --region narrow the list.`,
		Example: `  omnisync node list --online
  omnisync node list --containers --region eu-central -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				nodes, err := c.Nodes(ctx)
				if err != nil {
					return err
				}
				nodes = slices.DeleteFunc(nodes, func(n api.Node) bool {
					return (online && !n.Online) || (containers && n.Containers == "") || (region != "" && n.Region != region)
				})
				slices.SortStableFunc(nodes, func(a, b api.Node) int {
					if a.Online != b.Online {
						if a.Online {
							return -1
						}
						return 1
					}
					return int(min(max(int64(a.PricePerHour)-int64(b.PricePerHour), -1), 1))
				})
				if g.json() {
					return writeJSON(g.stdout, nodes)
				}
				printNodeList(g.stdout, nodes)
				return nil
			})
		},
	}
	f.addAPIFlag(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&online, "online", false, "only nodes heard from within the router's heartbeat TTL")
	fl.BoolVar(&containers, "containers", false, "only nodes that run container jobs")
	fl.StringVar(&region, "region", "", "only nodes in this region")
	return cmd
}

func printNodeList(w io.Writer, nodes []api.Node) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "no nodes")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tGPUS\tFREE\tVRAM\tTFLOPS\tREGION\tBID/GPU-H\tRELIABILITY\tCONTAINERS")
	for _, n := range nodes {
		state := "offline"
		if n.Online {
			state = "online"
		}
		if n.Status != "active" {
			state += ", " + n.Status
		}
		free := "-"
		if n.Online {
			free = fmt.Sprint(n.FreeGPUs)
		}
		rel := "-"
		if decided := n.JobsVerified + n.JobsFailed; decided > 0 {
			rel = fmt.Sprintf("%d%% of %d", n.JobsVerified*100/decided, decided)
		}
		ctr := orNone(n.Containers)
		if n.Unsandboxed {
			ctr += " (unsandboxed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d× %s\t%s\t%dGB\t%.1f\t%s\t%s\t%s\t%s\n", keys.Address(n.ID).Short(), state, n.GPUs,
			strings.TrimSpace(n.GPUModel), free, n.VRAMMiB/1024, n.TFLOPS, n.Region, omni(n.PricePerHour), rel, ctr)
	}
	_ = tw.Flush()
}
