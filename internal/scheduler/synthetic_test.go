package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Synthetic snapshots and jobs for the index's tests and benchmarks. Two
// kinds of node: syntheticNodes (place_test.go) draws every attribute
// independently and uniformly, the hardest case for any index since no two
// nodes are alike; marketNodes draws them the way a network of real
// suppliers looks, GPUs from NVIDIA's catalogue at market prices, in the
// metros where data centres are.

// gpuModels are from internal/node/hw's table of published dense BF16/FP16
// rates, with rough market prices per GPU-hour in µOMNI; weight is how
// common each is.
var gpuModels = []struct {
	tflopsMilli, vramGiB, price uint64
	weight                      int
}{
	{989_000, 141, 3_200_000, 2}, // H200
	{989_000, 80, 2_600_000, 4},  // H100 SXM
	{756_000, 80, 2_100_000, 3},  // H100 PCIe
	{312_000, 80, 1_400_000, 5},  // A100 80GB
	{312_000, 40, 1_100_000, 4},  // A100 40GB
	{362_050, 48, 900_000, 4},    // L40S
	{181_050, 48, 750_000, 3},    // L40
	{121_000, 24, 400_000, 5},    // L4
	{125_000, 24, 450_000, 3},    // A10
	{165_200, 24, 500_000, 20},   // RTX 4090
	{97_500, 16, 300_000, 10},    // RTX 4080
	{71_000, 24, 250_000, 15},    // RTX 3090
	{59_500, 10, 180_000, 10},    // RTX 3080
	{65_000, 16, 150_000, 6},     // T4
	{125_000, 32, 350_000, 3},    // V100
}

type metro struct {
	region   string
	lat, lon float64
}

// metros are where suppliers sit, most popular first within each region.
var metros = []metro{
	{"eu-central", 50.11, 8.68}, {"eu-central", 52.52, 13.40}, {"eu-central", 48.14, 11.58}, {"eu-central", 52.23, 21.01}, {"eu-central", 47.38, 8.54}, {"eu-central", 48.21, 16.37},
	{"eu-west", 51.51, -0.13}, {"eu-west", 48.86, 2.35}, {"eu-west", 52.37, 4.90}, {"eu-west", 53.35, -6.26}, {"eu-west", 40.42, -3.70}, {"eu-west", 59.33, 18.07},
	{"us-east", 40.71, -74.01}, {"us-east", 39.04, -77.49}, {"us-east", 33.75, -84.39}, {"us-east", 41.88, -87.63}, {"us-east", 43.65, -79.38}, {"us-east", 25.76, -80.19},
	{"us-west", 37.77, -122.42}, {"us-west", 34.05, -118.24}, {"us-west", 47.61, -122.33}, {"us-west", 32.78, -96.80}, {"us-west", 39.74, -104.99}, {"us-west", 33.45, -112.07},
	{"ap-northeast", 35.68, 139.65}, {"ap-northeast", 34.69, 135.50}, {"ap-northeast", 37.57, 126.98}, {"ap-northeast", 25.03, 121.57}, {"ap-northeast", 22.32, 114.17}, {"ap-northeast", 31.23, 121.47},
	{"ap-south", 1.35, 103.82}, {"ap-south", 19.08, 72.88}, {"ap-south", 12.97, 77.59}, {"ap-south", -6.21, 106.85}, {"ap-south", -33.87, 151.21}, {"ap-south", 13.08, 80.27},
	{"sa-east", -23.55, -46.63}, {"sa-east", -34.60, -58.38}, {"sa-east", -33.45, -70.67}, {"sa-east", 4.71, -74.07}, {"sa-east", -12.05, -77.04}, {"sa-east", -22.91, -43.17},
	{"af-south", -26.20, 28.05}, {"af-south", -33.92, 18.42}, {"af-south", 6.52, 3.38}, {"af-south", -1.29, 36.82}, {"af-south", 30.04, 31.24}, {"af-south", 33.57, -7.59},
}

