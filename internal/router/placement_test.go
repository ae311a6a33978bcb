package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

// scanSnapshot is the snapshot place scanned before the index: every registered, active
// node online now (and running containers, for a container job) with its free GPUs.
func scanSnapshot(r *Router, view placementSnapshot, containers bool) []scheduler.Node {
	live := r.online(protocol.RoleNode)
	r.mu.Lock()
	defer r.mu.Unlock()
	snapshot := make([]scheduler.Node, 0, len(view.nodes))
	for _, n := range view.nodes {
		id := string(n.Address)
		hb, ok := live[id]
		if !ok || n.Status != ledger.NodeActive || (containers && hb.Containers == "") {
			continue
		}
		sn := schedulerNode(n)
		sn.FreeGPUs = r.freeLocked(id)
		snapshot = append(snapshot, sn)
	}
	return snapshot
}

// scanPlace is what place decides, by a scan of scanSnapshot, without reserving anything:
// what it decided before the index, and, for a job that fits no free GPU, by a scan of
// every node with the held ones' GPUs all free.
func scanPlace(r *Router, view placementSnapshot, spec api.JobSpec, exclude []string) (scheduler.Placement, error) {
	snapshot := scanSnapshot(r, view, spec.Workload.Kind == api.WorkloadContainer)
	if len(snapshot) == 0 {
		return scheduler.Placement{}, fmt.Errorf("%w: no registered node is online", scheduler.ErrNoFeasibleNode)
	}
	job := schedulerJob(spec, exclude)
	plan, err := scheduler.Place(job, snapshot, view.weights)
	if errors.Is(err, scheduler.ErrNoFeasibleNode) {
		// Would it fit were nothing held but what the peers hold: this router's attempts,
		// a node's word that it is full?
		r.mu.Lock()
		for i := range snapshot {
			id := snapshot[i].ID
			_, declined := r.declined[id]
			if r.reserved[id] > 0 || declined {
				snapshot[i].FreeGPUs = r.seen[id].GPUs - r.peerHeld[id]
			}
		}
		r.mu.Unlock()
		if _, idle := scheduler.Place(job, snapshot, view.weights); idle == nil {
			return scheduler.Placement{}, fmt.Errorf("%w (%v)", errAllBusy, err)
		}
	}
	if err != nil {
		return scheduler.Placement{}, err
	}
	return plan.Placements[0], nil
}

// placementWorld is a router with many fake nodes, driven directly: heartbeats go to
// onHeartbeat, the chain's view is set by hand (setView), and nothing listens on NATS.
type placementWorld struct {
	r     *Router
	rng   *rand.Rand
	nodes []ledger.Node
}

var testRegions = []string{"eu-west", "eu-central", "us-east", "us-west", "ap-south"}

func newPlacementWorld(t testing.TB, n int, ttl time.Duration, seed uint64) *placementWorld {
	r, err := New(Options{Key: transporttest.Key(t), Chain: newFakeChain(), HeartbeatTTL: ttl, Weights: scheduler.DefaultWeights()})
	if err != nil {
		t.Fatal(err)
	}
	w := &placementWorld{r: r, rng: rand.New(rand.NewPCG(seed, 12))}
	for i := range n {
		w.nodes = append(w.nodes, w.randomNode(i))
	}
	w.setView()
	for i := range w.nodes {
		if w.rng.IntN(10) != 0 {
			w.heartbeat(i)
		}
	}
	return w
}

func (w *placementWorld) randomNode(i int) ledger.Node {
	rng := w.rng
	status := ledger.NodeActive
	if rng.IntN(20) == 0 {
		status = ledger.NodeInactive
	}
	return ledger.Node{
		Address: keys.Address(fmt.Sprintf("node%07d", i)), Status: status,
		PricePerHour: uint64(1+rng.IntN(40)) * ledger.UomniPerOMNI / 10,
		Hardware: ledger.Hardware{
			GPUModel: "test", GPUs: 8, VRAMMiB: []uint64{16_384, 24_576, 40_960, 81_920}[rng.IntN(4)],
			TFLOPSMilli: uint64(10_000 + rng.IntN(20)*5_000), Region: testRegions[rng.IntN(len(testRegions))],
			LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000),
		},
		JobsVerified: uint64(rng.IntN(50)), JobsFailed: uint64(rng.IntN(5)),
	}
}

