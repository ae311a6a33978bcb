package devnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/gc"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/router"
)

// BenchmarkSettledJobsPerSecond is issue #12's scenario: a devnet with 250 ms blocks and
// three nodes, 16 consumers each submitting small 64×64 jobs one after another (each
// waiting for its job to end before the next), measured as settled jobs per second and
// submit→settled p50/p90. The baseline, in the same run, is the strict signer (one tx per
// key per block, as before pipelining) for the router, validator and nodes. The devnet's
// nodes have one GPU each, so with three nodes the GPUs, not the chain, bound the rate;
// the run with twelve nodes shows the signer's own ceiling, the run after it adds batched
// assignments (router.Options.AssignWindow), and the last batched attestations and result
// commitments too (validator.Options.AttestWindow, node.Options.CommitWindow), each against
// the one before it as baseline.
//
//	go test ./internal/devnet -run '^$' -bench SettledJobsPerSecond -benchtime 1x
func BenchmarkSettledJobsPerSecond(b *testing.B) {
	const consumers, perConsumer, size = 16, 5, 64
	for _, mode := range []struct {
		name   string
		nodes  int
		strict bool
		window time.Duration // the router's AssignWindow: negative, one assignment per tx
		// results is the validator's AttestWindow and the nodes' CommitWindow: negative,
		// one attestation or commitment per tx
		results time.Duration
	}{
		{"nodes=3/strict", 3, true, -1, -1}, {"nodes=3/pipelined", 3, false, -1, -1},
		{"nodes=12/strict", 12, true, -1, -1}, {"nodes=12/pipelined", 12, false, -1, -1},
		{"nodes=12/pipelined/batched-assign", 12, false, 0, -1},
		{"nodes=12/pipelined/batched-all", 12, false, 0, 0},
	} {
		b.Run(mode.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			d, err := Start(ctx, Options{Home: b.TempDir(), BlockTime: 250 * time.Millisecond, Nodes: mode.nodes,
				StrictSigning: mode.strict, AssignWindow: mode.window, AttestWindow: mode.results, CommitWindow: mode.results})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			keys, err := d.FundConsumers(ctx, consumers, 100)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			var all LoadResult
			for range b.N {
				res, err := RunLoadWaiting(ctx, api.NewClient(d.RESTURL()), ChainID, keys, perConsumer, size, 2*time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				all = merge(all, res)
			}
			b.StopTimer()
			lost := all.Submitted - all.ByStatus[api.StatusSettled]
			b.ReportMetric(all.SettledPerSecond(), "settled-jobs/s")
			b.ReportMetric(all.Percentile(0.5).Seconds(), "p50-s")
			b.ReportMetric(all.Percentile(0.9).Seconds(), "p90-s")
			b.ReportMetric(float64(lost), "unsettled")
			b.Logf("%s: %d jobs, %v in %s; %.2f settled/s, p50 %s, p90 %s", mode.name, all.Submitted, all.ByStatus,
				all.Took.Round(time.Millisecond), all.SettledPerSecond(), all.Percentile(0.5).Round(time.Millisecond),
				all.Percentile(0.9).Round(time.Millisecond))
			if lost > 0 {
				b.Errorf("%d jobs did not settle: %v", lost, all.Unsettled)
			}
		})
	}
}

// merge adds one load run's result to another's.
func merge(a, b LoadResult) LoadResult {
	if a.ByStatus == nil {
		a.ByStatus = map[string]int{}
	}
	a.Submitted += b.Submitted
	for k, v := range b.ByStatus {
		a.ByStatus[k] += v
	}
	a.Unsettled = append(a.Unsettled, b.Unsettled...)
	a.Latencies = append(a.Latencies, b.Latencies...)
	sort.Slice(a.Latencies, func(i, j int) bool { return a.Latencies[i] < a.Latencies[j] })
	a.Took += b.Took
	return a
}

