package scheduler

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// samePlan reports how Index.Place's answer differs from Place's, or "".
func samePlan(got Plan, gotErr error, want Plan, wantErr error) string {
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		return fmt.Sprintf("error %v\nwant  %v", gotErr, wantErr)
	}
	if !slices.Equal(got.Placements, want.Placements) {
		return fmt.Sprintf("placements %v\nwant       %v", got.Placements, want.Placements)
	}
	if len(got.Rejected) != 0 {
		return "the index listed rejections"
	}
	return ""
}

// checkJobs compares Index.Place with Place over the index's snapshot for
// every job, and returns how many of each outcome it saw.
func checkJobs(t *testing.T, x *Index, jobs []Job) map[string]int {
	t.Helper()
	snapshot := x.Snapshot()
	outcomes := map[string]int{}
	for i, job := range jobs {
		want, wantErr := Place(job, snapshot, x.w)
		got, gotErr := x.Place(job)
		if diff := samePlan(got, gotErr, want, wantErr); diff != "" {
			t.Fatalf("job %d %+v over %d nodes:\n%s", i, job, len(snapshot), diff)
		}
		switch {
		case wantErr == nil:
			outcomes["placed"]++
		case errors.Is(wantErr, ErrNoFeasibleNode):
			outcomes["no feasible node"]++
		case errors.Is(wantErr, ErrNotEnoughOperators):
			outcomes["not enough operators"]++
		default:
			outcomes["invalid"]++
		}
	}
	return outcomes
}

type snapshotKind struct {
	name  string
	nodes func(rng *rand.Rand, n int) []Node
	job   func(rng *rand.Rand, nodes []Node) Job
}

var snapshotKinds = []snapshotKind{
	{"uniform", func(rng *rand.Rand, n int) []Node { return syntheticNodes(rng, n, 1+rng.IntN(n)) }, uniformJob},
	{"market", marketNodes, marketJob},
	{"ties", func(rng *rand.Rand, n int) []Node { return tiedNodes(rng, n, 1+rng.IntN(8)) }, tiedJob},
}

// TestIndexMatchesPlace is the index's proof of exactness: random
// snapshots of every kind (ties, exclusions, regions, latency ceilings,
// few operators, busy nodes, unknown positions and origins), random
// weights, random jobs, and random changes to the snapshot between them.
func TestIndexMatchesPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 1))
	total := map[string]int{}
	for trial := range scaled(120) {
		kind := snapshotKinds[trial%len(snapshotKinds)]
		nodes := kind.nodes(rng, 1+rng.IntN(2000))
		w := DefaultWeights()
		if trial%4 == 3 {
			w = randomWeights(rng)
		}
		x, err := NewIndex(nodes, w)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 4 {
			jobs := make([]Job, 10)
			for i := range jobs {
				jobs[i] = kind.job(rng, nodes)
			}
			t.Run(fmt.Sprintf("%s/%d/%d", kind.name, trial, round), func(t *testing.T) {
				for k, v := range checkJobs(t, x, jobs) {
					total[k] += v
				}
			})
			changeSnapshot(rng, x, kind, 1+rng.IntN(200))
		}
	}
	t.Logf("outcomes: %v", total)
	for _, outcome := range []string{"placed", "no feasible node", "not enough operators"} {
		if total[outcome] < scaled(20) {
			t.Errorf("only %d jobs ended %q: the test does not cover it", total[outcome], outcome)
		}
	}
}

func randomWeights(rng *rand.Rand) Weights {
	cuts := []uint32{uint32(rng.IntN(10_001)), uint32(rng.IntN(10_001)), uint32(rng.IntN(10_001))}
	slices.Sort(cuts)
	return Weights{Compute: cuts[0], Latency: cuts[1] - cuts[0], Reliability: cuts[2] - cuts[1], Price: 10_000 - cuts[2]}
}

// changeSnapshot makes n random changes of the kinds a router makes:
// reservations and releases, nodes going offline and coming back, new
// bids, new nodes, and whole new records for known nodes.
func changeSnapshot(rng *rand.Rand, x *Index, kind snapshotKind, n int) {
	fresh := kind.nodes(rng, n)
	for i := range n {
		all := x.nodes // every slot, online or not
		old := all[rng.IntN(len(all))]
		switch rng.IntN(6) {
		case 0:
			x.SetFreeGPUs(old.ID, old.FreeGPUs-1-rng.IntN(2))
		case 1:
			x.SetFreeGPUs(old.ID, old.FreeGPUs+1)
		case 2:
			x.Remove(old.ID)
		case 3:
			old.PricePerHourUomni = fresh[i%len(fresh)].PricePerHourUomni
			x.Set(old)
		case 4:
			n := fresh[i%len(fresh)]
			n.ID = fmt.Sprintf("new-%d-%d", rng.Uint64(), i)
			x.Set(n)
		default:
			n := fresh[i%len(fresh)]
			n.ID = old.ID
			x.Set(n)
		}
	}
}

// scaled returns n, or a fifth of it under the race detector.
func scaled(n int) int {
	if raceEnabled {
		return max(n/5, 1)
	}
	return n
}

// raceShrink divides TestIndexMatchesPlaceAtSize's 2,000 jobs.
var raceShrink = map[bool]int{false: 1, true: 10}[raceEnabled]

// TestIndexMatchesPlaceAtSize places 2,000 jobs over 20,000 nodes, half of
// them on each kind of snapshot (200 under the race detector, which makes
// the full scans ten times slower);
// TestIndexMatchesPlaceAtScale does the 10,000 over 1,000,000.
func TestIndexMatchesPlaceAtSize(t *testing.T) {
	const nodes, jobs = 20_000, 2_000
	for _, kind := range snapshotKinds[:2] {
		t.Run(kind.name, func(t *testing.T) {
			checkAtScale(t, kind, nodes, jobs/2/raceShrink)
		})
	}
}