// setView makes w.nodes the chain's view, as a read of the chain would.
func (w *placementWorld) setView() {
	r := w.r
	r.viewMu.Lock()
	defer r.viewMu.Unlock()
	// Dated in the future: kept however long a benchmark runs.
	r.view = placementSnapshot{at: time.Now().Add(time.Hour), gen: r.view.gen + 1, nodes: slices.Clone(w.nodes), weights: scheduler.DefaultWeights()}
}

// setViewChanged is setView, saying which nodes changed when alone is set (as a read
// of the chain's changes since the last view does), else as a full read.
func (w *placementWorld) setViewChanged(alone bool, changed ...ledger.Node) {
	base := w.view().gen
	w.setView()
	if alone {
		w.r.viewMu.Lock()
		w.r.view.changed, w.r.view.base = changed, base
		w.r.viewMu.Unlock()
	}
}

func (w *placementWorld) view() placementSnapshot {
	w.r.viewMu.Lock()
	defer w.r.viewMu.Unlock()
	return w.r.view
}

func (w *placementWorld) heartbeat(i int) {
	id := string(w.nodes[i].Address)
	hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: w.rng.IntN(9)}
	if w.rng.IntN(3) == 0 {
		hb.Containers = "docker"
	}
	if w.rng.IntN(50) == 0 {
		hb.Role = protocol.RoleValidator
	}
	w.r.onHeartbeat(&nats.Msg{Subject: protocol.HeartbeatSubject(id), Data: protocol.Encode(hb)})
	// The world's view is the chain: a node it lists inactive heartbeating asks for no
	// new read (which would replace the view with the fake chain's).
	w.r.viewStale.Store(false)
}

func (w *placementWorld) randomSpec() api.JobSpec {
	rng := w.rng
	spec := api.JobSpec{
		Workload:        api.Workload{Kind: api.WorkloadTensor},
		Resources:       api.Resources{GPUs: 1 + rng.IntN(4), VRAMMiB: []uint64{0, 16_384, 40_960, 81_920}[rng.IntN(4)]},
		MaxPricePerHour: uint64(1+rng.IntN(40)) * ledger.UomniPerOMNI / 10,
	}
	if rng.IntN(3) == 0 {
		spec.Workload.Kind = api.WorkloadContainer
	}
	if rng.IntN(5) == 0 {
		spec.Placement.Region = testRegions[rng.IntN(len(testRegions))]
	}
	if rng.IntN(10) < 7 {
		spec.Placement.LatE6, spec.Placement.LonE6 = int32(rng.IntN(120_000_000)-60_000_000), int32(rng.IntN(360_000_000)-180_000_000)
		if rng.IntN(3) == 0 {
			spec.Placement.MaxLatencyMs = uint32(20 + rng.IntN(180))
		}
	}
	return spec
}

// perturb changes what placement reads, one of the ways the router sees it change.
func (w *placementWorld) perturb() {
	rng, r := w.rng, w.r
	i := rng.IntN(len(w.nodes))
	id := string(w.nodes[i].Address)
	switch rng.IntN(6) {
	case 0, 1:
		w.heartbeat(i)
	case 2: // a new bid, new hardware, a slash or a restake, read with the chain's other changes or alone
		n := w.randomNode(i)
		n.Address = w.nodes[i].Address
		w.nodes[i] = n
		w.setViewChanged(rng.IntN(2) == 0, n)
	case 3: // a node registers
		w.nodes = append(w.nodes, w.randomNode(len(w.nodes)))
		w.setViewChanged(rng.IntN(2) == 0, w.nodes[len(w.nodes)-1])
		w.heartbeat(len(w.nodes) - 1)
	case 4: // it declines for want of a GPU
		r.mu.Lock()
		if _, ok := r.seen[id]; ok {
			r.declined[id] = r.when[id]
			r.freeChangedLocked(id)
		}
		r.mu.Unlock()
	case 5: // a peer's lease
		l := lease{Router: keys.Address("peer"), Reserved: map[string]int{}}
		for range rng.IntN(20) {
			l.Reserved[string(w.nodes[rng.IntN(len(w.nodes))].Address)] = 1 + rng.IntN(3)
		}
		r.setPeers([]lease{l})
	}
}

