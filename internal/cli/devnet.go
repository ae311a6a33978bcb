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
	"github.com/omnisync/omnisync/internal/config"
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
	docker    string
	checkGPU  string
}

func newDevnetCmd(g *globals) *cobra.Command {
	f := &devnetFlags{}
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a whole OmniSync network in this process",
		Long: `Runs a single-validator CometBFT chain with the OMNI ledger, an OmniRouter with an embedded
NATS/JetStream server (nodes connect over WebSocket + TLS), three node daemons on the native
tensor runtime, a validator and the REST API, all on loopback. Where a Docker engine answers
(--docker auto), the nodes also run container jobs, each in its own hardened container. State
lives in --home; running again with the same home resumes the same chain.

With --demo it submits a verified job (C = A·B for two 512×512 int8 matrices) through the REST
API and prints who ran it, the verification verdict and how the payment was split. With Docker
it then builds a small static program into an image FROM scratch and runs it as a container job
on all three nodes, paid when two of their output archives agree (verification "redundant").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDevnet(cmd.Context(), g, f) },
	}
	home, _ := os.UserHomeDir()
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", filepath.Join(home, ".omnisync", "devnet"), "data directory (keys, chain, router state)")
	fl.BoolVar(&f.demo, "demo", false, "submit a demo job and report its settlement")
	fl.BoolVar(&f.demoExit, "demo-exit", false, "exit after the demo: status 0 only if the job settled verified (implies --demo)")
	fl.StringVar(&f.rest, "rest-addr", "127.0.0.1:7070", "REST API listen address (port 0 picks a free port)")
	fl.StringVar(&f.rpc, "rpc-addr", "127.0.0.1:26657", "CometBFT RPC listen address (port 0 picks a free port)")
	fl.StringVar(&f.p2p, "p2p-addr", "127.0.0.1:26656", "CometBFT P2P listen address (port 0 picks a free port)")
	fl.IntVar(&f.nodesPort, "nodes-port", 7422, "WebSocket+TLS port nodes connect to (0 picks a free port)")
	fl.StringVar(&f.docker, "docker", "auto", "container jobs on the local Docker engine: auto (when one answers), on (required) or off")
	fl.StringVar(&f.checkGPU, "check-gpu", config.CheckGPUAuto, "where the validator's Freivalds checks of int8 products compute: auto (a CUDA GPU when one answers), off (the CPU) or a GPU index")
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
	withDocker, noDocker, err := devnetDocker(ctx, f.docker)
	if err != nil {
		return err
	}
	if noDocker != "" {
		say("  · %s", noDocker)
	}
	gpu, where, closeGPU, err := openCheckGPU(f.checkGPU)
	if err != nil {
		return err
	}
	defer closeGPU()
	opts := devnet.Options{
		Home: f.home, RESTListen: f.rest, RPCListen: f.rpc, P2PListen: f.p2p, NodesPort: f.nodesPort,
		BlockTime: f.blockTime, Docker: withDocker, Logger: log, Progress: func(s string) { say("  ✓ %s", s) },
	}
	if gpu != nil {
		opts.GPU = gpu
	} else {
		say("  · validator %s", where)
	}
	d, err := devnet.Start(ctx, opts)
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
			if !g.json() {
				printOutcome(g, d, o)
			}
			if o.Status != api.StatusSettled || !o.Verified {
				code = 1
			}
			if code == 0 {
				c, err := runContainerDemo(ctx, g, d, say, noDocker)
				switch {
				case err != nil:
					fmt.Fprintln(g.stderr, "container demo failed:", err)
					code = 1
				case c == nil:
					o.ContainerSkipped = noDocker
				case c.Status != api.StatusSettled || !c.Verified:
					code = 1
				}
				o.Container = c
			}
			if g.json() {
				if err := writeJSON(g.stdout, o); err != nil {
					return err
				}
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

// devnetDocker decides whether the devnet's nodes run containers: mode auto probes the
// engine and, when none answers, says why in skip.
func devnetDocker(ctx context.Context, mode string) (use bool, skip string, err error) {
	switch mode {
	case "off":
		return false, "container jobs off (--docker off): the nodes run tensor jobs only", nil
	case "auto", "on":
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		perr := devnet.ProbeDocker(pctx)
		if perr == nil {
			return true, "", nil
		}
		if mode == "on" {
			return false, "", fmt.Errorf("--docker on: %w", perr)
		}
		return false, fmt.Sprintf("no Docker engine (%v): the nodes run tensor jobs only, and the container demo is skipped", perr), nil
	}
	return false, "", fmt.Errorf("--docker %q: want auto, on or off", mode)
}

// runContainerDemo runs the container demo when the nodes run containers, printing its
// progress and outcome; nil, nil when it was skipped (the reason is printed).
func runContainerDemo(ctx context.Context, g *globals, d *devnet.Devnet, say func(string, ...any), skipped string) (*devnet.ContainerOutcome, error) {
	if skipped != "" {
		say("\nContainer job skipped: %s", skipped)
		return nil, nil
	}
	say("\nContainer job: a wordcount program in an image FROM scratch, run on three nodes, paid when two outputs agree")
	start := time.Now()
	printed := 0
	o, err := d.RunContainerDemo(ctx, func(j api.Job) {
		for _, e := range j.Events[min(printed, len(j.Events)):] {
			say("  [%5.2fs] %-10s %s", time.Since(start).Seconds(), e.Stage, e.Message)
		}
		printed = max(printed, len(j.Events))
	})
	if err != nil {
		return nil, err
	}
	if !g.json() {
		printContainerOutcome(g, o)
	}
	return &o, nil
}

func printContainerOutcome(g *globals, o devnet.ContainerOutcome) {
	w := g.stdout
	omni := ledger.FormatOMNI
	verdict := "✗ NOT verified"
	if o.Verified {
		agreed := 0
		for _, r := range o.Replicas {
			if r.ResultDigest == o.ResultDigest {
				agreed++
			}
		}
		verdict = fmt.Sprintf("✓ verified (%d of %d replicas sealed, then revealed the same output archive)", agreed, len(o.Replicas))
	}
	fmt.Fprintf(w, "\nContainer result\n")
	fmt.Fprintf(w, "  job            %s (%s)\n", o.JobID, o.Status)
	fmt.Fprintf(w, "  image          %s (%s)\n", o.Image, o.ImageID)
	fmt.Fprintf(w, "  result digest  %s\n", o.ResultDigest)
	fmt.Fprintf(w, "  verification   %s\n", verdict)
	for _, r := range o.Replicas {
		fmt.Fprintf(w, "    replica %s  digest %s  paid %s OMNI (network reward included)\n", keys.Address(r.Node).Short(), shortDigest(r.ResultDigest), omni(r.Paid))
	}
	if p := o.Payment; p != nil {
		fmt.Fprintf(w, "  payment        budget %s OMNI, billed %.1f s per replica; cost %s, refunded %s\n",
			omni(p.Budget), float64(p.BilledMillis)/1000, omni(p.Cost), omni(p.Refunded))
	}
	fmt.Fprintf(w, "  exit code      %d\n", o.ExitCode)
	fmt.Fprintf(w, "  outputs/summary.txt\n")
	for _, line := range strings.Split(strings.TrimRight(o.Summary, "\n"), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	fmt.Fprintf(w, "  took           %.2fs from submit to %s\n", o.Seconds, o.Status)
}

// shortDigest abbreviates sha256:<hex> to its first 12 hex digits; "-" for none.
func shortDigest(d string) string {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) >= 12 {
		return h[:12]
	}
	if d == "" {
		return "-"
	}
	return d
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