// TestIndexMatchesPlaceAtScale is the equivalence: 10,000 random
// jobs over 1,000,000 synthetic nodes, each placed by the index and by the
// full scan, of both kinds. It takes about 0.1 s of full scan per job per
// core, so it runs only when asked:
//
//	OMNISYNC_PLACEMENT_1M=1 go test -run AtScale -timeout 2h ./internal/scheduler/
func TestIndexMatchesPlaceAtScale(t *testing.T) {
	if testing.Short() || os.Getenv("OMNISYNC_PLACEMENT_1M") == "" {
		t.Skip("set OMNISYNC_PLACEMENT_1M=1 (and not -short) to place 10,000 jobs over 1,000,000 nodes both ways")
	}
	for _, kind := range snapshotKinds[:2] {
		t.Run(kind.name, func(t *testing.T) {
			checkAtScale(t, kind, 1_000_000, 10_000)
		})
	}
}

// checkAtScale compares the index with the scan for jobs random jobs over
// nodes random nodes: the index's answers first, one at a time, then the
// scans, on every core.
func checkAtScale(t *testing.T, kind snapshotKind, nodes, jobs int) {
	rng := rand.New(rand.NewPCG(uint64(nodes), uint64(jobs)))
	snapshot := kind.nodes(rng, nodes)
	w := DefaultWeights()
	x, err := NewIndex(snapshot, w)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		plan Plan
		err  error
	}
	js := make([]Job, jobs)
	got := make([]answer, jobs)
	for i := range js {
		js[i] = kind.job(rng, snapshot)
		got[i].plan, got[i].err = x.Place(js[i])
	}
	var (
		mu       sync.Mutex
		failures []string
		outcomes = map[string]int{}
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				want, wantErr := Place(js[i], snapshot, w)
				diff := samePlan(got[i].plan, got[i].err, want, wantErr)
				mu.Lock()
				if diff != "" {
					failures = append(failures, fmt.Sprintf("job %d %+v:\n%s", i, js[i], diff))
				}
				outcomes[outcomeOf(wantErr)]++
				mu.Unlock()
			}
		})
	}
	for i := range js {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, f := range failures[:min(len(failures), 5)] {
		t.Error(f)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d jobs placed differently", len(failures), jobs)
	}
	t.Logf("%d jobs over %d %s nodes, all identical: %v", jobs, nodes, kind.name, outcomes)
}

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "placed"
	case errors.Is(err, ErrNoFeasibleNode):
		return "no feasible node"
	case errors.Is(err, ErrNotEnoughOperators):
		return "not enough operators"
	}
	return "invalid"
}

// TestIndexExtremeValues places jobs whose limits, like the nodes'
// attributes, sit about the values the index saturates (2³² for VRAM,
// TFLOPS and bids, int32 for free GPUs, 2¹⁶ region codes).
func TestIndexExtremeValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := extremeIndex(t, rng, 1<<16)
	var jobs []Job
	for range scaled(300) {
		jobs = append(jobs, extremeJob(rng))
	}
	outcomes := checkJobs(t, x, jobs)
	t.Logf("outcomes: %v", outcomes)
	if outcomes["placed"] < scaled(10) {
		t.Fatalf("outcomes %v: too few placed to test anything", outcomes)
	}
}

// TestVerdictMatchesCheckers checks Index.verdict and Index.score, which
// take a node's values from its hot data where that is exact, against the
// checkers and scorers on the Node itself, node by node, at the values
// where the hot data saturates, for jobs with and without an origin, a
// latency ceiling or exclusions. (A node that is wrongly feasible seldom
// changes a placement, so the answers alone would not show it.)
func TestVerdictMatchesCheckers(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x := extremeIndex(t, rng, manyRegions-3) // r0 to r2 coded below manyRegions, late-0 to late-2 at it
	exact := 0
	for s := range x.nodes {
		n := &x.nodes[s]
		if s%2 == 0 { // values the hot data holds exactly, about a job's limits
			ordinary := func() uint64 { return uint64(rng.IntN(1 << 31)) }
			n.VRAMMiB, n.TFLOPSMilli, n.PricePerHourUomni, n.FreeGPUs = ordinary(), ordinary(), ordinary(), rng.IntN(4)
		}
		switch rng.IntN(3) {
		case 0:
			n.RTTMicros = uint32(1 + rng.IntN(400_000))
		case 1:
			n.Location = Location{LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000)}
		}
		online := x.hot[s].online
		if x.hot[s] = x.hotOf(n); x.hot[s].exact() {
			exact++
		}
		x.hot[s].online = online
	}
	if exact < 100 || exact == len(x.hot) {
		t.Fatalf("%d of %d nodes' hot data is exact: the test needs many of both kinds", exact, len(x.hot))
	}
	sc := new(Scratch)
	feasibleNodes := 0
	for k := range scaled(400) {
		job := extremeJob(rng)
		if k%2 == 0 {
			job.Origin = Location{LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000)}
		}
		job.MaxLatencyMicros = []uint32{0, 0, 20_000, 100_000, 300_000}[k%5]
		if k%7 == 0 {
			job.Exclude = []string{x.nodes[rng.IntN(len(x.nodes))].ID}
		}
		q := x.prepare(&sc.q, job)
		q.setFastest([]uint64{1, 1 << 32, 1 << 63}[k%3], x.w)
		for s := range x.nodes {
			slot := int32(s)
			c := &candidate{node: &x.nodes[s]}
			want := true
			for _, check := range x.checkers {
				if check(&q.req, c) != feasibleNode {
					want = false
					break
				}
			}
			f, got := x.verdict(q, slot)
			if got != want || (got && (f.latency != c.latency || f.latencyKnown != c.latencyKnown)) {
				t.Fatalf("job %+v, node %+v: verdict %v %+v, the checkers %v (latency %d, %v)", job, x.nodes[s], got, f, want, c.latency, c.latencyKnown)
			}
			if !got {
				continue
			}
			feasibleNodes++
			if got, want := x.score(q, slot, f), score(q.job, &x.nodes[s], f, q.fastest, x.w); got != want {
				t.Fatalf("job %+v, node %+v: scores %+v, the scorers %+v", job, x.nodes[s], got, want)
			}
		}
	}
	if feasibleNodes < scaled(1_000) {
		t.Fatalf("only %d feasible nodes: the test checks too few verdicts", feasibleNodes)
	}
	t.Logf("%d of %d nodes' hot data exact; %d feasible nodes", exact, len(x.hot), feasibleNodes)
}