// checkSnapshot compares the indexes with the snapshots a scan would build now.
func (w *placementWorld) checkSnapshot(t *testing.T) {
	t.Helper()
	view := w.view()
	for _, containers := range []bool{false, true} {
		want := scanSnapshot(w.r, view, containers)
		w.r.mu.Lock()
		x, err := w.r.indexLocked(view, containers)
		if err != nil {
			t.Fatal(err)
		}
		got := x.Snapshot()
		w.r.mu.Unlock()
		byID := func(a, b scheduler.Node) int { return cmp.Compare(a.ID, b.ID) }
		slices.SortFunc(want, byID)
		slices.SortFunc(got, byID)
		if !slices.Equal(got, want) {
			t.Fatalf("containers=%v: the index holds %d nodes, the scan %d, or they differ", containers, len(got), len(want))
		}
	}
}

func samePlacement(got scheduler.Placement, gotErr error, want scheduler.Placement, wantErr error) string {
	switch {
	case (gotErr == nil) != (wantErr == nil):
		return fmt.Sprintf("index: %v, %v; scan: %v, %v", got, gotErr, want, wantErr)
	case gotErr != nil && gotErr.Error() != wantErr.Error():
		return fmt.Sprintf("index error %q, scan error %q", gotErr, wantErr)
	case got != want:
		return fmt.Sprintf("index placed %+v, scan %+v", got, want)
	}
	return ""
}

// The router's placements through its index are the full scan's, job after job, while
// heartbeats, the chain's records, reservations, declines and peers' leases change under
// it; retries and redundant replicas still avoid the nodes they must.
func TestRouterPlacesAsTheScanWould(t *testing.T) {
	nodes, rounds := 1000, 1500
	if raceEnabled {
		nodes, rounds = 300, 400
	}
	w := newPlacementWorld(t, nodes, time.Hour, 1)
	ctx := context.Background()
	var held []func()
	var last []string
	placed, busy, noFit := 0, 0, 0
	for round := range rounds {
		spec := w.randomSpec()
		var exclude []string
		if w.rng.IntN(3) == 0 {
			exclude = slices.Clone(last) // the nodes the last jobs got: a retry's exclusions
		}
		want, wantErr := scanPlace(w.r, w.view(), spec, exclude)
		got, release, err := w.r.place(ctx, spec, exclude)
		if diff := samePlacement(got, err, want, wantErr); diff != "" {
			t.Fatalf("round %d: %s", round, diff)
		}
		switch {
		case err == nil:
			placed++
			if slices.Contains(exclude, got.NodeID) {
				t.Fatalf("round %d: placed on excluded %s", round, got.NodeID)
			}
			held = append(held, release)
			last = append(last, got.NodeID)
			if len(last) > 3 {
				last = last[1:]
			}
		case errors.Is(err, errAllBusy):
			busy++
		default:
			noFit++
		}
		if round%10 == 0 {
			w.placeReplicas(t, spec)
		}
		for len(held) > 0 && w.rng.IntN(5) == 0 {
			k := w.rng.IntN(len(held))
			held[k]()
			held = slices.Delete(held, k, k+1)
		}
		for range w.rng.IntN(4) {
			w.perturb()
		}
		if round%50 == 0 {
			w.checkSnapshot(t)
		}
	}
	w.checkSnapshot(t)
	t.Logf("%d placed, %d all busy, %d fit nowhere", placed, busy, noFit)
	if placed == 0 || busy+noFit == 0 {
		t.Fatal("the jobs did not exercise both placing and failing to")
	}
}