// near returns a point within about 50 km of m.
func (m metro) near(rng *rand.Rand) Location {
	jitter := func() float64 { return (rng.Float64() + rng.Float64() - 1) * 0.5 }
	return Location{LatE6: int32((m.lat + jitter()) * 1e6), LonE6: int32((m.lon + jitter()) * 1e6)}
}

// popularMetro favours the first metros of the list (a skew, not a law).
func popularMetro(rng *rand.Rand) metro {
	return metros[int(float64(len(metros))*rng.Float64()*rng.Float64())]
}

// marketNodes returns n nodes that look like a real network: catalogue
// GPUs, prices around each model's market rate in steps of 0.01 OMNI,
// nodes in metros, many of them busy, a reliability record from a job
// history, and big and small operators.
func marketNodes(rng *rand.Rand, n int) []Node {
	totalWeight := 0
	for _, m := range gpuModels {
		totalWeight += m.weight
	}
	operators := max(n/20, 1)
	gpuCounts := []int{1, 1, 1, 1, 2, 2, 4, 8}
	nodes := make([]Node, n)
	for i := range nodes {
		nd := &nodes[i]
		k := rng.IntN(totalWeight)
		model := 0
		for ; k >= gpuModels[model].weight; model++ {
			k -= gpuModels[model].weight
		}
		m := gpuModels[model]
		nd.ID = fmt.Sprintf("node-%07d", i)
		nd.Operator = fmt.Sprintf("op-%d", int(float64(operators)*rng.Float64()*rng.Float64()*rng.Float64()))
		nd.VRAMMiB, nd.TFLOPSMilli = m.vramGiB*gib, m.tflopsMilli
		nd.PricePerHourUomni = uint64(float64(m.price)*(0.6+0.8*rng.Float64())) / 10_000 * 10_000
		gpus := gpuCounts[rng.IntN(len(gpuCounts))]
		if rng.IntN(10) >= 4 {
			nd.FreeGPUs = 1 + rng.IntN(gpus)
		}
		nd.GPUs = gpus
		mt := popularMetro(rng)
		nd.Region = mt.region
		if rng.IntN(50) > 0 {
			nd.Location = mt.near(rng)
		}
		if rng.IntN(10) == 0 {
			// Measured to the consumers of its region, whose hub is the
			// region's first metro: about what the estimate says, often
			// worse.
			hub := metros[slices.IndexFunc(metros, func(m metro) bool { return m.region == mt.region })]
			est := EstimateLatencyMicros(mt.near(rng), Location{LatE6: int32(hub.lat * 1e6), LonE6: int32(hub.lon * 1e6)})
			nd.RTTMicros = uint32(float64(est) * (0.8 + rng.Float64()))
		}
		jobs := rng.IntN(500)
		failed := int(float64(jobs) * rng.Float64() * rng.Float64() * 0.2)
		nd.ReliabilityBP = uint32((jobs - failed + 1) * 10_000 / (jobs + 2))
	}
	return nodes
}

// marketJob returns a job such as consumers send to a marketNodes network.
func marketJob(rng *rand.Rand, nodes []Node) Job {
	pick := func(xs ...uint64) uint64 { return xs[rng.IntN(len(xs))] }
	mt := popularMetro(rng)
	job := Job{
		GPUs:                 int(pick(1, 1, 1, 1, 1, 1, 2, 2, 4, 8)),
		VRAMMiB:              pick(0, 0, 16, 24, 24, 40, 80) * gib,
		MinTFLOPSMilli:       pick(0, 0, 0, 50_000, 100_000, 300_000),
		MaxPricePerHourUomni: pick(300_000, 600_000, 1_000_000, 1_500_000, 2_500_000, 4_000_000),
		Replicas:             int(pick(1, 1, 1, 1, 1, 1, 1, 2, 3, 3)),
	}
	if rng.IntN(10) > 0 {
		job.Origin = mt.near(rng)
	}
	if rng.IntN(20) < 7 {
		job.MaxLatencyMicros = uint32(pick(20_000, 30_000, 50_000, 100_000, 200_000))
	}
	if rng.IntN(5) == 0 {
		job.Region = mt.region
	}
	if rng.IntN(10) == 0 {
		for range 1 + rng.IntN(3) {
			job.Exclude = append(job.Exclude, nodes[rng.IntN(len(nodes))].ID)
		}
	}
	return job
}

