package router

import (
	"context"
	"fmt"
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
