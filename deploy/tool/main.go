// Command tool does the two things deploy/ needs that the omnisync CLI has no command for
// yet: make the router's TLS files before the network starts, so that they can be mounted
// read-only and nodes can be given the CA at once, and submit the demo job as a consumer
// through a router's REST API (a `job submit` command is issue #11).
//
//	tool tls [--share-ca CADIR] DIR HOST... the CA (made, or CADIR's) and a router's certificate for HOSTs
//	tool demo --api URL --wallet FILE       one verified job, followed to settlement
//	tool load --api URL --wallet FILE       small jobs back to back, each followed to its end,
//	                                        with what the nodes were paid and lost to slashes
//	tool nodes --api URL                    each node's verified and failed jobs, as JSON
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/transport"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tool:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a command: tls DIR HOST... | demo --api URL --wallet FILE")
	}
	switch args[0] {
	case "tls":
		args = args[1:]
		if len(args) > 1 && args[0] == "--share-ca" {
			// A router of a cluster: its peers' CA, so routes and nodes trust it too.
			if err := transport.ShareCA(args[1], args[2]); err != nil {
				return err
			}
			args = args[2:]
		}
		if len(args) < 2 {
			return errors.New("usage: tls [--share-ca CADIR] DIR HOST... (the names nodes dial the router by)")
		}
		files, err := makeTLS(args[0], args[1:])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, files.CA)
		return nil
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "load":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "nodes":
		return runNodes(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: want tls, demo, load or nodes", args[0])
}

// makeTLS makes what `router run --tls-dir DIR --tls-host HOST...` would make on its first
// start, so that the router finds it complete and only reads it.
func makeTLS(dir string, hosts []string) (*transport.TLSFiles, error) {
	return transport.EnsureTLS(dir, hosts)
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	restURL := fs.String("api", "http://127.0.0.1:7070", "the router's REST API")
	wallet := fs.String("wallet", "", "the consumer's key file (Solana keypair JSON)")
	asJSON := fs.Bool("json", false, "print the outcome as one JSON object (progress goes to stderr)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wallet == "" {
		return errors.New("demo: --wallet FILE is required")
	}
	key, err := keyfile.Load(*wallet)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	if !*asJSON {
		say = func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	}
	o, err := submitDemo(ctx, api.NewClient(*restURL), key, say)
	if err != nil {
		return err
	}
	o.RESTURL = *restURL
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(o); err != nil {
			return err
		}
	} else {
		printOutcome(stdout, o, keys.AddressOfKey(key))
	}
	if o.Status != api.StatusSettled || !o.Verified || !o.OutputVerified {
		return fmt.Errorf("job %s ended %s (verified %t): %s", o.JobID, o.Status, o.Verified, o.Verdict)
	}
	return nil
}

