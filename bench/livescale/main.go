// Command livescale measures one router with many live nodes (issue #12): N synthetic
// nodes heartbeat through the router's real embedded NATS server, over WebSocket + TLS,
// in the real protocol, and the router indexes every heartbeat for placement. It reports
// the router's memory (VmRSS and the Go heap), its CPU per second, the heartbeats it
// received per second and the heartbeat→index latency (omnisync_router_heartbeat_index_seconds,
// from each heartbeat's Sent to the index holding it).
//
//	go run ./bench/livescale -nodes 100000
//
// LIVESCALE_CPUPROFILE=FILE writes a CPU profile of the router's first 30 seconds.
//
// The router runs in a child process (this binary again, with -role router), so that its
// memory and CPU are its own and not the simulator's. Its chain is a fake that answers
// the queries the router makes (the N nodes, registered and active, as JSON the router
// decodes, as it would from CometBFT: in full once, then the records changed since, of
// which there are none); everything else — NATS, TLS, the router, the
// protocol, the placement index — is the product's.
//
// Multiplexing: a NATS connection authenticates one key, and the router gives it the
// rights of that one node, so 100,000 nodes would need 100,000 connections (and as many
// TLS sessions and client goroutines in the simulator). The simulator instead dials one
// connection per -per-conn nodes with a fleet key of its own, which the router admits
// through router.Options.SimulatedFleet: that connection may publish those nodes'
// heartbeats and nothing else of theirs. The option is a func, so only code that embeds
// the router (this simulator) can set it; no configuration file, environment variable,
// flag or network peer can, and the product's trust model (one connection speaks for the
// one key that signed its nonce) is unchanged. The router's per-connection cost is
// therefore not in these figures: a real network's 100,000 connections add the NATS
// server's state for each (see docs/benchmarks.md).
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/gc"
)

type config struct {
	role     string
	dir      string
	nodes    int
	perConn  int
	ttl      time.Duration
	rate     int
	own      time.Duration
	warmup   time.Duration
	duration time.Duration
	churn    int
}

func main() {
	gc.Tune(os.Getenv) // as the omnisync binary runs
	var c config
	flag.StringVar(&c.role, "role", "sim", "sim (the simulator, which starts the router) or router (internal)")
	flag.StringVar(&c.dir, "dir", "", "working directory for the router's TLS files and store (default: a temporary one)")
	flag.IntVar(&c.nodes, "nodes", 10_000, "simulated nodes")
	flag.IntVar(&c.perConn, "per-conn", 1000, "nodes multiplexed on each connection")
	flag.DurationVar(&c.ttl, "ttl", 30*time.Second, "the router's heartbeat TTL (its pace is at most a third of it)")
	flag.IntVar(&c.rate, "rate", 10_000, "heartbeats a second the router asks for (router.Options.HeartbeatRate)")
	flag.DurationVar(&c.own, "heartbeat", 2*time.Second, "the nodes' own heartbeat interval, before the router's pace")
	flag.DurationVar(&c.warmup, "warmup", 20*time.Second, "time for every node to connect and the pace to settle, not measured")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "measured time")
	flag.IntVar(&c.churn, "churn", 0, "node records the simulated chain rewrites a second (prices, measured TFLOPS), which the router reads as changes")
	flag.Parse()
	var err error
	if c.role == "router" {
		err = runRouter(c)
	} else {
		err = runSim(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "livescale:", err)
		os.Exit(1)
	}
}

// nodeIDs are the simulated nodes' ids (addresses), the same in both processes.
func nodeIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		pub := sha256.Sum256(fmt.Appendf(nil, "livescale node %d", i))
		ids[i] = addressOf(pub[:])
	}
	return ids
}

// fleetKey is connection c's key, the same in both processes.
func fleetKey(c int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "livescale fleet %d", c))
	return ed25519.NewKeyFromSeed(seed[:])
}

// runSim starts the router, connects the fleet, heartbeats, and prints the figures.
func runSim(c config) error {
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "livescale")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		c.dir = dir
	}
	args := []string{"-role", "router", "-dir", c.dir, "-nodes", fmt.Sprint(c.nodes), "-per-conn", fmt.Sprint(c.perConn),
		"-ttl", c.ttl.String(), "-rate", fmt.Sprint(c.rate), "-churn", fmt.Sprint(c.churn)}
	child := exec.Command(os.Args[0], args...)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	var url string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "READY "); ok {
			url = u
			break
		}
	}
	if url == "" {
		return fmt.Errorf("the router did not start")
	}
	stats := make(chan routerStats, 64)
	go func() {
		for lines.Scan() {
			if js, ok := strings.CutPrefix(lines.Text(), "STATS "); ok {
				var s routerStats
				if json.Unmarshal([]byte(js), &s) == nil {
					stats <- s
				}
			}
		}
		close(stats)
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	began := time.Now()
	f, err := startFleet(ctx, c, url, filepath.Join(c.dir, "tls"))
	if err != nil {
		return err
	}
	fmt.Printf("%d nodes on %d connections, connected in %.1fs\n", c.nodes, len(f.conns), time.Since(began).Seconds())

	var first, last routerStats
	deadline := time.Now().Add(c.warmup + c.duration)
	measureFrom := time.Now().Add(c.warmup)
	for s := range stats {
		now := time.Now()
		fmt.Printf("router: online %d, pace %s, heartbeats %d/s, rss %d MiB, heap %d MiB, cpu %.2f, p99 %s (sim sent %d, errors %d)\n",
			s.Online, f.pace(), s.rateSince(last), s.RSS>>20, s.HeapInuse>>20, s.cpuSince(last), s.since(routerStats{}).quantile(0.99), f.sent.Load(), f.errors.Load())
		if first.At.IsZero() && now.After(measureFrom) {
			first = s
		}
		last = s
		if now.After(deadline) {
			break
		}
	}
	if first.At.IsZero() || last.At.Equal(first.At) {
		return fmt.Errorf("the router stopped reporting")
	}
	window := last.since(first)
	fmt.Printf("\nmeasured %.0fs after a %s warm-up: %d nodes, %d per connection, ttl %s, rate %d/s, churn %d records/s\n",
		last.At.Sub(first.At).Seconds(), c.warmup, c.nodes, c.perConn, c.ttl, c.rate, c.churn)
	fmt.Printf("online in the router        %d\n", last.Online)
	fmt.Printf("pace (heartbeat interval)   %s\n", f.pace())
	fmt.Printf("heartbeats indexed          %d/s\n", last.rateSince(first))
	fmt.Printf("router CPU                  %.2f cores\n", last.cpuSince(first))
	fmt.Printf("router VmRSS                %d MiB (peak %d MiB)\n", last.RSS>>20, last.HWM>>20)
	fmt.Printf("router Go heap in use       %d MiB (runtime Sys %d MiB)\n", last.HeapInuse>>20, last.Sys>>20)
	fmt.Printf("heartbeat→index p50 / p99   %s / %s (max bucket %s)\n", window.quantile(0.5), window.quantile(0.99), window.top())
	fmt.Printf("simulator publish errors    %d\n", f.errors.Load())
	return nil
}