// uniformJob is syntheticJob from anywhere on Earth, with replicas and
// exclusions.
func uniformJob(rng *rand.Rand, nodes []Node) Job {
	job := syntheticJob(rng)
	job.Origin = Location{LatE6: int32(rng.IntN(120_000_000) - 60_000_000), LonE6: int32(rng.IntN(360_000_000) - 180_000_000)}
	job.Replicas = 1 + rng.IntN(3)
	if rng.IntN(10) == 0 {
		job.Exclude = []string{nodes[rng.IntN(len(nodes))].ID}
	}
	return job
}

// tiedNodes draws every attribute from two or three values, so that
// Totals tie everywhere and placement comes down to IDs and operators;
// some nodes have no position, some no free GPU, some a zero price or
// TFLOPS.
func tiedNodes(rng *rand.Rand, n, operators int) []Node {
	pick := func(xs ...uint64) uint64 { return xs[rng.IntN(len(xs))] }
	places := []Location{frankfurt, {LatE6: 48_856_600, LonE6: 2_352_200}, {}, {LatE6: -33_868_800, LonE6: 151_209_300}}
	nodes := make([]Node, n)
	for i := range nodes {
		nodes[i] = Node{
			ID:                fmt.Sprintf("t-%05d", rng.IntN(100_000)), // IDs out of snapshot order
			Operator:          fmt.Sprintf("op-%d", rng.IntN(operators)),
			FreeGPUs:          int(pick(0, 1, 2, 8)) - int(pick(0, 0, 0, 1)),
			VRAMMiB:           pick(16, 24, 80) * gib,
			TFLOPSMilli:       pick(0, 100_000, 200_000),
			Region:            regions[rng.IntN(3)],
			Location:          places[rng.IntN(len(places))],
			RTTMicros:         uint32(pick(0, 0, 10_000, 20_000)),
			ReliabilityBP:     uint32(pick(9000, 10_000, 12_000)),
			PricePerHourUomni: pick(0, 500_000, 1_000_000),
		}
		if rng.IntN(10) == 0 {
			nodes[i].Operator = ""
		}
	}
	return uniqueIDs(nodes)
}

// uniqueIDs drops the later of two nodes with one ID: the index's snapshot
// is keyed by ID.
func uniqueIDs(nodes []Node) []Node {
	seen := map[string]bool{}
	out := nodes[:0]
	for _, n := range nodes {
		if !seen[n.ID] {
			seen[n.ID] = true
			out = append(out, n)
		}
	}
	return out
}

// tiedJob asks for what tiedNodes offer, sometimes more.
func tiedJob(rng *rand.Rand, nodes []Node) Job {
	pick := func(xs ...uint64) uint64 { return xs[rng.IntN(len(xs))] }
	job := Job{
		GPUs: int(pick(1, 1, 2, 9)), VRAMMiB: pick(0, 16, 24, 96) * gib, MinTFLOPSMilli: pick(0, 0, 100_000, 300_000),
		MaxPricePerHourUomni: pick(1, 500_000, 1_000_000, 2_000_000), Replicas: int(pick(1, 2, 3, 6)),
		Origin: []Location{{}, frankfurt, {LatE6: 40_712_800, LonE6: -74_006_000}}[rng.IntN(3)],
	}
	if rng.IntN(2) == 0 {
		job.MaxLatencyMicros = uint32(pick(10_000, 15_000, 20_000, 120_000))
	}
	if rng.IntN(3) == 0 {
		job.Region = regions[rng.IntN(4)] // the fourth is in no snapshot
	}
	for range rng.IntN(4) {
		if rng.IntN(4) == 0 {
			job.Exclude = append(job.Exclude, "not-a-node")
		} else {
			job.Exclude = append(job.Exclude, nodes[rng.IntN(len(nodes))].ID)
		}
	}
	return job
}