// TestVerdictHonoursExclusions checks verdict's look at a job's excluded
// IDs by their hashes: a node the job excludes is refused though its
// hot data is exact, one whose ID only shares its hash with an excluded ID
// is not, and a job naming more IDs than verdict hashes has the checkers
// refuse the nodes it names and no other.
func TestVerdictHonoursExclusions(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 44))
	nodes := marketNodes(rng, 500)
	x, err := NewIndex(nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	sc := new(Scratch)
	anyJob := Job{GPUs: 1, MaxPricePerHourUomni: 1 << 40, Replicas: 1}
	checked := 0
	for s := int32(0); s < int32(len(x.nodes)) && checked < 20; s++ {
		h, id := &x.hot[s], x.nodes[s].ID
		if _, ok := x.verdict(x.prepare(&sc.q, anyJob), s); !ok || !h.exact() {
			continue
		}
		checked++
		decoy := ""
		for i := 0; decoy == ""; i++ {
			if d := fmt.Sprintf("decoy-%d", i); hash16(d) == h.idHash && d != id {
				decoy = d
			}
		}
		many := []string{id}
		for i := range maxExcludedHashes {
			many = append(many, fmt.Sprintf("other-%d", i))
		}
		for _, c := range []struct {
			exclude []string
			want    bool
		}{{[]string{decoy}, true}, {[]string{decoy, id}, false}, {[]string{id}, false}, {many, false}, {many[1:], true}} {
			job := anyJob
			job.Exclude = c.exclude
			if _, got := x.verdict(x.prepare(&sc.q, job), s); got != c.want {
				t.Fatalf("node %s (hash %d), job excluding %v: verdict %v, want %v", id, h.idHash, c.exclude, got, c.want)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d nodes checked", checked)
	}
}

// extremeIndex indexes nodes with values about where the hot data
// saturates (VRAM, TFLOPS and bids about 2³², free GPUs about 2³¹), in
// regions coded after unused others, which pass 2¹⁶, where the hot data
// saturates region codes, when unused is 2¹⁶.
func extremeIndex(t *testing.T, rng *rand.Rand, unused int) *Index {
	t.Helper()
	var nodes []Node
	for i := range 300 {
		n := testNode(fmt.Sprintf("x-%03d", i), fmt.Sprintf("op-%d", i%7))
		n.VRAMMiB, n.TFLOPSMilli, n.PricePerHourUomni = extremeValue(rng), extremeValue(rng), extremeValue(rng)
		n.FreeGPUs = []int{-5, 0, 1, 2, 1<<31 - 1, 1 << 31, 1 << 40}[rng.IntN(7)]
		n.Region = fmt.Sprintf("r%d", rng.IntN(3))
		nodes = append(nodes, n)
	}
	for i := range 100 {
		n := testNode(fmt.Sprintf("z-%03d", i), fmt.Sprintf("op-%d", i%5))
		n.Region = fmt.Sprintf("late-%d", i%3)
		nodes = append(nodes, n)
	}
	// The index numbers regions as it meets them, so these come first.
	x, err := NewIndex(nil, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	for i := range unused {
		x.regions[fmt.Sprintf("unused-%d", i)] = uint32(i)
	}
	if err := x.rebuild(nodes, nil); err != nil {
		t.Fatal(err)
	}
	return x
}

func extremeValue(rng *rand.Rand) uint64 {
	return []uint64{0, 1, 1<<32 - 2, 1<<32 - 1, 1 << 32, 1<<32 + 1, 1 << 40, 1<<64 - 1}[rng.IntN(8)]
}

// extremeJob asks for what extremeIndex's nodes offer, at the same values.
func extremeJob(rng *rand.Rand) Job {
	job := testJob()
	job.VRAMMiB, job.MinTFLOPSMilli = extremeValue(rng), extremeValue(rng)
	if job.MaxPricePerHourUomni = extremeValue(rng); job.MaxPricePerHourUomni == 0 {
		job.MaxPricePerHourUomni = 1
	}
	job.GPUs = []int{1, 2, 1<<31 - 1, 1 << 31, 1 << 41}[rng.IntN(5)]
	job.Region = []string{"", "r1", "late-2", "unused-7"}[rng.IntN(4)]
	job.Replicas = 1 + rng.IntN(3)
	return job
}

// TestIndexMatchesPlaceOneSidedWeights checks the bound on reliability
// and bid together (box.relBid) at its edges: no weight on one of them, or
// all of it, for jobs whose price ceilings lie either side of
// relBidCeiling.
func TestIndexMatchesPlaceOneSidedWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	total := map[string]int{}
	for _, w := range []Weights{
		{Compute: 4000, Latency: 3000, Reliability: 3000},
		{Compute: 4000, Latency: 3000, Price: 3000},
		{Reliability: 10_000},
		{Price: 10_000},
		{Reliability: 5000, Price: 5000},
	} {
		for _, kind := range snapshotKinds {
			nodes := kind.nodes(rng, 3000)
			x, err := NewIndex(nodes, w)
			if err != nil {
				t.Fatal(err)
			}
			jobs := make([]Job, scaled(40))
			for i := range jobs {
				jobs[i] = kind.job(rng, nodes)
				jobs[i].MaxPricePerHourUomni = []uint64{1, relBidCeiling / 3, relBidCeiling, 3 * relBidCeiling, 1 << 40}[i%5]
			}
			t.Run(fmt.Sprintf("%+v/%s", w, kind.name), func(t *testing.T) {
				for k, v := range checkJobs(t, x, jobs) {
					total[k] += v
				}
			})
		}
	}
	t.Logf("outcomes: %v", total)
	if total["placed"] < scaled(200) {
		t.Errorf("only %d jobs placed: the test does not cover the bound", total["placed"])
	}
}

// TestBoxBoundsHoldEveryNode checks the search's bound on every box
// directly, where the tests above see it only through the answers: for
// every box and every node under it that a job may be placed on, the
// box's bound is at least the node's Total. The snapshots mix measured
// RTTs beyond DefaultLatencyCeilingMicros, unknown latencies and positions
// (rttCapped's cases), the weights put none or all on latency, record or
// bid, the jobs' latency ceilings lie either side of the default, and a
// third of the jobs have no origin.
func TestBoxBoundsHoldEveryNode(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 64))
	weights := []Weights{DefaultWeights(), {Compute: 4000, Reliability: 3000, Price: 3000},
		{Latency: 10_000}, {Reliability: 5000, Latency: 5000}, {Price: 5000, Latency: 5000}}
	ceilings := []uint32{0, 0, 1_000, 20_000, DefaultLatencyCeilingMicros - 1, DefaultLatencyCeilingMicros,
		DefaultLatencyCeilingMicros + 1, 1_000_000}
	checked := 0
	for trial := range scaled(24) {
		kind := snapshotKinds[trial%len(snapshotKinds)]
		nodes := kind.nodes(rng, 500+rng.IntN(1500))
		for i := range nodes {
			switch rng.IntN(6) {
			case 0: // measured, often beyond the default ceiling
				nodes[i].RTTMicros = uint32(1 + rng.IntN(2*DefaultLatencyCeilingMicros))
			case 1: // latency unknown
				nodes[i].RTTMicros, nodes[i].Location = 0, Location{}
			}
		}
		w := weights[trial%len(weights)]
		if trial%4 == 3 {
			w = randomWeights(rng)
		}
		x, err := NewIndex(nodes, w)
		if err != nil {
			t.Fatal(err)
		}
		sc := new(Scratch)
		for k := range 20 {
			job := kind.job(rng, nodes)
			job.MaxLatencyMicros = ceilings[k%len(ceilings)]
			if k%3 == 0 { // no origin: the located nodes' latency is unknown
				job.Origin = Location{}
			}
			q := x.prepare(&sc.q, job)
			fastest, ok := x.fastest(q)
			if !ok {
				continue
			}
			q.setFastest(fastest, x.w)
			s := search{x: x, q: q, top: topList{want: 1}, floor: -1}
			for i := range x.tree {
				bound, ok := s.bound(int32(i))
				sp := x.spans[i]
				for slot := sp.lo; slot < sp.hi; slot++ {
					f, feasible := x.verdict(q, slot)
					if !feasible {
						continue
					}
					checked++
					if total := score(q.job, &x.nodes[slot], f, fastest, x.w).Total; !ok || bound < total {
						t.Fatalf("trial %d, weights %+v, job %+v: box %d bounded at %d (%v) holds %+v, whose Total is %d",
							trial, w, job, i, bound, ok, x.nodes[slot], total)
					}
				}
			}
		}
	}
	t.Logf("%d box and node pairs checked", checked)
	if checked < scaled(100_000) {
		t.Fatalf("only %d box and node pairs checked", checked)
	}
}