// BenchmarkDemoSubmitToSettled runs the demo job end to end (REST submit, escrow, place,
// assign, compute, commit, Freivalds, attest, settle) on a devnet with the default 250 ms
// blocks. The baseline, measured in the same run, is the chain's own block interval: a
// job needs four transactions in sequence (create, assign, result, attest), so about four
// blocks is the floor the protocol allows.
func BenchmarkDemoSubmitToSettled(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := Start(ctx, Options{Home: b.TempDir(), BlockTime: 250 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()

	// Baseline: the interval between committed blocks while transactions flow (empty
	// blocks wait longer by design).
	interval := measureBlockInterval(ctx, b, d)

	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		o, err := d.RunDemo(ctx, nil)
		if err != nil || o.Status != api.StatusSettled {
			b.Fatalf("demo: %+v %v", o, err)
		}
		total += time.Since(start)
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/settled-job")
	b.ReportMetric(interval.Seconds(), "s/block")
	b.ReportMetric(float64(per)/float64(interval), "blocks/settled-job")
}

func measureBlockInterval(ctx context.Context, b *testing.B, d *Devnet) time.Duration {
	b.Helper()
	const n = 4
	h0, err := d.Chain().Height(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Keep the mempool busy so blocks come at the commit timeout, not the empty interval.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n+1; i++ {
			if _, err := d.RunDemo(ctx, nil); err != nil {
				return
			}
		}
	}()
	if err := d.Chain().WaitForHeight(ctx, h0+1); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := d.Chain().WaitForHeight(ctx, h0+1+n); err != nil {
		b.Fatal(err)
	}
	interval := time.Since(start) / n
	<-done
	return interval
}

// BenchmarkJobsInFlight is issue #12's throughput with hundreds of jobs in flight: a devnet
// with 250 ms blocks and twelve nodes of 32 (simulated) GPUs each, where 64 consumers each
// submit 8 small (64×64) jobs back to back, signing with sequences they count themselves,
// and then follow them: 512 jobs in flight at once. The baseline, in the same run and on
// the same devnet, is the closed loop of BenchmarkSettledJobsPerSecond: 16 consumers each
// waiting for its job before the next. Both report settled jobs/s, p50/p90 submit→settled
// and the CPU the whole process (chain, router, NATS, nodes, validator and the consumers'
// clients) spent per settled job; the in-flight run also logs the mean time each stage of
// a job took (its events, from 128 of its jobs), which says where the latency goes.
//
//	go test ./internal/devnet -run '^$' -bench JobsInFlight -benchtime 1x -v
//
// OMNISYNC_INFLIGHT_CONSUMERS and OMNISYNC_INFLIGHT_PER_CONSUMER set how many consumers
// submit and how many jobs each (default 64 × 8 = 512 in flight). A consumer's submission
// is answered once its escrow has committed, and the router takes a consumer's next job
// only then, so each consumer submits about one job a block: 64 consumers cannot submit
// more than about 256 jobs a second with 250 ms blocks, and 512 × 4 can. The last run,
// the same load with Async submissions (answered once the mempool admits the escrow, the
// next sequence sent at once), lifts that bound; the in-flight run before it is its
// baseline. OMNISYNC_INFLIGHT_NODES, OMNISYNC_INFLIGHT_GPUS (each node's) and
// OMNISYNC_INFLIGHT_MAX_ACTIVE (the router's MaxActiveJobs) size the devnet (default 12
// nodes of 32 GPUs, 1,024 unfinished jobs): a job holds its GPU from placement to its
// result, about half a second, so 384 GPUs settle at most about 700 jobs a second.
// OMNISYNC_INFLIGHT_RATE adds a last run, the same jobs submitted Async at that many a
// second in all (RunLoadPaced), whose p50 is a job's latency at that load rather than
// its wait behind a burst of thousands; OMNISYNC_INFLIGHT_ONLY_PACED=1 runs that one alone,
// for a rate held longer (512 consumers × 40 jobs at 1,000 a second is twenty seconds).
// Each run logs the settled jobs over its whole time, which counts its start and its drain
// (a paced run reads below the rate it keeps up with), and the rate jobs settled at from
// five seconds in until the last submission (steady), which does not.
// The process runs the garbage collector as the omnisync binary does (internal/gc).
func BenchmarkJobsInFlight(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // restored after: Tune changes it for the process
	b.Logf("GOGC %d, as the omnisync binary runs", gc.Tune(os.Getenv))
	consumers := benchEnv(b, "OMNISYNC_INFLIGHT_CONSUMERS", 64, 16, 1024)
	perConsumer := benchEnv(b, "OMNISYNC_INFLIGHT_PER_CONSUMER", 8, 1, ledger.MaxPending)
	nodes := benchEnv(b, "OMNISYNC_INFLIGHT_NODES", 12, 1, 256)
	gpus := benchEnv(b, "OMNISYNC_INFLIGHT_GPUS", 32, 1, 1024)
	maxActive := benchEnv(b, "OMNISYNC_INFLIGHT_MAX_ACTIVE", router.DefaultMaxActiveJobs, 1, 1<<20)
	rate := benchEnv(b, "OMNISYNC_INFLIGHT_RATE", 0, 0, 100_000)
	onlyPaced := benchEnv(b, "OMNISYNC_INFLIGHT_ONLY_PACED", 0, 0, 1) == 1 && rate > 0
	// 1 OMNI a job's budget: a burst holds every job's at once, and so may a paced consumer
	// whose devnet falls behind the rate (each of its jobs then stays open for seconds; with
	// 16 OMNI a consumer, as before, a loaded machine refused jobs for insufficient funds).
	fund := uint64(2*perConsumer + 8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := Start(ctx, Options{Home: b.TempDir(), BlockTime: 250 * time.Millisecond, Nodes: nodes, MaxActiveJobs: maxActive,
		ConsumerFunds: (uint64(consumers)*fund + 1_000) * omni,
		NodeOptions:   func(_ int, o *node.Options) { o.Hardware.GPUs = uint32(gpus) }})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	keys, err := d.FundConsumers(ctx, consumers, fund)
	if err != nil {
		b.Fatal(err)
	}
	c := LoadClient(d.RESTURL())
	b.ResetTimer()
	for range b.N {
		loads := []benchLoad{
			{"waiting (baseline)", func() (LoadResult, error) { return RunLoadWaiting(ctx, c, ChainID, keys[:16], 5, 64, 2*time.Minute) }},
			{"in flight", func() (LoadResult, error) { return d.RunLoad(ctx, keys, perConsumer, 64, 2*time.Minute) }},
			{"in flight, async", func() (LoadResult, error) { return d.RunLoadAsync(ctx, keys, perConsumer, 64, 2*time.Minute) }},
		}
		if onlyPaced {
			loads = nil
		}
		if rate > 0 {
			loads = append(loads, benchLoad{fmt.Sprintf("paced, %d/s", rate), func() (LoadResult, error) {
				return d.RunLoadPaced(ctx, keys, perConsumer, 64, float64(rate), 2*time.Minute)
			}})
		}
		for _, load := range loads {
			cpu0 := processCPU()
			res, err := load.run()
			if err != nil {
				b.Fatal(err)
			}
			settled := res.ByStatus[api.StatusSettled]
			b.Logf("%-18s %d jobs, %v in %s: %.1f settled/s (%.1f/s steady, from %v in), p50 %s, p90 %s, %.2f ms of CPU per settled job",
				load.name, res.Submitted, res.ByStatus, res.Took.Round(time.Millisecond), res.SettledPerSecond(),
				res.SteadyPerSecond(steadyAfter), steadyAfter,
				res.Percentile(0.5).Round(time.Millisecond), res.Percentile(0.9).Round(time.Millisecond),
				float64((processCPU()-cpu0).Milliseconds())/float64(max(settled, 1)))
			if settled != res.Submitted {
				b.Errorf("%s: %d of %d jobs did not settle: %v", load.name, res.Submitted-settled, res.Submitted, res.Unsettled)
			}
			switch load.name {
			case "in flight":
				b.ReportMetric(res.SettledPerSecond(), "settled-jobs/s")
				b.ReportMetric(res.Percentile(0.5).Seconds(), "p50-s")
				logStages(ctx, b, c, keys[:16])
			case "in flight, async":
				b.ReportMetric(res.SettledPerSecond(), "settled-jobs/s-async")
				b.ReportMetric(res.Percentile(0.5).Seconds(), "p50-s-async")
			default:
				if rate > 0 {
					b.ReportMetric(res.SettledPerSecond(), "settled-jobs/s-paced")
					b.ReportMetric(res.SteadyPerSecond(steadyAfter), "steady-jobs/s-paced")
					b.ReportMetric(res.Percentile(0.5).Seconds(), "p50-s-paced")
				}
			}
		}
	}
}

// steadyAfter is how long into a run BenchmarkJobsInFlight's steady rate starts
// (LoadResult.SteadyPerSecond): past the first jobs' settling, about a second in.
const steadyAfter = 5 * time.Second

// benchLoad is one run of BenchmarkJobsInFlight.
type benchLoad struct {
	name string
	run  func() (LoadResult, error)
}

// benchEnv reads a count from the environment variable name: def when unset, else a
// number from lo to hi.
func benchEnv(b *testing.B, name string, def, lo, hi int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		b.Fatalf("%s=%q: want %d to %d", name, v, lo, hi)
	}
	return n
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// logStages logs the mean time between each of a job's events and the one before it, over
// the latest 8 jobs of each consumer.
func logStages(ctx context.Context, b testing.TB, c *api.Client, consumers []ed25519.PrivateKey) {
	sum, n := map[string]time.Duration{}, map[string]int{}
	var order []string
	for _, k := range consumers {
		list, err := c.Jobs(ctx, api.SignJobListAuth(k, string(keys.AddressOfKey(k)), time.Minute, time.Now()), api.JobQuery{Limit: 8})
		if err != nil {
			b.Logf("list jobs: %v", err)
			return
		}
		for _, lj := range list.Jobs {
			j, err := c.Job(ctx, lj.ID)
			if err != nil || len(j.Events) == 0 {
				continue
			}
			for i, e := range j.Events[1:] {
				if n[e.Stage] == 0 {
					order = append(order, e.Stage)
				}
				sum[e.Stage] += e.Time.Sub(j.Events[i].Time)
				n[e.Stage]++
			}
		}
	}
	for _, st := range order {
		b.Logf("  stage %-10s mean %s after the event before it (%d jobs)", st, (sum[st] / time.Duration(n[st])).Round(time.Millisecond), n[st])
	}
}