// submitDemo does what `omnisync devnet --demo` does, against any router: it submits the
// devnet's demo job signed by key, follows it to a final status and, once it settled,
// downloads the output with a signed request and checks it against the settled digest.
func submitDemo(ctx context.Context, c *api.Client, key ed25519.PrivateKey, say func(string, ...any)) (devnet.Outcome, error) {
	health, err := c.Health(ctx)
	if err != nil {
		return devnet.Outcome{}, fmt.Errorf("router REST API: %w", err)
	}
	consumer := string(keys.AddressOfKey(key))
	acc, err := c.Account(ctx, consumer)
	if err != nil {
		return devnet.Outcome{}, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	say("Demo job on chain %s: C = A·B for two %d×%d int8 matrices, verified with Freivalds' check", health["chain_id"], devnet.DemoSize, devnet.DemoSize)
	say("  consumer %s holds %s OMNI", consumer, ledger.FormatOMNI(acc.Balance))
	start, printed := time.Now(), 0
	o, err := devnet.RunDemoAt(ctx, c, key, health["chain_id"], func(j api.Job) {
		for _, e := range j.Events[min(printed, len(j.Events)):] {
			say("  [%5.2fs] %-10s %s", time.Since(start).Seconds(), e.Stage, e.Message)
		}
		printed = max(printed, len(j.Events))
	}, func(line string) { say("  %s", line) })
	o.RPCURL = health["chain_rpc"]
	return o, err
}

func printOutcome(w io.Writer, o devnet.Outcome, consumer keys.Address) {
	omni := ledger.FormatOMNI
	verdict := "✗ NOT verified " + o.Verdict
	if o.Verified {
		verdict = "✓ verified (Freivalds' check)"
	}
	fmt.Fprintf(w, "\nResult\n")
	fmt.Fprintf(w, "  job           %s (%s, %.2fs from submit)\n", o.JobID, o.Status, o.SecondsToDone)
	fmt.Fprintf(w, "  node          %s (score %d.%02d%%)\n", o.NodeID, o.NodeScoreBP/100, o.NodeScoreBP%100)
	fmt.Fprintf(w, "  result digest %s\n", o.ResultDigest)
	fmt.Fprintf(w, "  verification  %s\n", verdict)
	fmt.Fprintf(w, "  payment       budget %s OMNI: node %s, burned %s, fee %s, refunded %s (billed %.1f GPU-s)\n",
		omni(o.BudgetUomni), omni(o.PaidUomni), omni(o.BurnedUomni), omni(o.FeeUomni), omni(o.RefundedUomni), float64(o.BilledMillis)/1000)
	for _, k := range []string{"create", "assign", "result", "attest"} {
		if h, ok := o.Txs[k]; ok {
			fmt.Fprintf(w, "  tx %-10s %s\n", k, h)
		}
	}
	fmt.Fprintf(w, "  consumer      %s\n", consumer)
}

// loadReport is what `tool load` prints: one JSON object.
type loadReport struct {
	// Submitted counts the jobs the chain escrowed: those whose submission was answered,
	// and those it was not (Unacked).
	Submitted int            `json:"submitted"`
	ByStatus  map[string]int `json:"by_status"`
	Lost      int            `json:"lost"`
	// Unacked counts jobs the chain escrowed whose submission the consumer never heard
	// answered (the router died mid-request): the consumer's sequence moved past them.
	// They are followed too, and counted in ByStatus and Lost.
	Unacked   int      `json:"unacked"`
	Unsettled []string `json:"unsettled,omitempty"`
	Seconds   float64  `json:"seconds"`
	// Overpaid is what the nodes' balances grew by beyond what the chain's settlements of
	// this run's jobs paid them (must be 0: nothing is paid twice); OverpaidJobs counts
	// it in jobs' worth, rounded up. Slashed lists the nodes whose stake fell.
	Overpaid     uint64   `json:"overpaid_uomni"`
	OverpaidJobs int      `json:"paid_twice"`
	Slashed      []string `json:"slashed,omitempty"`
	SlashedNodes int      `json:"slashed_nodes"`
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	restURL := fs.String("api", "http://127.0.0.1:7070", "the router's REST API")
	followURL := fs.String("follow-api", "", "another router's REST API to follow the jobs through (default --api)")
	wallet := fs.String("wallet", "", "the consumer's key file (Solana keypair JSON)")
	jobs := fs.Int("jobs", 8, "jobs to submit, back to back")
	size := fs.Int("size", 64, "side of the square int8 matrices")
	jobTimeout := fs.Duration("job-timeout", 5*time.Minute, "each job's timeout")
	async := fs.Bool("async", false, "submit Async: each job answered once the mempool admits its escrow, the next signed at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	key, err := keyfile.Load(*wallet)
	if err != nil {
		return err
	}
	c, follow := api.NewClient(*restURL), api.NewClient(*restURL)
	if *followURL != "" {
		follow = api.NewClient(*followURL)
	}
	health, err := c.Health(ctx)
	if err != nil {
		return fmt.Errorf("router REST API: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *jobTimeout+time.Minute)
	defer cancel()
	consumer := string(keys.AddressOfKey(key))
	before, err := c.Account(ctx, consumer)
	if err != nil {
		return err
	}
	nodesBefore, err := nodeHoldings(ctx, c)
	if err != nil {
		return err
	}
	load := devnet.RunLoadVia
	if *async {
		load = devnet.RunLoadViaAsync
	}
	res, err := load(ctx, c, follow, health["chain_id"], []ed25519.PrivateKey{key}, *jobs, *size, *jobTimeout)
	if err != nil {
		fmt.Fprintln(stderr, "load: some submissions failed:", err)
	}
	after, err := follow.Account(ctx, consumer)
	if err != nil {
		return err
	}
	rep := loadReport{Submitted: res.Submitted, ByStatus: res.ByStatus, Unsettled: res.Unsettled, Seconds: res.Took.Seconds()}
	// A job whose submission went unanswered may still have been escrowed: the chain's
	// sequence passed it, and it must end like any other. Each such sequence is found by
	// the ids the load followed, wherever in the batch it fell.
	followed := make(map[string]bool, len(res.IDs))
	for _, id := range res.IDs {
		followed[id] = true
	}
	for seq := before.Seq; seq < after.Seq; seq++ {
		id := ledger.JobID(keys.AddressOfKey(key), seq)
		if followed[id] {
			continue
		}
		rep.Unacked++
		rep.Submitted++
		j, err := devnet.FollowToEnd(ctx, follow, id)
		status := j.Status
		if err != nil {
			status = "open"
		}
		rep.ByStatus[status]++
		if status != api.StatusSettled {
			rep.Unsettled = append(rep.Unsettled, fmt.Sprintf("%s (unanswered submission): %s %s", id, status, j.Error))
		}
	}
	rep.Lost = rep.ByStatus["open"] + rep.ByStatus[api.StatusExpired]
	// Each job that did not settle, with the reason its consumer reads, also goes to
	// stderr, which deploy/chaos prints under the fault's row: a refund in a CI log then
	// says why.
	for _, u := range rep.Unsettled {
		fmt.Fprintln(stderr, "not settled:", u)
	}
	if err := rep.checkPayments(ctx, follow, nodesBefore, keys.AddressOfKey(key), before.Seq, after.Seq-before.Seq); err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// holding is a node's balance and stake.
type holding struct{ balance, stake uint64 }

func nodeHoldings(ctx context.Context, c *api.Client) (map[string]holding, error) {
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]holding, len(nodes))
	for _, n := range nodes {
		acc, err := c.Account(ctx, n.ID)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
		out[n.ID] = holding{balance: acc.Balance, stake: n.Stake}
	}
	return out, nil
}

// checkPayments compares what the nodes gained with what the chain settled for the run's
// jobs (sequences from seq0, count of them) and notes every node whose stake fell.
func (rep *loadReport) checkPayments(ctx context.Context, c *api.Client, before map[string]holding, consumer keys.Address, seq0, count uint64) error {
	after, err := nodeHoldings(ctx, c)
	if err != nil {
		return err
	}
	var paid, gained, perJob uint64
	for seq := seq0; seq < seq0+count; seq++ {
		j, err := c.Job(ctx, ledger.JobID(consumer, seq))
		if err != nil {
			continue // never escrowed: no payment either
		}
		if p := j.Payment; p != nil && j.Status == api.StatusSettled {
			paid += p.PaidToNode + p.NetworkReward // the reward comes from the pool, on top
			perJob = max(perJob, p.PaidToNode+p.NetworkReward)
		}
	}
	for id, a := range after {
		b := before[id]
		if a.balance > b.balance {
			gained += a.balance - b.balance
		}
		if a.stake < b.stake {
			rep.Slashed = append(rep.Slashed, id)
			rep.SlashedNodes++
		}
	}
	if gained > paid {
		rep.Overpaid = gained - paid
		rep.OverpaidJobs = 1
		if perJob > 0 {
			rep.OverpaidJobs = int((rep.Overpaid + perJob - 1) / perJob)
		}
	}
	return nil
}

func runNodes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	restURL := fs.String("api", "http://127.0.0.1:7070", "the router's REST API")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nodes, err := api.NewClient(*restURL).Nodes(ctx)
	if err != nil {
		return err
	}
	out := map[string][2]uint64{}
	for _, n := range nodes {
		out[n.ID] = [2]uint64{n.JobsVerified, n.JobsFailed}
	}
	return json.NewEncoder(stdout).Encode(out)
}