// placeReplicas places a redundant job's replicas as runRedundant does, each as the scan
// would with its siblings' nodes excluded, and on distinct nodes.
func (w *placementWorld) placeReplicas(t *testing.T, spec api.JobSpec) {
	t.Helper()
	j := &job{spec: spec}
	set := &replicaSet{}
	for i := range ledger.RedundantReplicas {
		set.reps = append(set.reps, &replica{index: i, set: set})
	}
	var releases []func()
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	nodes := map[string]bool{}
	for _, rep := range set.reps {
		var siblings []string
		for _, o := range set.reps {
			if o.node != "" {
				siblings = append(siblings, o.node)
			}
		}
		want, wantErr := scanPlace(w.r, w.view(), spec, siblings)
		got, release, err := w.r.placeReplica(context.Background(), j, nil, rep)
		if diff := samePlacement(got, err, want, wantErr); diff != "" {
			t.Fatalf("replica %d: %s", rep.index, diff)
		}
		if err != nil {
			return
		}
		releases = append(releases, release)
		if nodes[got.NodeID] {
			t.Fatalf("replica %d placed on %s, which a sibling holds", rep.index, got.NodeID)
		}
		nodes[got.NodeID] = true
	}
}

// Nodes whose heartbeats stop leave the index when HeartbeatTTL passes, and nodes that
// heartbeat again in time stay, as the scan counts them online.
func TestRouterIndexForgetsNodesThatStopHeartbeating(t *testing.T) {
	// Long enough that the nodes heard again do not expire while the test places (the
	// scan and the index read the clock at different moments).
	const ttl = time.Second
	w := newPlacementWorld(t, 300, ttl, 2)
	w.checkSnapshot(t)
	time.Sleep(ttl / 2)
	for i := 0; i < len(w.nodes); i += 3 {
		w.heartbeat(i)
	}
	time.Sleep(ttl/2 + 100*time.Millisecond)
	w.checkSnapshot(t)
	for range 30 {
		spec := w.randomSpec()
		want, wantErr := scanPlace(w.r, w.view(), spec, nil)
		got, release, err := w.r.place(context.Background(), spec, nil)
		if diff := samePlacement(got, err, want, wantErr); diff != "" {
			t.Fatal(diff)
		}
		if err == nil {
			release()
		}
	}
	w.r.mu.Lock()
	online := w.r.px.all.Len()
	w.r.mu.Unlock()
	if online == 0 || online > len(w.nodes)/3+1 {
		t.Fatalf("%d nodes indexed online, want those of the %d that heartbeat again", online, len(w.nodes)/3+1)
	}
}

// A node that registered after the router last read the chain's nodes is placeable as soon
// as it heartbeats: its heartbeat makes the next placement read the chain again instead of
// reusing the cached view for up to placementViewTTL.
func TestANewlyRegisteredNodeIsPlaceableAtItsFirstHeartbeat(t *testing.T) {
	chain := newFakeChain()
	first, newer := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(first), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterWith(t, Options{Chain: chain, RightsInterval: time.Hour})
	ctx := context.Background()
	view, err := r.placementView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	_, err = r.indexLocked(view, false)
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	chain.addNode(keys.AddressOfKey(newer), ledger.UomniPerOMNI, 10_000)
	scriptedNode(t, r, roots, newer, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{} })
	waitFor(t, "the new node online", func() bool { _, ok := r.online(protocol.RoleNode)[string(keys.AddressOfKey(newer))]; return ok })
	if view, err = r.placementView(ctx); err != nil {
		t.Fatal(err)
	}
	if len(view.nodes) != 2 {
		t.Fatalf("the placement view after the new node's heartbeat holds %d nodes, want 2", len(view.nodes))
	}
}