// TestIndexFreeGPUsKeepBoxesExact checks SetFreeGPUs's shortcuts (a node
// that gains GPUs, or becomes available, updates the boxes above it
// without recomputing them): after many reservations and releases, every
// box must be what recomputing it from its nodes gives.
func TestIndexFreeGPUsKeepBoxesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 30))
	nodes := marketNodes(rng, 3000)
	x, err := NewIndex(nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	for step := range scaled(2000) {
		n := &nodes[rng.IntN(len(nodes))]
		free := []int{-1, 0, 0, 1, 1, 2, 3, 4, 8, 1 << 40}[rng.IntN(10)]
		if rng.IntN(2) == 0 {
			cur, _ := x.Node(n.ID)
			free = cur.FreeGPUs + rng.IntN(3)
		}
		x.SetFreeGPUs(n.ID, free)
		kept := slices.Clone(x.tree)
		for i := int32(len(x.tree)) - 1; i >= 0; i-- {
			x.recompute(i, -1)
		}
		for i := range kept {
			if kept[i] != x.tree[i] {
				t.Fatalf("step %d, box %d: kept %+v, recomputed %+v", step, i, kept[i], x.tree[i])
			}
		}
	}
}

func TestIndexUpdates(t *testing.T) {
	a, b := testNode("a", "x"), testNode("b", "y")
	b.TFLOPSMilli = 50_000
	x, err := NewIndex([]Node{a, b}, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	place := func() string {
		plan, err := x.Place(testJob())
		if err != nil {
			return err.Error()
		}
		return plan.Placements[0].NodeID
	}
	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"the faster node wins", func() {}, "a"},
		{"a reservation takes its GPUs", func() { x.SetFreeGPUs("a", 0) }, "b"},
		{"the release gives them back", func() { x.SetFreeGPUs("a", 2) }, "a"},
		{"offline", func() { x.Remove("a") }, "b"},
		{"both offline", func() { x.Remove("b") }, "no feasible node: the snapshot has no nodes"},
		{"back with a bid over the ceiling", func() { a.PricePerHourUomni = 2_000_000; x.Set(a) },
			"no feasible node: all 1 nodes rejected: 1 bids above the price ceiling (1 OMNI per GPU-hour)"},
		{"a new node", func() { x.Set(testNode("c", "z")) }, "c"},
	}
	for _, s := range steps {
		s.change()
		if got := place(); got != s.want {
			t.Fatalf("%s: placed %q, want %q", s.name, got, s.want)
		}
	}
	if x.Len() != 2 || x.SetFreeGPUs("b", 1) || x.Remove("b") || x.Remove("nobody") {
		t.Fatalf("Len %d; offline nodes must not take updates", x.Len())
	}
	if _, err := NewIndex([]Node{a, a}, DefaultWeights()); !errors.Is(err, ErrDuplicateNode) {
		t.Fatalf("duplicate IDs: %v", err)
	}
	if _, err := NewIndex(nil, Weights{}); !errors.Is(err, ErrInvalidWeights) {
		t.Fatalf("bad weights: %v", err)
	}
}

