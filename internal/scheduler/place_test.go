package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const gib = 1024

var frankfurt = Location{LatE6: 50_110_900, LonE6: 8_682_100}

func testJob() Job {
	return Job{
		GPUs: 1, VRAMMiB: 24 * gib, MinTFLOPSMilli: 50_000,
		MaxPricePerHourUomni: 1_000_000, Origin: frankfurt, Replicas: 1,
	}
}

// testNode is feasible for testJob.
func testNode(id, operator string) Node {
	return Node{
		ID: id, Operator: operator, FreeGPUs: 2, VRAMMiB: 80 * gib, TFLOPSMilli: 100_000,
		Region: "eu-central", Location: frankfurt, ReliabilityBP: 9000, PricePerHourUomni: 500_000,
	}
}

func placedIDs(p Plan) []string {
	ids := make([]string, len(p.Placements))
	for i, pl := range p.Placements {
		ids[i] = pl.NodeID
	}
	return ids
}

func TestEachCheckerRejectsWithItsReason(t *testing.T) {
	tests := []struct {
		name   string
		job    func(*Job)
		node   func(*Node)
		reason string
	}{
		{"excluded", func(j *Job) { j.Exclude = []string{"other", "n"} }, func(*Node) {}, ReasonExcluded},
		{"free gpus", func(j *Job) { j.GPUs = 4 }, func(*Node) {}, ReasonFreeGPUs},
		{"vram", nil, func(n *Node) { n.VRAMMiB = 16 * gib }, ReasonVRAM},
		{"tflops", nil, func(n *Node) { n.TFLOPSMilli = 49_999 }, ReasonTFLOPS},
		{"region", func(j *Job) { j.Region = "us-east" }, func(*Node) {}, ReasonRegion},
		{"price", nil, func(n *Node) { n.PricePerHourUomni = 1_000_001 }, ReasonPrice},
		{"latency estimate over the ceiling", func(j *Job) { j.MaxLatencyMicros = 50_000 },
			func(n *Node) { n.Location = Location{LatE6: 35_676_200, LonE6: 139_650_300} }, ReasonLatency},
		{"measured rtt over the ceiling", func(j *Job) { j.MaxLatencyMicros = 50_000 },
			func(n *Node) { n.RTTMicros = 50_001 }, ReasonLatency},
		{"latency unknown under a ceiling", func(j *Job) { j.MaxLatencyMicros = 50_000 },
			func(n *Node) { n.Location = Location{} }, ReasonLatencyUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, node := testJob(), testNode("n", "op")
			if tt.job != nil {
				tt.job(&job)
			}
			tt.node(&node)
			plan, err := Place(job, []Node{node}, DefaultWeights())
			if !errors.Is(err, ErrNoFeasibleNode) {
				t.Fatalf("error = %v, want ErrNoFeasibleNode", err)
			}
			want := []Rejection{{NodeID: "n", Reason: tt.reason}}
			if !slices.Equal(plan.Rejected, want) || len(plan.Placements) != 0 {
				t.Fatalf("plan = %+v, want rejections %v", plan, want)
			}
		})
	}
}

