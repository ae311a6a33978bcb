package router

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// BenchmarkRouterPlace times one placement decision through the router (Router.place,
// reserving the node's GPUs and releasing them) over 10,000 and 100,000 registered nodes,
// nine in ten of them online. Its baseline in the same run is the router's path before
// the index: the snapshot built from the chain's view and the heartbeats, then
// scheduler.Place, whose answers must be the same. speedup is the scan's mean over the
// index's; place-ns/op is scheduler.Place alone on a snapshot built beforehand, the part
// of the scan that is not building the snapshot.
//
//	go test -run XXX -bench RouterPlace -benchtime 2000x ./internal/router/
func BenchmarkRouterPlace(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			w := newPlacementWorld(b, n, time.Hour, 3)
			specs := make([]api.JobSpec, 1000)
			for i := range specs {
				specs[i] = w.randomSpec()
			}
			ctx := context.Background()
			if _, release, err := w.r.place(ctx, specs[0], nil); err == nil { // builds the index
				release()
			}
			scans := 2_000_000 / n // about 2 s of scanning
			var scan time.Duration
			for i := range scans {
				start := time.Now()
				want, wantErr := scanPlace(w.r, w.view(), specs[i], nil)
				if wantErr == nil {
					w.r.mu.Lock()
					release := w.r.reserveLocked(want.NodeID, specs[i].Resources.Slots())
					w.r.mu.Unlock()
					release()
				}
				scan += time.Since(start)
				got, release, err := w.r.place(ctx, specs[i], nil)
				if diff := samePlacement(got, err, want, wantErr); diff != "" {
					b.Fatalf("job %d: %s", i, diff)
				}
				if err == nil {
					release()
				}
			}
			var placeOnly time.Duration
			snapshot := scanSnapshot(w.r, w.view(), false)
			for i := range scans {
				job := schedulerJob(specs[i], nil)
				start := time.Now()
				_, _ = scheduler.Place(job, snapshot, w.view().weights)
				placeOnly += time.Since(start)
			}
			i := 0
			for b.Loop() {
				if _, release, err := w.r.place(ctx, specs[i%len(specs)], nil); err == nil {
					release()
				}
				i++
			}
			perScan := float64(scan.Nanoseconds()) / float64(scans)
			perIndex := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perScan, "scan-ns/op")
			b.ReportMetric(float64(placeOnly.Nanoseconds())/float64(scans), "place-ns/op")
			b.ReportMetric(perScan/perIndex, "speedup")
		})
	}
}

// BenchmarkNodeOnlineCheck is the check each running job's watch makes every half TTL
// (Router.dropped: is the node still heartbeating?) with 100,000 nodes online, one
// look-up against the baseline in the same run: building the map of every participant
// online and looking the node up in it, as the check did before.
func BenchmarkNodeOnlineCheck(b *testing.B) {
	const nodes = 100_000
	r := &Router{seen: map[string]protocol.Heartbeat{}, when: map[string]time.Time{}, beats: map[string]uint64{}}
	r.opts.HeartbeatTTL = time.Minute
	ids := make([]string, nodes)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%06d", i)
		r.seen[ids[i]], r.when[ids[i]] = protocol.Heartbeat{ID: ids[i], Role: protocol.RoleNode}, time.Now()
	}
	var baseline, lookup time.Duration
	b.Run("every-online", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, ok := r.online(protocol.RoleNode)[ids[i%nodes]]; !ok {
				b.Fatal("offline")
			}
			i++
		}
		baseline = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("one-lookup", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if lost := r.dropped(ids[i%nodes], "job", 0); lost != "" {
				b.Fatal(lost)
			}
			i++
		}
		lookup = b.Elapsed() / time.Duration(b.N)
		if baseline > 0 && lookup > 0 {
			b.ReportMetric(float64(baseline)/float64(lookup), "x-faster")
		}
	})
}

// BenchmarkAllBusyCheck is the question a job that fits no free GPU asks before it waits
// for one (does it fit a node whose GPUs this router's attempts hold?), with 100,000
// nodes online and 1,000 of them held, against the baseline in the same run: the full
// scan of a copy of every node with the held GPUs given back, as place asked it before.
func BenchmarkAllBusyCheck(b *testing.B) {
	const nodes, held = 100_000, 1_000
	all := make([]scheduler.Node, nodes)
	reserved := map[string]int{}
	for i := range all {
		all[i] = scheduler.Node{ID: fmt.Sprintf("node-%06d", i), Operator: fmt.Sprintf("op-%d", i), VRAMMiB: 81920, TFLOPSMilli: uint64(50_000 + i%1000),
			Region: "eu-west", ReliabilityBP: 9000, PricePerHourUomni: uint64(100_000 + i%5000)}
		if i%(nodes/held) == 0 {
			reserved[all[i].ID] = 8 // every GPU of these held by this router's attempts
		}
	}
	x, err := scheduler.NewIndex(all, scheduler.DefaultWeights())
	if err != nil {
		b.Fatal(err)
	}
	job := scheduler.Job{GPUs: 4, VRAMMiB: 40960, MaxPricePerHourUomni: 200_000, Replicas: 1}
	if _, err := x.Place(job); err == nil {
		b.Fatal("the job fits a free node")
	}
	var baseline time.Duration
	b.Run("full-scan", func(b *testing.B) {
		for b.Loop() {
			snapshot := x.Snapshot()
			for i := range snapshot {
				snapshot[i].FreeGPUs += reserved[snapshot[i].ID]
			}
			if _, err := scheduler.Place(job, snapshot, scheduler.DefaultWeights()); err != nil {
				b.Fatal(err)
			}
		}
		baseline = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("held-nodes", func(b *testing.B) {
		px := new(placementIndex)
		for b.Loop() {
			if !px.fitsHeld(x, reserved, job, scheduler.DefaultWeights()) { // all 8 of each held node's GPUs
				b.Fatal("the job fits no held node")
			}
		}
		if per := b.Elapsed() / time.Duration(b.N); baseline > 0 && per > 0 {
			b.ReportMetric(float64(baseline)/float64(per), "x-faster")
		}
	})
}

// BenchmarkCapacityWait is one job's waits in line for a GPU, each ended by a wake.
func BenchmarkCapacityWait(b *testing.B) {
	r := &Router{}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() { // the releases: wake whoever waits
		defer close(done)
		for !stop.Load() {
			r.mu.Lock()
			r.wakeLocked(1, 0)
			r.mu.Unlock()
			runtime.Gosched()
		}
	}()
	ctx := context.Background()
	line := new(waiter)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.waitForCapacity(ctx, line); err != nil {
			b.Fatal(err)
		}
	}
	stop.Store(true)
	<-done
}