// A node a capacity check found slower than it declared is scored at what it showed, the
// rate the chain bills it at; one never checked, or proven, at what it declared.
func TestSchedulerNodeScoresTheProvenRate(t *testing.T) {
	n := ledger.Node{Address: "n", Hardware: ledger.Hardware{TFLOPSMilli: 82_600}}
	if got := schedulerNode(n).TFLOPSMilli; got != 82_600 {
		t.Fatalf("never checked: scored at %d, want the declared 82600", got)
	}
	n.ProvenTFLOPSMilli, n.ProvenHeight = 34, 9
	if got := schedulerNode(n).TFLOPSMilli; got != 34 {
		t.Fatalf("found slow: scored at %d, want the proven 34", got)
	}
	n.ProvenTFLOPSMilli = 82_600
	if got := schedulerNode(n).TFLOPSMilli; got != 82_600 {
		t.Fatalf("proven: scored at %d, want 82600", got)
	}
}

// The rights check's active set follows the views: rebuilt from a view it cannot bring
// up to date, changed by a view's changed nodes alone when that view is the next
// generation of the one it holds, and left alone for the same generation.
func TestActiveNodesFollowViews(t *testing.T) {
	node := func(addr, s string) ledger.Node {
		return ledger.Node{Address: keys.Address(addr), Status: s}
	}
	var a activeNodes
	want := func(step string, got map[string]bool, active ...string) {
		t.Helper()
		n := 0
		for _, ok := range got {
			if ok {
				n++
			}
		}
		for _, id := range active {
			if !got[id] {
				t.Errorf("%s: %s not active in %v", step, id, got)
			}
		}
		if n != len(active) {
			t.Errorf("%s: %d active in %v, want %v", step, n, got, active)
		}
	}
	v1 := placementSnapshot{gen: 1, nodes: []ledger.Node{node("a", ledger.NodeActive), node("b", ledger.NodeInactive)}}
	want("first view", a.of(v1), "a")
	want("same generation", a.of(v1), "a")
	// The next generation: b became active and c registered; the list itself is not read.
	v2 := placementSnapshot{gen: 2, base: 1, nodes: v1.nodes, changed: []ledger.Node{node("b", ledger.NodeActive), node("c", ledger.NodeActive)}}
	want("changed", a.of(v2), "a", "b", "c")
	// A generation skipped: its changes are not the cache's, so the list is read whole.
	v4 := placementSnapshot{gen: 4, base: 3, nodes: []ledger.Node{node("a", ledger.NodeInactive), node("c", ledger.NodeActive)},
		changed: []ledger.Node{node("a", ledger.NodeInactive)}}
	want("rebuilt", a.of(v4), "c")
	// Weights changed with the nodes: no changed list, so again the whole list.
	v5 := placementSnapshot{gen: 5, nodes: []ledger.Node{node("a", ledger.NodeActive)}}
	want("new weights", a.of(v5), "a")
}

// onlineAs answers for one participant, and onlineCounts for each role, what online
// answers for all: heard from within the TTL, in the role asked about.
func TestOnlineAsIsOnlineForOne(t *testing.T) {
	r := &Router{seen: map[string]protocol.Heartbeat{}, when: map[string]time.Time{}}
	r.opts.HeartbeatTTL = time.Minute
	r.seen["n"], r.when["n"] = protocol.Heartbeat{ID: "n", Role: protocol.RoleNode}, time.Now()
	r.seen["v"], r.when["v"] = protocol.Heartbeat{ID: "v", Role: protocol.RoleValidator}, time.Now()
	r.seen["old"], r.when["old"] = protocol.Heartbeat{ID: "old", Role: protocol.RoleNode}, time.Now().Add(-2*time.Minute)
	for _, tt := range []struct {
		id, role string
	}{{"n", protocol.RoleNode}, {"v", protocol.RoleNode}, {"old", protocol.RoleNode}, {"absent", protocol.RoleNode}, {"v", protocol.RoleValidator}, {"n", protocol.RoleValidator}} {
		_, want := r.online(tt.role)[tt.id]
		if hb, got := r.onlineAs(tt.id, tt.role); got != want || got && hb.ID != tt.id {
			t.Errorf("onlineAs(%s, %s) = %v, %v; online says %v", tt.id, tt.role, hb, got, want)
		}
	}
	if _, ok := r.onlineAs("n", protocol.RoleNode); !ok {
		t.Error("a node heard a moment ago is not online")
	}
	counts := r.onlineCounts()
	for _, role := range []string{protocol.RoleNode, protocol.RoleValidator} {
		if counts[role] != len(r.online(role)) {
			t.Errorf("onlineCounts %v, online counts %d of role %s", counts, len(r.online(role)), role)
		}
	}
}

