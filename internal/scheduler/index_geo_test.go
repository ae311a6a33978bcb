package scheduler

import (
	"math"
	"math/rand/v2"
	"testing"
)

// checkGeoTree checks what the count reads of g against the nodes
// themselves: every box's children start at a multiple of geoFanout and
// number at most that; every leaf holds at most geoLeafSize nodes and
// counts exactly its online located ones; and every such node's offset
// puts it within √3/2 of a step of its unit vector, taken afresh from its
// Location, while every other node's offset is uncounted.
func checkGeoTree(t *testing.T, x *Index, g *geoTree, what string) {
	t.Helper()
	for i := range g.boxes {
		b := &g.boxes[i]
		if g.spans[i].parent < 0 && i != 0 {
			continue // unused, for the alignment
		}
		if !b.leaf() {
			if b.first%geoFanout != 0 || b.kids() < 1 || b.kids() > geoFanout {
				t.Fatalf("%s: box %d has %d children from box %d", what, i, b.kids(), b.first)
			}
			continue
		}
		if b.points > geoLeafSize {
			t.Fatalf("%s: leaf %d holds %d nodes", what, i, b.points)
		}
		c, step := widen3(b.centre), b.step()
		n := int32(0)
		for k := b.first; k < b.first+b.points; k++ {
			s, o := g.perm[k], g.offsets[k]
			h := &x.hot[s]
			if !h.online || !h.located {
				if o.counted() {
					t.Fatalf("%s: leaf %d counts node %q, offline or not located", what, i, x.nodes[s].ID)
				}
				continue
			}
			n++
			v := unitVector(x.nodes[s].Location)
			var e float64
			for a := range 3 {
				d := v[a] - c[a] - step*float64(o[a])
				e += d * d
			}
			if math.Sqrt(e) > math.Sqrt(3)/2*step*(1+1e-9) {
				t.Fatalf("%s: leaf %d puts node %q %g steps from its Location", what, i, x.nodes[s].ID, math.Sqrt(e)/step)
			}
		}
		if n != b.n {
			t.Fatalf("%s: leaf %d counts %d nodes, holds %d online located", what, i, b.n, n)
		}
	}
}

// TestGeoOffsetsNeedTheirStep checks that a node's cosine with an origin,
// taken from its offset as the count takes it, is off by under √3/2 of a
// step (the count allows a whole step either side of the ring), and that
// it comes near that bound: with a margin of three quarters of a step, a
// ring through some of these nodes would count them on the wrong side.
func TestGeoOffsetsNeedTheirStep(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	x, err := NewIndex(marketNodes(rng, 3000), DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	g := &x.geo
	worst := 0.0
	for range scaled(200) {
		origin := popularMetro(rng).near(rng)
		o := unitVector(origin)
		for i := range g.boxes {
			b := &g.boxes[i]
			if !b.leaf() {
				continue
			}
			step := b.step()
			for k := b.first; k < b.first+b.points; k++ {
				d := g.offsets[k]
				if !d.counted() {
					continue
				}
				// As leafBeyond takes it, less the centre's cosine.
				got := dot(o, b.centre) + o[0]*step*float64(d[0]) + o[1]*step*float64(d[1]) + o[2]*step*float64(d[2])
				v := unitVector(g.locs[k])
				want := o[0]*v[0] + o[1]*v[1] + o[2]*v[2]
				e := math.Abs(got-want) / step
				if e > math.Sqrt(3)/2 {
					t.Fatalf("leaf %d, node %d: cosine off by %g steps", i, k, e)
				}
				worst = max(worst, e)
			}
		}
	}
	if worst < 0.75 {
		t.Fatalf("cosines off by at most %g steps: the test does not reach the margin", worst)
	}
}

// TestGeoCountAtTheRing puts two thousand nodes within two metres of a
// ring, nearer than a float32 vector can tell, and checks the count
// against EstimateLatencyMicros node by node: the count decides those
// outside the fine band (ring.fineBeyond, about 1.3 m wide) by their
// offsets, and those inside by the estimate. (The offsets' margin is
// checked against what it covers in TestGeoOffsetsNeedTheirStep; the fine
// band's are so much wider than their rounding that no node here, nor in
// TestRingSidesAtTheCeiling, comes near enough to need them.)
func TestGeoCountAtTheRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for round := range scaled(20) {
		origin := popularMetro(rng).near(rng)
		// A ceiling some 50 to 3,000 km out, and nodes about where the
		// estimate passes it, along random bearings.
		ceiling := uint32(LastMileMicros + 500 + rng.IntN(30_000))
		nodes := marketNodes(rng, 2000)
		for i := range nodes {
			bearing := rng.Float64() * 2 * math.Pi
			at := func(m float64) Location {
				d := m / 1000 / earthRadiusKm
				lat := float64(origin.LatE6) * math.Pi / 180e6
				lon := float64(origin.LonE6) * math.Pi / 180e6
				lat2 := math.Asin(math.Sin(lat)*math.Cos(d) + math.Cos(lat)*math.Sin(d)*math.Cos(bearing))
				lon2 := lon + math.Atan2(math.Sin(bearing)*math.Sin(d)*math.Cos(lat), math.Cos(d)-math.Sin(lat)*math.Sin(lat2))
				lon2 = math.Remainder(lon2, 2*math.Pi)
				return Location{LatE6: int32(math.Round(lat2 * 180e6 / math.Pi)), LonE6: int32(math.Round(lon2 * 180e6 / math.Pi))}
			}
			// The distance where the estimate passes the ceiling along
			// this bearing, by bisection, then a few metres either side.
			lo, hi := 0.0, 20_000_000.0
			for range 60 {
				if mid := (lo + hi) / 2; EstimateLatencyMicros(origin, at(mid)) > ceiling {
					hi = mid
				} else {
					lo = mid
				}
			}
			nodes[i].Location, nodes[i].RTTMicros = at(hi+(rng.Float64()-0.5)*4), 0
		}
		x, err := NewIndex(nodes, DefaultWeights())
		if err != nil {
			t.Fatal(err)
		}
		q := &query{job: &Job{Origin: origin}, origin: unitVector(origin), located: true}
		r := q.ring(ceiling)
		got := x.geo.beyond(x, q, &r, 0) + x.geoOverflow.beyond(x, q, &r, 0)
		want := 0
		for s := range x.nodes {
			if x.hot[s].online && x.hot[s].located && EstimateLatencyMicros(origin, x.nodes[s].Location) > ceiling {
				want++
			}
		}
		if got != want {
			t.Fatalf("round %d, from %v beyond %d µs: counted %d, want %d", round, origin, ceiling, got, want)
		}
	}
}
