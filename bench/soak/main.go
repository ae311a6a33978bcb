// Command soak runs many concurrent consumers against a fresh devnet and reports what
// became of every job: settled, refunded with a reason, or lost (still open, or left to
// expire). It exits 1 if any job was lost.
//
//	go run ./bench/soak -consumers 32 -jobs 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/devnet"
)

func main() {
	consumers := flag.Int("consumers", 32, "concurrent consumers, each submitting back to back")
	jobs := flag.Int("jobs", 1000, "jobs in all (rounded up to a multiple of -consumers)")
	size := flag.Int("size", 64, "side of the square int8 matrices")
	block := flag.Duration("block", 250*time.Millisecond, "block time")
	jobTimeout := flag.Duration("job-timeout", 10*time.Minute, "each job's timeout: the queue must drain within it")
	limit := flag.Duration("timeout", 30*time.Minute, "give up on the run after this long")
	flag.Parse()
	if err := run(*consumers, *jobs, *size, *block, *jobTimeout, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(consumers, jobs, size int, block, jobTimeout, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	home, err := os.MkdirTemp("", "omnisync-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	d, err := devnet.Start(ctx, devnet.Options{Home: home, BlockTime: block, RESTListen: "127.0.0.1:0", RPCListen: "127.0.0.1:0", P2PListen: "127.0.0.1:0"})
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
	fmt.Fprintf(os.Stderr, "soak: %d consumers × %d jobs of %d×%d, %s blocks\n", consumers, per, size, size, block)
	res, err := d.RunLoad(ctx, keys, per, size, jobTimeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: some submissions failed:", err)
	}
	lost := res.ByStatus["open"] + res.ByStatus[api.StatusExpired]
	pct := func(p int) time.Duration {
		if len(res.Latencies) == 0 {
			return 0
		}
		return res.Latencies[(len(res.Latencies)-1)*p/100].Round(time.Millisecond)
	}
	fmt.Printf("| submitted | settled | refunded with a reason | failed | lost | jobs/s | p50 | p90 | p99 |\n|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %d | %d | %d | %.1f | %s | %s | %s |\n", res.Submitted, res.ByStatus[api.StatusSettled],
		res.ByStatus[api.StatusCancelled], res.ByStatus[api.StatusFailed], lost,
		float64(res.ByStatus[api.StatusSettled])/res.Took.Seconds(), pct(50), pct(90), pct(99))
	for _, u := range res.Unsettled {
		fmt.Println("  ", u)
	}
	if lost > 0 || err != nil {
		return fmt.Errorf("%d jobs lost", lost)
	}
	return nil
}