// fitsHeld answers as the full scan of every node with the held nodes' GPUs all free:
// random nodes, holdings and jobs, including nodes held but not online (not in the index)
// and holdings whose release frees too few GPUs.
func TestFitsHeldIsTheFullScansAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 12))
	regions := []string{"eu-west", "us-east", "ap-south"}
	w := scheduler.DefaultWeights()
	for round := range 40 {
		nodes := make([]scheduler.Node, 200)
		for i := range nodes {
			nodes[i] = scheduler.Node{
				ID: fmt.Sprintf("n%03d", i), Operator: fmt.Sprintf("op%d", i%50), FreeGPUs: rng.IntN(3),
				VRAMMiB: uint64(8192 << rng.IntN(4)), TFLOPSMilli: uint64(10_000 + rng.IntN(90_000)), Region: regions[rng.IntN(3)],
				Location:      scheduler.Location{LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000)},
				ReliabilityBP: uint32(rng.IntN(10_001)), PricePerHourUomni: uint64(20_000 + rng.IntN(100_000)),
			}
		}
		x, err := scheduler.NewIndex(nodes, w)
		if err != nil {
			t.Fatal(err)
		}
		idle := map[string]int{}
		for range rng.IntN(30) {
			i := rng.IntN(260) // some held nodes are not in the index
			idle[fmt.Sprintf("n%03d", i)] = 1 + rng.IntN(3) + nodes[i%len(nodes)].FreeGPUs
		}
		for range 50 {
			job := scheduler.Job{GPUs: 1 + rng.IntN(5), VRAMMiB: uint64(8192 << rng.IntN(4)), MaxPricePerHourUomni: uint64(20_000 + rng.IntN(150_000)), Replicas: 1}
			if rng.IntN(3) == 0 {
				job.Region = regions[rng.IntN(3)]
			}
			if rng.IntN(3) == 0 {
				job.Origin, job.MaxLatencyMicros = scheduler.Location{LatE6: 48_850_000, LonE6: 2_350_000}, uint32(20_000+rng.IntN(180_000))
			}
			if _, err := x.Place(job); !errors.Is(err, scheduler.ErrNoFeasibleNode) {
				continue // fitsHeld is asked only of jobs that fit nowhere free
			}
			snapshot := x.Snapshot()
			for i := range snapshot {
				if gpus, held := idle[snapshot[i].ID]; held {
					snapshot[i].FreeGPUs = gpus
				}
			}
			_, scanErr := scheduler.Place(job, snapshot, w)
			if got, want := new(placementIndex).fitsHeld(x, idle, job, w), scanErr == nil; got != want {
				t.Fatalf("round %d: job %+v, held %v: fitsHeld %v, the full scan %v", round, job, idle, got, want)
			}
		}
	}
}

// A job waits rather than fails for GPUs this router's attempts hold, or a node that
// declined a job holds until it heartbeats again: idleLocked gives each such node its
// GPUs less what the peers hold, and a node only peers hold GPUs on not at all.
func TestIdleGivesBackOwnHoldsAndDeclines(t *testing.T) {
	r := &Router{seen: map[string]protocol.Heartbeat{}, reserved: map[string]int{"own": 2}, peerHeld: map[string]int{"peer": 4, "both": 1},
		declined: map[string]time.Time{"full": time.Now()}}
	r.reserved["both"] = 1
	for id, gpus := range map[string]int{"own": 4, "peer": 8, "both": 2, "full": 1, "free": 3} {
		r.seen[id] = protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: gpus}
	}
	want := map[string]int{"own": 4, "both": 1, "full": 1}
	if got := r.idleLocked(new(placementIndex)); !maps.Equal(got, want) {
		t.Fatalf("idle %v, want %v", got, want)
	}
}
