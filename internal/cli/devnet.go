package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

type devnetFlags struct {
	home      string
	demo      bool
	demoExit  bool
	rest      string
	rpc       string
	p2p       string
	nodesPort int
	blockTime time.Duration
}

func newDevnetCmd(g *globals) *cobra.Command {
	f := &devnetFlags{}
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole OmniSync network in this process",
		Long: `Runs a single-validator CometBFT chain with the OMNI ledger, an OmniRouter with an embedded
NATS/JetStream server (nodes connect over WebSocket + TLS), three node daemons on the native
tensor runtime, a validator and the REST API, all on loopback. State lives in --home; running
again with the same home resumes the same chain.

With --demo it submits a verified job (C = A·B for two 512×512 int8 matrices) through the REST
API and prints who ran it, the verification verdict and how the payment was split.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDevnet(cmd.Context(), g, f) },
	}
	home, _ := os.UserHomeDir()
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", filepath.Join(home, ".omnisync", "devnet"), "data directory (keys, chain, router state)")
	fl.BoolVar(&f.demo, "demo", false, "submit a demo job and report its settlement")
	fl.BoolVar(&f.demoExit, "demo-exit", false, "exit after the demo: status 0 only if the job settled verified (implies --demo)")
	fl.StringVar(&f.rest, "rest-addr", "127.0.0.1:7070", "REST API listen address (port 0 picks a free port)")
	fl.StringVar(&f.rpc, "rpc-addr", "127.0.0.1:26657", "CometBFT RPC listen address")
	fl.StringVar(&f.p2p, "p2p-addr", "127.0.0.1:26656", "CometBFT P2P listen address")
	fl.IntVar(&f.nodesPort, "nodes-port", 7422, "WebSocket+TLS port nodes connect to")
	fl.DurationVar(&f.blockTime, "block-time", 250*time.Millisecond, "pause between blocks")
	return cmd
}

func runDevnet(ctx context.Context, g *globals, f *devnetFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	if f.demoExit {
		f.demo = true
	}
	// Progress goes to stderr in JSON mode so stdout holds exactly one JSON object.
	progressOut := g.stdout
	if g.json() {
		progressOut = g.stderr
	}
	say := func(format string, args ...any) { fmt.Fprintf(progressOut, format+"\n", args...) }
	say("OmniSync devnet: chain, router, %d nodes and a validator in this process (home %s)", 3, f.home)
	started := time.Now()
	d, err := devnet.Start(ctx, devnet.Options{
		Home: f.home, RESTListen: f.rest, RPCListen: f.rpc, P2PListen: f.p2p, NodesPort: f.nodesPort,
		BlockTime: f.blockTime, Logger: log, Progress: func(s string) { say("  ✓ %s", s) },
	})
	if err != nil {
		return explainStartError(err)
	}
	defer d.Close()
	say("  ready in %.1fs", time.Since(started).Seconds())

	code := 0
	if f.demo {
		o, err := runDemo(ctx, d, say)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil // interrupted
		case err != nil:
			fmt.Fprintln(g.stderr, "demo failed:", err)
			code = 1
		default:
			if g.json() {
				if err := writeJSON(g.stdout, o); err != nil {
					return err
				}
			} else {
				printOutcome(g, d, o)
			}
			if o.Status != api.StatusSettled || !o.Verified {
				code = 1
			}
		}
		if f.demoExit {
			if code != 0 {
				return exitError{code}
			}
			return nil
		}
	}
	say("\nServing. REST %s/v1 · chain RPC %s · nodes %s", d.RESTURL(), d.RPCURL(), strings.TrimSuffix(d.NodesURL(), "/"))
	say("Press Ctrl-C to stop.")
	<-ctx.Done()
	say("\nstopping…")
	return nil
}

func explainStartError(err error) error {
	switch {
	case portInUse(err):
		return fmt.Errorf("%w\n(another devnet may be running; stop it, or pick other ports with --rest-addr, --rpc-addr, --p2p-addr and --nodes-port, port 0 = any free port)", err)
	case dataLocked(err):
		return fmt.Errorf("%w\n(another devnet is using this --home; stop it or pick another home)", err)
	}
	return err
}

// portInUse and dataLocked recognise the two ways a second copy of a daemon fails to start.
func portInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func dataLocked(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "resource temporarily unavailable") || strings.Contains(msg, "lock held")
}

func runDemo(ctx context.Context, d *devnet.Devnet, say func(string, ...any)) (devnet.Outcome, error) {
	say("\nDemo job: C = A·B for two %d×%d int8 matrices, verified with Freivalds' check", devnet.DemoSize, devnet.DemoSize)
	start := time.Now()
	printed := 0
	return d.RunDemo(ctx, func(j api.Job) {
		for _, e := range j.Events[min(printed, len(j.Events)):] {
			say("  [%5.2fs] %-10s %s", time.Since(start).Seconds(), e.Stage, e.Message)
		}
		printed = max(printed, len(j.Events))
	})
}

func printOutcome(g *globals, d *devnet.Devnet, o devnet.Outcome) {
	w := g.stdout
	omni := ledger.FormatOMNI
	verdict := "✗ NOT verified"
	if o.Verified {
		verdict = "✓ verified (Freivalds' check, exact modulo 2^61-1)"
	}
	fmt.Fprintf(w, "\nResult\n")
	fmt.Fprintf(w, "  job            %s (%s)\n", o.JobID, o.Status)
	fmt.Fprintf(w, "  node           %s\n", o.NodeID)
	if s := o.Scores; s != nil {
		fmt.Fprintf(w, "  score          %d.%02d%% = 0.35·compute %d + 0.30·latency %d + 0.20·reliability %d + 0.15·price %d (bp)\n",
			s.Total/100, s.Total%100, s.Compute, s.Latency, s.Reliability, s.Price)
	}
	fmt.Fprintf(w, "  result digest  %s\n", o.ResultDigest)
	fmt.Fprintf(w, "  verification   %s\n", verdict)
	if o.Verdict != "" && !o.Verified {
		fmt.Fprintf(w, "                 %s\n", o.Verdict)
	}
	fmt.Fprintf(w, "  payment        budget %s OMNI, billed %.1f GPU-s\n", omni(o.BudgetUomni), float64(o.BilledMillis)/1000)
	fmt.Fprintf(w, "    paid to node   %12s OMNI\n", omni(o.PaidUomni))
	fmt.Fprintf(w, "    %-14s %12s OMNI\n", burnLabel(d), omni(o.BurnedUomni))
	fmt.Fprintf(w, "    protocol fee   %12s OMNI\n", omni(o.FeeUomni))
	fmt.Fprintf(w, "    refunded       %12s OMNI\n", omni(o.RefundedUomni))
	fmt.Fprintf(w, "    network reward %12s OMNI to the node from the rewards pool (not from the budget)\n", omni(o.RewardUomni))
	fmt.Fprintf(w, "  transactions\n")
	for _, k := range []string{"create", "assign", "result", "attest"} {
		if h, ok := o.Txs[k]; ok {
			fmt.Fprintf(w, "    %-7s %s\n", k, h)
		}
	}
	fmt.Fprintf(w, "  took           %.2fs from submit to %s\n", o.SecondsToDone, o.Status)
	fmt.Fprintf(w, "  consumer       %s\n", keys.AddressOfKey(d.Keys.Consumer))
}

// burnLabel is "burned (2%)" with the chain's current burn rate, which governance may
// have changed since genesis; just "burned" when the rate cannot be read.
func burnLabel(d *devnet.Devnet) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p, err := api.NewClient(d.RESTURL()).Params(ctx)
	if err != nil {
		return "burned"
	}
	return burnLabelFor(p.BurnBP)
}

// burnLabelFor renders a burn rate in basis points: 200 is "burned (2%)", 150 "burned (1.5%)".
func burnLabelFor(bp uint64) string {
	if bp%100 == 0 {
		return fmt.Sprintf("burned (%d%%)", bp/100)
	}
	return strings.TrimRight(fmt.Sprintf("burned (%d.%02d", bp/100, bp%100), "0") + "%)"
}