func TestBoundaryValuesAreFeasible(t *testing.T) {
	job := testJob()
	job.GPUs, job.MaxLatencyMicros, job.Region = 2, 5_000, "eu-central"
	n := testNode("n", "op")
	n.VRAMMiB, n.TFLOPSMilli, n.PricePerHourUomni = job.VRAMMiB, job.MinTFLOPSMilli, job.MaxPricePerHourUomni
	plan, err := Place(job, []Node{n}, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	// Exactly at every limit: compute is the best feasible (10000), latency
	// at the ceiling (0), reliability 9000, a bid at the ceiling (0).
	want := Scores{Compute: 10000, Latency: 0, Reliability: 9000, Price: 0, Total: 3500 + 1800}
	if got := plan.Placements[0].Scores; got != want {
		t.Fatalf("scores = %+v, want %+v", got, want)
	}
}

func TestScores(t *testing.T) {
	job := testJob()
	job.MaxLatencyMicros = 100_000
	fast, slow := testNode("fast", "a"), testNode("slow", "b")
	fast.RTTMicros, fast.PricePerHourUomni = 25_000, 250_000
	slow.TFLOPSMilli, slow.RTTMicros, slow.ReliabilityBP = 50_000, 0, 12_000 // latency from distance
	job.Replicas = 2
	plan, err := Place(job, []Node{slow, fast}, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	want := []Placement{
		{"fast", Scores{Compute: 10000, Latency: 7500, Reliability: 9000, Price: 7500, Total: 3500 + 2250 + 1800 + 1125}},
		{"slow", Scores{Compute: 5000, Latency: 9500, Reliability: 10000, Price: 5000, Total: 1750 + 2850 + 2000 + 750}},
	}
	if !slices.Equal(plan.Placements, want) {
		t.Fatalf("placements = %+v, want %+v", plan.Placements, want)
	}
}

func TestWeightsChangeTheWinner(t *testing.T) {
	fastDear, slowCheap := testNode("fast-dear", "a"), testNode("slow-cheap", "b")
	fastDear.TFLOPSMilli, fastDear.PricePerHourUomni = 400_000, 900_000
	slowCheap.TFLOPSMilli, slowCheap.PricePerHourUomni = 100_000, 100_000
	nodes := []Node{fastDear, slowCheap}
	tests := []struct {
		name string
		w    Weights
		want string
	}{
		{"default weights favour compute", DefaultWeights(), "fast-dear"},
		{"price-heavy weights favour the cheap node", Weights{Compute: 1000, Latency: 3000, Reliability: 2000, Price: 4000}, "slow-cheap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Place(testJob(), nodes, tt.w)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.Placements[0].NodeID; got != tt.want {
				t.Fatalf("winner = %s, want %s (%+v)", got, tt.want, plan.Placements)
			}
		})
	}
}

// TestSameOperatorByHash checks that operators' hashes only spare the
// comparison of their names: two operators whose hashes collide are still
// two, and a candidate without a hash (the scan's) is compared by name.
func TestSameOperatorByHash(t *testing.T) {
	names := map[uint16]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		name := fmt.Sprintf("op-%d", i)
		if other, ok := names[hash16(name)]; ok {
			a, b = other, name
		}
		names[hash16(name)] = name
	}
	candidate := func(op string, hashed bool) ranked {
		r := ranked{node: &Node{Operator: op}}
		if hashed {
			r.opHash = hash16(op)
		}
		return r
	}
	for _, c := range []struct {
		a, b ranked
		same bool
		what string
	}{
		{candidate(a, true), candidate(b, true), false, "hashes collide"},
		{candidate(a, true), candidate(a, true), true, "one operator"},
		{candidate(a, true), candidate("x"+a, true), false, "hashes differ"},
		{candidate(a, false), candidate(a, true), true, "one without a hash"},
		{candidate(a, false), candidate(b, false), false, "neither hashed"},
		{candidate("", true), candidate("", true), true, "both unattributed"},
	} {
		if got := c.a.sameOperator(&c.b); got != c.same {
			t.Errorf("%s: %q and %q the same operator: %v, want %v", c.what, c.a.node.Operator, c.b.node.Operator, got, c.same)
		}
	}
}

