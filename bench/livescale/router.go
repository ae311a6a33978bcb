package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/router"
	"github.com/omnisync/omnisync/internal/scheduler"
	"github.com/omnisync/omnisync/internal/transport"
)

func addressOf(pub []byte) string { return string(keys.AddressOf(ed25519.PublicKey(pub))) }

// fakeChain answers the router's queries for n registered, active nodes. Answers are JSON,
// decoded by the router at each read as a real chain client's answer would be. With
// churn, each simulated block (every 250 ms) rewrites some nodes' records, as price
// changes and capacity checks do on a real chain, and nodes_since answers with them.
type fakeChain struct {
	mu     sync.Mutex
	nodes  []ledger.Node
	writes []write // in order of height
	height int64
	rng    *rand.Rand
}

// write is a block's rewrite of one node's record.
type write struct {
	height int64
	node   int
}

func newFakeChain(ids []string) *fakeChain {
	nodes := make([]ledger.Node, len(ids))
	regions := []string{"eu-west", "us-east", "ap-south", "sa-east"}
	for i, id := range ids {
		nodes[i] = ledger.Node{
			Address: keys.Address(id), Stake: 1_000_000, PricePerHour: uint64(20_000 + i%50*1000), Status: ledger.NodeActive,
			Hardware: ledger.Hardware{
				GPUModel: "sim", GPUs: uint32(1 + i%8), VRAMMiB: uint64(8192 << (i % 5)), TFLOPSMilli: uint64(10_000 + i%90*1000),
				Region: regions[i%len(regions)], LatE6: int32(i%180_000_000 - 90_000_000), LonE6: int32(i*7%360_000_000 - 180_000_000),
			},
		}
	}
	return &fakeChain{nodes: nodes, height: 1, rng: rand.New(rand.NewPCG(12, 2026))}
}

// churn rewrites perSecond node records a second, a quarter of them each block: a new
// price, and now and then a capacity check's measured TFLOPS. Nodes stay active (a
// withdrawn standing would disconnect a whole simulated connection of them).
func (f *fakeChain) churn(perSecond int) {
	if perSecond <= 0 {
		return
	}
	for range time.Tick(250 * time.Millisecond) {
		f.mu.Lock()
		f.height++
		for range max(perSecond/4, 1) {
			i := f.rng.IntN(len(f.nodes))
			n := &f.nodes[i]
			n.PricePerHour = uint64(20_000 + f.rng.IntN(50)*1000)
			if f.rng.IntN(8) == 0 {
				n.ProvenTFLOPSMilli, n.ProvenHeight = n.Hardware.TFLOPSMilli*uint64(50+f.rng.IntN(51))/100, f.height
			}
			f.writes = append(f.writes, write{f.height, i})
		}
		f.mu.Unlock()
	}
}

var errNoTx = errors.New("livescale: the simulated chain takes no transactions")

func (f *fakeChain) Send(context.Context, ledger.Msg) (string, error) { return "", errNoTx }
func (f *fakeChain) SendBatch(context.Context, ledger.Msg) (string, []error, error) {
	return "", nil, errNoTx
}
func (f *fakeChain) BroadcastTx(context.Context, []byte) (string, int64, error) {
	return "", 0, errNoTx
}

func (f *fakeChain) Query(_ context.Context, path string, v any) error {
	switch {
	case path == "validators":
		return json.Unmarshal([]byte("[]"), v)
	case strings.HasPrefix(path, "node/"), strings.HasPrefix(path, "job/"):
		return fmt.Errorf("%w: %s", ledger.ErrNotFound, path)
	}
	since, ok := strings.CutPrefix(path, "nodes_since/")
	if !ok {
		return fmt.Errorf("livescale: query %s not simulated", path)
	}
	h, err := strconv.ParseInt(since, 10, 64)
	if err != nil {
		return err
	}
	f.mu.Lock()
	ns := ledger.NodesSince{Height: f.height, Full: h == 0}
	if ns.Full {
		ns.Nodes = f.nodes
	} else { // from the writes after h, as the ledger reads its index of them
		seen := map[int]bool{}
		from, _ := slices.BinarySearchFunc(f.writes, h+1, func(w write, h int64) int { return cmp.Compare(w.height, h) })
		for _, w := range f.writes[from:] {
			if !seen[w.node] {
				seen[w.node] = true
				ns.Nodes = append(ns.Nodes, f.nodes[w.node])
			}
		}
	}
	b, err := json.Marshal(ns) // as the chain's answer, decoded by the router
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// runRouter is the child process: one router, reporting its figures every two seconds.
func runRouter(c config) error {
	ids := nodeIDs(c.nodes)
	chain := newFakeChain(ids)
	go chain.churn(c.churn)
	fleet := map[string][]string{}
	for i := 0; i*c.perConn < len(ids); i++ {
		pub := fleetKey(i).Public().(ed25519.PublicKey)
		fleet[string(pub)] = ids[i*c.perConn : min((i+1)*c.perConn, len(ids))]
	}
	tlsFiles, err := transport.EnsureTLS(filepath.Join(c.dir, "tls"), nil)
	if err != nil {
		return err
	}
	conf, err := tlsFiles.ServerConfig()
	if err != nil {
		return err
	}
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	r, err := router.New(router.Options{
		Key: key, Chain: chain, TLS: conf, StoreDir: filepath.Join(c.dir, "store"),
		Weights: scheduler.DefaultWeights(), HeartbeatTTL: c.ttl, HeartbeatRate: c.rate, Metrics: reg,
		SimulatedFleet: func(pub ed25519.PublicKey) []string { return fleet[string(pub)] },
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		return err
	}
	defer r.Close()
	if path := os.Getenv("LIVESCALE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		time.AfterFunc(30*time.Second, pprof.StopCPUProfile)
	}
	fmt.Println("READY " + r.NodesURL())
	for range time.Tick(2 * time.Second) {
		s, err := readStats(reg)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(s)
		fmt.Println("STATS " + string(b))
	}
	return nil
}

// readStats reads this process's memory and CPU and the router's heartbeat series.
func readStats(reg *prometheus.Registry) (routerStats, error) {
	s := routerStats{At: time.Now()}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapInuse, s.Sys = ms.HeapInuse, ms.Sys
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, err
	}
	s.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, value, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			s.RSS = kb << 10
		case "VmHWM":
			s.HWM = kb << 10
		}
	}
	families, err := reg.Gather()
	if err != nil {
		return s, err
	}
	for _, f := range families {
		switch f.GetName() {
		case "omnisync_router_heartbeat_index_seconds":
			h := f.GetMetric()[0].GetHistogram()
			s.Count = h.GetSampleCount()
			for _, b := range h.GetBucket() {
				s.Buckets = append(s.Buckets, bucket{Le: b.GetUpperBound(), Count: b.GetCumulativeCount()})
			}
		case "omnisync_router_online":
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "role" && l.GetValue() == "node" {
						s.Online = int(m.GetGauge().GetValue())
					}
				}
			}
		}
	}
	return s, nil
}
