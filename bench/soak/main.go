// Command soak runs many concurrent consumers against a fresh devnet and reports what
// became of every job: settled, refunded with a reason, or lost (still open, or left to
// expire). It exits 1 if any job was lost.
//
//	go run ./bench/soak -consumers 32 -jobs 1000
//
// Issue #12's scenario (each consumer waits for its job before the next), with the strict
// signer as a baseline: add -wait, and run once more with -strict.
//
//	go run ./bench/soak -consumers 16 -jobs 80 -wait [-strict] [-nodes 12]
package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/gc"
)

func main() {
	gc.Tune(os.Getenv) // as the omnisync binary runs
	consumers := flag.Int("consumers", 32, "concurrent consumers, each submitting back to back")
	jobs := flag.Int("jobs", 1000, "jobs in all (rounded up to a multiple of -consumers)")
	size := flag.Int("size", 64, "side of the square int8 matrices")
	block := flag.Duration("block", 250*time.Millisecond, "block time")
	jobTimeout := flag.Duration("job-timeout", 10*time.Minute, "each job's timeout: the queue must drain within it")
	limit := flag.Duration("timeout", 30*time.Minute, "give up on the run after this long")
	wait := flag.Bool("wait", false, "each consumer waits for its job to end before submitting the next")
	strict := flag.Bool("strict", false, "router, validator and nodes send one tx per key per block (the signer before pipelining)")
	nodes := flag.Int("nodes", 3, "devnet nodes (one simulated GPU each)")
	flag.Parse()
	o := devnet.Options{BlockTime: *block, Nodes: *nodes, StrictSigning: *strict}
	if err := run(o, *consumers, *jobs, *size, *jobTimeout, *limit, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(o devnet.Options, consumers, jobs, size int, jobTimeout, limit time.Duration, wait bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	home, err := os.MkdirTemp("", "omnisync-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	o.Home, o.RESTListen, o.RPCListen, o.P2PListen = home, "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	d, err := devnet.Start(ctx, o)
	if err != nil {
		return err
	}
	defer d.Close()
	per := (jobs + consumers - 1) / consumers
	// Every queued job holds its budget (1 OMNI) in escrow; the transfer burns 2%.
	keys, err := d.FundConsumers(ctx, consumers, uint64(per)*11/10+2)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "soak: %d consumers × %d jobs of %d×%d, %s blocks, %d nodes, strict signer %v, waiting %v\n",
		consumers, per, size, size, o.BlockTime, o.Nodes, o.StrictSigning, wait)
	run := d.RunLoad
	if wait {
		run = func(ctx context.Context, keys []ed25519.PrivateKey, per, size int, timeout time.Duration) (devnet.LoadResult, error) {
			return devnet.RunLoadWaiting(ctx, api.NewClient(d.RESTURL()), devnet.ChainID, keys, per, size, timeout)
		}
	}
	res, err := run(ctx, keys, per, size, jobTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: some submissions failed:", err)
	}
	lost := res.ByStatus["open"] + res.ByStatus[api.StatusExpired]
	pct := func(p int) time.Duration { return res.Percentile(float64(p) / 100).Round(time.Millisecond) }
	fmt.Printf("| submitted | settled | refunded with a reason | failed | lost | jobs/s | p50 | p90 | p99 |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %d | %d | %d | %.1f | %s | %s | %s |\n", res.Submitted, res.ByStatus[api.StatusSettled],
		res.ByStatus[api.StatusCancelled], res.ByStatus[api.StatusFailed], lost,
		res.SettledPerSecond(), pct(50), pct(90), pct(99))
	for _, u := range res.Unsettled {
		fmt.Println("  ", u)
	}
	if lost > 0 || err != nil {
		return fmt.Errorf("%d jobs lost", lost)
	}
	return nil
}