func TestReplicasGoToDistinctOperators(t *testing.T) {
	nodes := []Node{testNode("a1", "alpha"), testNode("a2", "alpha"), testNode("a3", "alpha"), testNode("b1", "beta"), testNode("c1", "gamma")}
	nodes[1].TFLOPSMilli = 400_000 // alpha's best
	nodes[3].TFLOPSMilli = 60_000
	job := testJob()
	job.Replicas = 3
	plan, err := Place(job, nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := placedIDs(plan), []string{"a2", "c1", "b1"}; !slices.Equal(got, want) {
		t.Fatalf("placed %v, want %v", got, want)
	}
}

func TestNotEnoughOperators(t *testing.T) {
	nodes := []Node{testNode("a1", "alpha"), testNode("a2", "alpha"), testNode("b1", "beta"), testNode("u1", ""), testNode("u2", "")}
	nodes[1].FreeGPUs = 0
	job := testJob()
	job.Replicas = 4
	plan, err := Place(job, nodes, DefaultWeights())
	if !errors.Is(err, ErrNotEnoughOperators) || !strings.Contains(err.Error(), "need 4 distinct operators, found 3 among 4 feasible nodes") {
		t.Fatalf("error = %v", err)
	}
	if got := placedIDs(plan); !slices.Equal(got, []string{"a1", "b1", "u1"}) || len(plan.Rejected) != 1 {
		t.Fatalf("plan = %+v", plan)
	}
}

func TestTiesBrokenByID(t *testing.T) {
	nodes := []Node{testNode("node-c", "c"), testNode("node-a", "a"), testNode("node-b", "b")}
	job := testJob()
	job.Replicas = 3
	plan, err := Place(job, nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := placedIDs(plan), []string{"node-a", "node-b", "node-c"}; !slices.Equal(got, want) {
		t.Fatalf("placed %v, want %v", got, want)
	}
}

func TestNoFeasibleNodeSummarisesReasons(t *testing.T) {
	nodes := []Node{testNode("a", "x"), testNode("b", "x"), testNode("c", "x"), testNode("d", "x")}
	nodes[0].FreeGPUs, nodes[1].FreeGPUs = 0, 0
	nodes[2].PricePerHourUomni = 2_000_000
	job := testJob()
	job.Exclude = []string{"d"}
	_, err := Place(job, nodes, DefaultWeights())
	want := "no feasible node: all 4 nodes rejected: 2 have too few free GPUs (need 1), 1 is excluded by the job, 1 bids above the price ceiling (1 OMNI per GPU-hour)"
	if !errors.Is(err, ErrNoFeasibleNode) || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	if _, err := Place(job, nil, DefaultWeights()); !errors.Is(err, ErrNoFeasibleNode) || !strings.Contains(err.Error(), "no nodes") {
		t.Fatalf("empty snapshot error = %v", err)
	}
}

// TestExplanationNumbers checks how the no-fit message writes the job's
// limits: decimals without trailing zeros, memory in GiB when whole.
func TestExplanationNumbers(t *testing.T) {
	for _, c := range []struct {
		v, unit uint64
		want    string
	}{
		{0, 1000, "0"}, {999, 1000, "0.999"}, {12_340, 1000, "12.34"}, {50_000, 1000, "50"},
		{1, 1_000_000, "0.000001"}, {1_000_005, 1_000_000, "1.000005"}, {1_500_000, 1_000_000, "1.5"},
		{math.MaxUint64, 1000, "18446744073709551.615"},
	} {
		if got := string(appendDecimal(nil, c.v, c.unit)); got != c.want {
			t.Errorf("%d / %d: %q, want %q", c.v, c.unit, got, c.want)
		}
	}
	for mib, want := range map[uint64]string{0: "0 GiB", 24 * gib: "24 GiB", 80*gib + 512: "82432 MiB", 1: "1 MiB"} {
		if got := string(appendMebibytes(nil, mib)); got != want {
			t.Errorf("%d MiB: %q, want %q", mib, got, want)
		}
	}
}

func TestPlaceValidatesInputs(t *testing.T) {
	nodes := []Node{testNode("a", "x")}
	if _, err := Place(testJob(), nodes, Weights{}); !errors.Is(err, ErrInvalidWeights) {
		t.Fatalf("error = %v, want ErrInvalidWeights", err)
	}
	job := testJob()
	job.Replicas = 0
	if _, err := Place(job, nodes, DefaultWeights()); !errors.Is(err, ErrInvalidJob) {
		t.Fatalf("error = %v, want ErrInvalidJob", err)
	}
}

// referencePlace selects by sorting every scored candidate, the obvious way
// the one-pass selection in rank must agree with.
func referencePlace(job Job, nodes []Node, w Weights) []Placement {
	fits, _, best := filter(&request{job: &job}, nodes)
	var all []ranked
	for _, f := range fits {
		n := &nodes[f.index]
		all = append(all, ranked{node: n, index: f.index, scores: score(&job, n, f, best, w)})
	}
	slices.SortFunc(all, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(b.scores.Total, a.scores.Total), strings.Compare(a.node.ID, b.node.ID))
	})
	var out []Placement
	seen := map[string]bool{}
	for _, r := range all {
		if !seen[r.node.Operator] && len(out) < job.Replicas {
			seen[r.node.Operator] = true
			out = append(out, Placement{NodeID: r.node.ID, Scores: r.scores})
		}
	}
	return out
}

