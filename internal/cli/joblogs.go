package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// logPoll is how often job logs -f asks for more.
const logPoll = 500 * time.Millisecond

func newJobEventsCmd(g *globals, f *remoteFlags) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "events JOB_ID",
		Short: "Show a job's timeline: each state it went through, and why",
		Long: `Prints the job's events (escrowed, placed, assigned, running, computed, verifying,
settled…) with their times and reasons. With -f it follows the job until it ends.`,
		Args: namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			print := func(j api.Job, from int) int {
				if g.json() {
					return len(j.Events)
				}
				for _, e := range j.Events[min(from, len(j.Events)):] {
					fmt.Fprintf(g.stdout, "%s  %-10s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Stage, e.Message)
				}
				return max(from, len(j.Events))
			}
			if !follow {
				return f.run(cmd, func(ctx context.Context, c *api.Client) error {
					j, err := c.Job(ctx, args[0])
					if err != nil {
						return err
					}
					if g.json() {
						return writeJSON(g.stdout, append([]api.Event{}, j.Events...))
					}
					if print(j, 0) == 0 {
						fmt.Fprintln(g.stdout, noEvents(j))
					}
					return nil
				})
			}
			printed := 0
			j, err := f.client().WaitJob(cmd.Context(), args[0], func(j api.Job) { printed = print(j, printed) })
			if err != nil {
				return f.explain(fmt.Errorf("job %s: %w", args[0], err))
			}
			if g.json() {
				return writeJSON(g.stdout, append([]api.Event{}, j.Events...))
			}
			if printed == 0 {
				fmt.Fprintln(g.stdout, noEvents(j))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the job until it ends")
	return cmd
}

// noEvents says why a job has no timeline and what the chain records instead: a router
// keeps a job's events only while it holds the job, and one that restarted, or another
// router, knows only the chain's record.
func noEvents(j api.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "No events for job %s: the router no longer holds its timeline (a router keeps a job's events only while it runs the job); ", j.ID)
	fmt.Fprintf(&b, "the chain records it as %s", j.Status)
	if api.Final(j.Status) {
		b.WriteString(" (final)")
	}
	if j.Node != "" {
		fmt.Fprintf(&b, ", on node %s", j.Node)
	}
	if p := j.Payment; p != nil && j.Status == api.StatusSettled {
		fmt.Fprintf(&b, ", %s paid to the node, %s refunded", omni(p.PaidToNode), omni(p.Refunded))
	}
	b.WriteString(". `omnisync job status " + j.ID + "` shows the whole record.")
	return b.String()
}

func newJobLogsCmd(g *globals, f *remoteFlags) *cobra.Command {
	var (
		follow bool
		node   string
	)
	cmd := &cobra.Command{
		Use:   "logs JOB_ID",
		Short: "Print a container job's stdout and stderr (-f: as it runs)",
		Long: `Prints what the job's node wrote to stdout and stderr, read with a request signed by
the wallet (only the job's consumer may read them). A redundant job runs on three nodes:
--node picks whose log (the first with logs by default; the others are listed on stderr).
The router running the job keeps the last MiB of each node's log while it holds the job.`,
		Args: namedArgs("JOB_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := f.loadKey()
			if err != nil {
				return err
			}
			c, id, ctx := f.client(), args[0], cmd.Context()
			var from int64
			listed := false
			for {
				auth := api.SignOutputAuth(key, string(keys.AddressOfKey(key)), id, time.Minute, time.Now())
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				l, err := c.JobLogs(rctx, id, auth, node, from)
				cancel()
				if err != nil {
					return f.explain(err)
				}
				if l.Truncated && !g.json() {
					fmt.Fprintf(g.stderr, "[the log's first %d bytes are no longer kept]\n", l.From)
				}
				if !listed && len(l.Nodes) > 1 {
					fmt.Fprintf(g.stderr, "logs of %s (%d nodes logged this job: %s; pick one with --node)\n", l.Node, len(l.Nodes), strings.Join(l.Nodes, ", "))
					listed = true
				}
				node = l.Node
				if g.json() {
					if err := writeJSON(g.stdout, l); err != nil {
						return err
					}
				} else if _, err := g.stdout.Write(l.Data); err != nil {
					return err
				}
				from = l.Next
				if !follow || (l.Final && (l.EOF || len(l.Data) == 0)) {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(logPoll):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing as the job runs, until it ends")
	cmd.Flags().StringVar(&node, "node", "", "whose log, for a job that ran on several nodes")
	return cmd
}