// TestTreeSeparatesModelsOfOneRating checks the cut buildTree makes for
// speed alone: nodes of one TFLOPS rating and two VRAM sizes (A100s with
// 40 and 80 GiB) never share a leaf, so a job needing 80 GiB is not led
// into a box by the 40 GiB cards' bids.
func TestTreeSeparatesModelsOfOneRating(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nodes := marketNodes(rng, 4000)
	for i := range nodes {
		nodes[i].TFLOPSMilli, nodes[i].VRAMMiB = 312_000, []uint64{40 * gib, 80 * gib}[rng.IntN(2)]
	}
	x, err := NewIndex(nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.tree {
		if !x.tree[i].leaf() {
			continue
		}
		sp := x.spans[i]
		for s := sp.lo + 1; s < sp.hi; s++ {
			if x.nodes[s].VRAMMiB != x.nodes[sp.lo].VRAMMiB {
				t.Fatalf("leaf %d holds %d and %d MiB cards of one rating", i, x.nodes[sp.lo].VRAMMiB, x.nodes[s].VRAMMiB)
			}
		}
	}
}

// TestIndexIDKeysOrderAsIDs checks the keys that break ties of Total in
// the search: main-tree slots ordered by their keys exactly as by their IDs,
// added slots (key 0) compared by ID, and every box's minKey its minID's,
// across additions and the rebuilds they cause.
func TestIndexIDKeysOrderAsIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x, err := NewIndex(tiedNodes(rng, 300, 4), DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	x.overflowLimit = 40
	check := func() {
		t.Helper()
		for range 3000 {
			s, u := int32(rng.IntN(len(x.nodes))), int32(rng.IntN(len(x.nodes)))
			if got, want := x.idNotBefore(x.idKey[s], s, x.idKey[u], u), x.nodes[s].ID >= x.nodes[u].ID; got != want {
				t.Fatalf("slots %d (%q, key %d) and %d (%q, key %d): idNotBefore %v", s, x.nodes[s].ID, x.idKey[s], u, x.nodes[u].ID, x.idKey[u], got)
			}
		}
		for i := range x.tree {
			if b := &x.tree[i]; b.minKey != x.idKey[b.minID] {
				t.Fatalf("box %d: minKey %d, its minID's key %d", i, b.minKey, x.idKey[b.minID])
			}
		}
	}
	check()
	for _, n := range tiedNodes(rng, 100, 4) {
		n.ID += "-added" // between the others' IDs, not after them all
		x.Set(n)
		check()
	}
}

// TestIndexOverflowRebuild adds more nodes than the overflow holds, so the
// index rebuilds itself, and checks it still agrees with Place and that
// every leaf knows its slots (box.slots, which the search reads rather
// than spans) in the main tree and the overflow's.
func TestIndexOverflowRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, err := NewIndex(marketNodes(rng, 100), DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	x.overflowLimit = 64
	more := marketNodes(rng, 150)
	for i, n := range more {
		n.ID = fmt.Sprintf("added-%d", i)
		x.Set(n)
		for b := range x.tree {
			if x.tree[b].leaf() && x.tree[b].slots() != x.spans[b] {
				t.Fatalf("after %d additions leaf %d says it holds slots %v, its span is %v", i+1, b, x.tree[b].slots(), x.spans[b])
			}
		}
		if i%10 == 0 || i == len(more)-1 {
			jobs := make([]Job, 10)
			for k := range jobs {
				jobs[k] = marketJob(rng, more)
			}
			checkJobs(t, x, jobs)
		}
	}
	// Rebuilt at the 65th and the 130th addition.
	if x.mainEnd != 100+130 || x.Len() != 100+len(more) {
		t.Fatalf("main tree holds %d slots, index %d nodes", x.mainEnd, x.Len())
	}
}

func TestNoFitExplanation(t *testing.T) {
	far := Location{LatE6: 35_676_200, LonE6: 139_650_300} // Tokyo
	var nodes []Node
	add := func(n int, change func(*Node)) {
		for range n {
			nd := testNode(fmt.Sprintf("n%03d", len(nodes)), "op")
			change(&nd)
			nodes = append(nodes, nd)
		}
	}
	add(12, func(n *Node) { n.VRAMMiB = 16 * gib })
	add(5, func(n *Node) { n.PricePerHourUomni = 1_500_000 })
	add(3, func(n *Node) { n.Location = far })
	add(1, func(n *Node) { n.Location, n.VRAMMiB = far, 8*gib })
	job := testJob()
	job.MaxLatencyMicros = 50_000
	want := "no feasible node: all 21 nodes rejected: 13 have too little VRAM (need 24 GiB per GPU), " +
		"5 bid above the price ceiling (1 OMNI per GPU-hour), 4 are beyond the latency ceiling (50 ms)"
	_, err := Place(job, nodes, DefaultWeights())
	if !errors.Is(err, ErrNoFeasibleNode) || err.Error() != want {
		t.Fatalf("Place: %v\nwant   %s", err, want)
	}
	x, _ := NewIndex(nodes, DefaultWeights())
	if _, err := x.Place(job); fmt.Sprint(err) != want {
		t.Fatalf("Index.Place: %v\nwant         %s", err, want)
	}
	// Every criterion, each with its limit.
	job = Job{GPUs: 3, VRAMMiB: 80*gib + 512, MinTFLOPSMilli: 200_500, MaxPricePerHourUomni: 1,
		Region: "mars", MaxLatencyMicros: 1_500, Replicas: 1, Exclude: []string{"n000"}}
	_, err = Place(job, nodes, DefaultWeights())
	for _, part := range []string{
		"21 have too few free GPUs (need 3)", "21 have too little VRAM (need 82432 MiB per GPU)",
		"21 are too slow (need 200.5 TFLOPS per GPU)", "21 are outside region mars",
		"21 bid above the price ceiling (0.000001 OMNI per GPU-hour)", "21 have no known latency, and the job has a ceiling",
		"1 is excluded by the job",
	} {
		if !strings.Contains(fmt.Sprint(err), part) {
			t.Errorf("%v\nlacks %q", err, part)
		}
	}
	if _, xerr := x.Place(job); fmt.Sprint(xerr) != fmt.Sprint(err) {
		t.Fatalf("Index.Place: %v\nPlace:       %v", xerr, err)
	}
}

// TestLatencyBoundsHold checks the geometry the index prunes and counts
// by against EstimateLatencyMicros itself, where it is least precise too:
// points close together and near the antipode.
func TestLatencyBoundsHold(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	randomPlace := func() Location {
		return Location{LatE6: int32(rng.IntN(180_000_001) - 90_000_000), LonE6: int32(rng.IntN(360_000_001) - 180_000_000)}
	}
	for range scaled(100_000) {
		a, b := randomPlace(), randomPlace()
		switch rng.IntN(4) {
		case 0: // close together
			b = Location{LatE6: a.LatE6 + int32(rng.IntN(2001)-1000), LonE6: a.LonE6 + int32(rng.IntN(2001)-1000)}
		case 1: // near the antipode
			b = Location{LatE6: -a.LatE6 + int32(rng.IntN(2001)-1000), LonE6: a.LonE6 + 180_000_000 + int32(rng.IntN(2001)-1000)}
			if b.LonE6 > 180_000_000 {
				b.LonE6 -= 360_000_000
			}
		}
		if !a.Known() || !b.Known() {
			continue
		}
		q := &query{job: &Job{Origin: a}, origin: unitVector(a), located: true}
		v := unitVector(b)
		v32 := [3]float32{float32(v[0]), float32(v[1]), float32(v[2])}
		cos := dot(q.origin, v32)
		est := EstimateLatencyMicros(a, b)
		if lo := q.latencyAtLeast(v32); lo > est {
			t.Fatalf("%v to %v: estimate %d µs below the bound %d", a, b, est, lo)
		}
		// A ceiling at the estimate, or a microsecond either side.
		ceiling := est - 1 + uint32(rng.IntN(3))
		r := q.ring(ceiling)
		if (cos <= r.beyond && est <= ceiling) || (cos > r.within && est > ceiling) {
			t.Fatalf("%v to %v: estimate %d µs, ceiling %d: cosine %v on the wrong side of the ring's %v..%v",
				a, b, est, ceiling, cos, r.beyond, r.within)
		}
		// A circle around b, from which a's nearest and farthest points
		// bound the estimate to b.
		var around []Location
		for range 1 + rng.IntN(5) {
			around = append(around, Location{LatE6: clamp(b.LatE6+int32(rng.IntN(4_000_001)-2_000_000), 90_000_000), LonE6: clamp(b.LonE6+int32(rng.IntN(4_000_001)-2_000_000), 180_000_000)})
		}
		c := circleOf(func(yield func([3]float32) bool) {
			for _, l := range append(around, b) {
				u := unitVector(l)
				if !yield([3]float32{float32(u[0]), float32(u[1]), float32(u[2])}) {
					return
				}
			}
		})
		if rng.IntN(2) == 0 {
			c = c.merge(circleOf(func(yield func([3]float32) bool) { yield(v32) }))
		}
		var gb geoBox
		gb.setSpot(c)
		ceiling = uint32(LastMileMicros + rng.IntN(250_000))
		r = q.ring(ceiling)
		side := r.side(q, &gb)
		for _, l := range append(around, b) {
			est := EstimateLatencyMicros(a, l)
			if lo := latencyAtLeast(q.nearest(&c)); lo > est {
				t.Fatalf("%v to %v: estimate %d µs below its circle's bound %d", a, l, est, lo)
			}
			if (side == within && est > ceiling) || (side == outside && est <= ceiling) {
				t.Fatalf("%v to %v: estimate %d µs, ceiling %d, but its circle was on side %d", a, l, est, ceiling, side)
			}
		}
	}
	for x := -1.0; x <= 1; x += 1e-6 {
		if d := math.Abs(acos(x) - math.Acos(x)); d > 3e-8 {
			t.Fatalf("acos(%v) off by %v", x, d)
		}
	}
}

// TestRingSidesAtTheCeiling walks nodes across a ring a tenth of a metre
// at a time, along meridians from random origins, and checks that every
// node the ring calls surely beyond or surely within its ceiling is so by
// EstimateLatencyMicros: the ring's margins (ringCosMargin,
// ringAngleMargin) are narrower than the bounds', so that fewer nodes need
// the estimate, and this is where they would fail first. It checks the
// fine band (fineBeyond, fineWithin) too, against the float64 vector of
// each Location that a leaf's offsets stand for.
func TestRingSidesAtTheCeiling(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for range scaled(300) {
		origin := Location{LatE6: int32(rng.IntN(170_000_001) - 85_000_000), LonE6: int32(rng.IntN(360_000_001) - 180_000_000)}
		q := &query{job: &Job{Origin: origin}, origin: unitVector(origin), located: true}
		// Northwards to the pole, or southwards when nearer it.
		step, room := int32(1), 90_000_000-origin.LatE6
		if origin.LatE6 > 0 {
			step, room = -1, origin.LatE6+90_000_000
		}
		at := func(d int32) Location { return Location{LatE6: origin.LatE6 + step*d, LonE6: origin.LonE6} }
		// A ceiling the meridian crosses, and where it does: the estimate
		// grows with d.
		d := int32(rng.IntN(int(room) - 10_000))
		ceiling := EstimateLatencyMicros(origin, at(d)) + uint32(rng.IntN(3)) - 1
		lo, hi := int32(0), room
		for lo < hi {
			if mid := lo + (hi-lo)/2; EstimateLatencyMicros(origin, at(mid)) > ceiling {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		r := q.ring(ceiling)
		for d := max(lo-2000, 0); d <= min(lo+2000, room); d++ {
			l := at(d)
			v := unitVector(l)
			cos := dot(q.origin, [3]float32{float32(v[0]), float32(v[1]), float32(v[2])})
			est := EstimateLatencyMicros(origin, l)
			if (cos <= r.beyond && est <= ceiling) || (cos > r.within && est > ceiling) {
				t.Fatalf("%v to %v: estimate %d µs, ceiling %d: cosine %v on the wrong side of the ring's %v..%v",
					origin, l, est, ceiling, cos, r.beyond, r.within)
			}
			fine := q.origin[0]*v[0] + q.origin[1]*v[1] + q.origin[2]*v[2]
			if (fine <= r.fineBeyond && est <= ceiling) || (fine > r.fineWithin && est > ceiling) {
				t.Fatalf("%v to %v: estimate %d µs, ceiling %d: cosine %v on the wrong side of the fine band %v..%v",
					origin, l, est, ceiling, fine, r.fineBeyond, r.fineWithin)
			}
		}
	}
}

// TestGeoCountMatchesEstimates counts the nodes beyond random latency
// ceilings from random origins with the position tree, and node by node
// with EstimateLatencyMicros, on a market snapshot whose nodes move a
// little (most stay inside their leaves' circles, so only their own
// offsets change) or far (the leaf's circle is drawn anew, and every
// offset of it with it), leave the map, get a measured RTT, go offline
// and join (into the overflow tree) between rounds; and checks both trees
// (checkGeoTree) as built and after every round.
func TestGeoCountMatchesEstimates(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	nodes := marketNodes(rng, 5000)
	x, err := NewIndex(nodes[:4000], DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	checkGeoTree(t, x, &x.geo, "built")
	joining := nodes[4000:]
	for round := range 20 {
		joining = changeNodes(rng, x, joining, 100)
		checkGeoTree(t, x, &x.geo, fmt.Sprintf("round %d", round))
		checkGeoTree(t, x, &x.geoOverflow, fmt.Sprintf("round %d, overflow", round))
		for range 50 {
			origin := popularMetro(rng).near(rng)
			ceiling := uint32(LastMileMicros - 1000 + rng.IntN(220_000))
			q := &query{job: &Job{Origin: origin}, origin: unitVector(origin), located: true}
			r := q.ring(ceiling)
			got := x.geo.beyond(x, q, &r, 0) + x.geoOverflow.beyond(x, q, &r, 0)
			want := 0
			for s := range x.nodes {
				if n := &x.nodes[s]; x.hot[s].online && x.hot[s].located && EstimateLatencyMicros(origin, n.Location) > ceiling {
					want++
				}
			}
			if got != want {
				t.Fatalf("round %d, from %v beyond %d µs: counted %d, want %d", round, origin, ceiling, got, want)
			}
		}
	}
}

// changeNodes makes n random changes to x's nodes: a move of up to a
// hundredth of a degree (most stay inside their boxes' circles) or to a
// random metro, off the map, a measured RTT (no longer located), a node
// going offline (still held), or the next of joining joining the index
// (into the overflow tree; with none left, a node is set again as it is).
// It returns the nodes still to join.
func changeNodes(rng *rand.Rand, x *Index, joining []Node, n int) []Node {
	for range n {
		node := x.nodes[rng.IntN(len(x.nodes))]
		switch rng.IntN(6) {
		case 0:
			node.Location.LatE6 += int32(rng.IntN(20_001) - 10_000)
			node.Location.LonE6 += int32(rng.IntN(20_001) - 10_000)
		case 1:
			node.Location = popularMetro(rng).near(rng)
		case 2:
			node.Location = Location{}
		case 3:
			node.RTTMicros = uint32(1000 + rng.IntN(50_000))
		case 4:
			x.Remove(node.ID)
			continue
		default:
			if len(joining) > 0 {
				node, joining = joining[0], joining[1:]
			}
		}
		x.Set(node)
	}
	return joining
}

// TestCirclesHoldTheirNodes moves nodes a little (most stay inside their
// boxes' circles, which are then kept), far, off the map, to a measured
// RTT and offline (changeNodes), and checks that every box's circle, in
// both trees, still holds every located node under it, and that the count's copy of each position (geoTree.locs) is
// the node's. A box's circle is drawn about its own nodes and need not hold
// its children's, so this is not implied by the circles' own tests.
func TestCirclesHoldTheirNodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	x, err := NewIndex(marketNodes(rng, 3000), DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	check := func(c circle, vs func(yield func([3]float32) bool), what string) {
		for v := range vs {
			if c.radius < 0 || angle(widen3(c.center), widen3(v)) > float64(c.radius) {
				t.Fatalf("%s: circle %v does not hold %v", what, c, v)
			}
		}
	}
	for round := range 20 {
		changeNodes(rng, x, nil, 100)
		for i := range x.tree {
			check(x.tree[i].spot, x.located(x.spans[i]), fmt.Sprintf("round %d, box %d", round, i))
		}
		for i := range x.geo.boxes {
			sp := x.geo.spans[i]
			// Every located node, online or not, read from the nodes
			// themselves rather than through what the tree reads.
			located := func(yield func([3]float32) bool) {
				for _, s := range x.geo.perm[sp.lo:sp.hi] {
					if n := &x.nodes[s]; n.RTTMicros == 0 && n.Location.Known() && !yield(x.hot[s].v) {
						return
					}
				}
			}
			check(x.geo.spots[i], located, fmt.Sprintf("round %d, position box %d", round, i))
		}
		for k, s := range x.geo.perm {
			if x.geo.locs[k] != x.nodes[s].Location {
				t.Fatalf("round %d: the count has node %q at %v, not %v", round, x.nodes[s].ID, x.geo.locs[k], x.nodes[s].Location)
			}
		}
	}
}

func clamp(v, limit int32) int32 { return min(max(v, -limit), limit) }

// TestMultiset grows multisets of values from a wide range (few
// duplicates, chunks splitting), a narrow one (every value held many
// times, as free-GPU counts are) and a middling one, then drains them,
// checking every count against the values held.
func TestMultiset(t *testing.T) {
	for _, spread := range []int{8, 3000, 1 << 40} {
		t.Run(fmt.Sprint(spread), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(spread)))
			held := []uint64{1, 5, 5}
			for range 1500 {
				held = append(held, uint64(rng.IntN(spread)))
			}
			m := newMultiset(held)
			check := func() {
				probe := uint64(rng.IntN(spread + 100))
				want := 0
				for _, v := range held {
					if v < probe {
						want++
					}
				}
				if got := m.below(probe); got != want || m.n != len(held) {
					t.Fatalf("below(%d) = %d, want %d (n %d of %d)", probe, got, want, m.n, len(held))
				}
			}
			for range 6_000 {
				if rng.IntN(3) == 0 {
					i := rng.IntN(len(held))
					m.remove(held[i])
					held = slices.Delete(held, i, i+1)
				} else {
					v := uint64(rng.IntN(spread))
					m.add(v)
					held = append(held, v)
				}
				check()
			}
			for len(held) > 0 {
				i := rng.IntN(len(held))
				m.remove(held[i])
				held = slices.Delete(held, i, i+1)
				check()
			}
			if m.above(^uint64(0)) != 0 || len(m.chunks) != 0 {
				t.Fatal("values left")
			}
			m.add(3)
			held = []uint64{3}
			check()
		})
	}
}

// TestBigJobsSeeEveryNodeThatMayFit follows nodes into and out of the
// index's second tree for big jobs (Index.big) as they gain and lose free
// GPUs, with and without a known count of GPUs: a job of eight GPUs must
// be placed as the scan places it after every change, on the node that
// became the best. (The random tests cover it too; these are the changes
// that move a node between the trees.)
func TestBigJobsSeeEveryNodeThatMayFit(t *testing.T) {
	node := func(id string, gpus, free int, bid uint64) Node {
		n := testNode(id, "op-"+id)
		n.GPUs, n.FreeGPUs, n.PricePerHourUomni = gpus, free, bid
		return n
	}
	x, err := NewIndex([]Node{
		node("eight-busy", 8, 0, 700_000), // has the GPUs, none free
		node("unknown", 0, 2, 500_000),    // its GPUs unknown, two free
		node("small", 2, 2, 300_000),      // says it has two
		node("eight-free", 8, 8, 900_000), // the only fit at first
		node("four", 4, 4, 100_000),       // cannot fit, then says it can
	}, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	job := testJob()
	job.GPUs = 8
	for _, step := range []struct {
		change func()
		want   string // the node the job is placed on, "" for none
	}{
		{func() {}, "eight-free"},
		{func() { x.SetFreeGPUs("eight-busy", 8) }, "eight-busy"},
		{func() { x.SetFreeGPUs("unknown", 8) }, "unknown"}, // free beyond what it was known to have
		{func() { x.Remove("unknown") }, "eight-busy"},
		{func() { x.Set(node("unknown", 0, 8, 500_000)) }, "unknown"}, // back, as Set brings it
		{func() { x.SetFreeGPUs("unknown", 1) }, "eight-busy"},
		{func() { x.SetFreeGPUs("eight-busy", 0); x.SetFreeGPUs("eight-free", 0) }, ""},
		{func() { x.Set(node("small", 2, 9, 300_000)) }, "small"}, // more free than it said it had
		{func() { x.Set(node("four", 8, 8, 100_000)) }, "four"},   // new hardware
		{func() { x.SetFreeGPUs("four", 1) }, "small"},            // busy again, in both trees
		{func() { x.Set(node("newcomer", 16, 16, 50_000)) }, "newcomer"},
		{func() { x.SetFreeGPUs("newcomer", 0) }, "small"},
	} {
		step.change()
		want, wantErr := Place(job, x.Snapshot(), x.w)
		got, gotErr := x.Place(job)
		if diff := samePlan(got, gotErr, want, wantErr); diff != "" {
			t.Fatalf("placed on %v; %s", placedIDs(got), diff)
		}
		if ids := placedIDs(got); (step.want == "") != (len(ids) == 0) || (len(ids) > 0 && ids[0] != step.want) {
			t.Fatalf("placed on %v (%v), want %q", ids, gotErr, step.want)
		}
	}
}