func TestPlaceMatchesReferenceAndIgnoresOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		nodes := syntheticNodes(rng, 1+rng.IntN(60), 1+rng.IntN(8))
		job := syntheticJob(rng)
		job.Replicas = 1 + rng.IntN(5)
		want := referencePlace(job, nodes, DefaultWeights())
		plan, err := Place(job, nodes, DefaultWeights())
		if (len(want) < job.Replicas) != (err != nil) {
			t.Fatalf("trial %d: %d of %d replicas placeable, error %v", trial, len(want), job.Replicas, err)
		}
		if !slices.Equal(plan.Placements, want) {
			t.Fatalf("trial %d: placements %v\nwant %v", trial, plan.Placements, want)
		}
		rng.Shuffle(len(nodes), func(i, j int) { nodes[i], nodes[j] = nodes[j], nodes[i] })
		shuffled, _ := Place(job, nodes, DefaultWeights())
		if !slices.Equal(shuffled.Placements, plan.Placements) {
			t.Fatalf("trial %d: snapshot order changed the plan", trial)
		}
	}
}

var regions = []string{"eu-central", "eu-west", "us-east", "us-west", "ap-northeast", "ap-south", "sa-east", "af-south"}

// syntheticNodes returns n varied nodes spread over the given number of
// operators, with unique IDs.
func syntheticNodes(rng *rand.Rand, n, operators int) []Node {
	vram := []uint64{8 * gib, 16 * gib, 24 * gib, 40 * gib, 48 * gib, 80 * gib}
	nodes := make([]Node, n)
	for i := range nodes {
		nd := &nodes[i]
		nd.ID = fmt.Sprintf("node-%07d", i)
		nd.Operator = fmt.Sprintf("op-%d", rng.IntN(operators))
		nd.FreeGPUs = rng.IntN(9)
		nd.VRAMMiB = vram[rng.IntN(len(vram))]
		nd.TFLOPSMilli = uint64(10_000 + rng.IntN(990_000))
		nd.Region = regions[rng.IntN(len(regions))]
		nd.Location = Location{LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000)}
		if rng.IntN(10) < 3 {
			nd.RTTMicros = uint32(1_000 + rng.IntN(250_000))
		}
		nd.ReliabilityBP = uint32(rng.IntN(10_001))
		nd.PricePerHourUomni = uint64(100_000 + rng.IntN(2_900_000))
	}
	return nodes
}

func syntheticJob(rng *rand.Rand) Job {
	job := Job{
		GPUs: 1 + rng.IntN(4), VRAMMiB: uint64(rng.IntN(48)) * gib, MinTFLOPSMilli: uint64(rng.IntN(200_000)),
		MaxPricePerHourUomni: uint64(500_000 + rng.IntN(2_500_000)), Origin: frankfurt, Replicas: 1,
	}
	if rng.IntN(3) == 0 {
		job.MaxLatencyMicros = uint32(20_000 + rng.IntN(200_000))
	}
	if rng.IntN(4) == 0 {
		job.Region = regions[rng.IntN(len(regions))]
	}
	return job
}

func BenchmarkPlace(b *testing.B) {
	const n = 1_000_000
	nodes := syntheticNodes(rand.New(rand.NewPCG(7, 7)), n, 10_000)
	job := Job{
		GPUs: 2, VRAMMiB: 24 * gib, MinTFLOPSMilli: 50_000, MaxPricePerHourUomni: 2_000_000,
		Origin: frankfurt, MaxLatencyMicros: 150_000, Replicas: 3, Exclude: []string{"node-0000001"},
	}
	plan, err := Place(job, nodes, DefaultWeights())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Place(job, nodes, DefaultWeights()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/node")
	b.ReportMetric(float64(n-len(plan.Rejected))/n*100, "%feasible")
}
