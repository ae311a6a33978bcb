package scheduler

import "math"

// The Index bounds the estimated latency of a box of nodes by a circle on
// the sphere holding them all: no node is nearer the origin than the
// circle's nearest point. These bounds must hold exactly, for any node, so
// they are taken with margins far larger than their arithmetic's error:
//
//   - a unit vector stored as float32 is off by under 2⁻²⁴ per
//     coordinate, so its cosine with the origin by under 1.1·10⁻⁷
//     (cosMargin is 10⁻⁶), and its direction by under 10⁻⁷ rad (a circle's
//     radius has angleMargin added);
//   - acos below is off by under 3·10⁻⁸ rad, the chord nearest takes by
//     its rounding alone, under 2·10⁻⁸ rad, and the haversine in
//     EstimateLatencyMicros by well under 10⁻⁸ rad even near the
//     antipode (angleMargin is 10⁻⁶ rad, 6.4 m).
//
// The margins cost a bound a few hundredths of a microsecond of latency,
// up to a tenth of a millisecond for a node at the origin itself (acos is
// steep near 1).
const (
	cosMargin   = 1e-6
	angleMargin = 1e-6
)

// acos is Abramowitz and Stegun's 4.4.46, off by under 3·10⁻⁸: a square root
// and a polynomial, three times faster than math.Acos, for the bound of
// each located node (a box's takes the chord instead, see nearest).
func acos(x float64) float64 {
	neg := x < 0
	x = math.Abs(x)
	p := -0.0012624911
	for _, c := range [...]float64{0.0066700901, -0.0170881256, 0.0308918810, -0.0501743046, 0.0889789874, -0.2145988016, 1.5707963050} {
		p = p*x + c
	}
	r := math.Sqrt(max(1-x, 0)) * p
	if neg {
		return math.Pi - r
	}
	return r
}

// angleAtLeast bounds from below the angle between the job's origin and a
// node whose float32 unit vector has cosine cos with it.
func angleAtLeast(cos float64) float64 { return acos(min(cos+cosMargin, 1)) - angleMargin }

// latencyAtLeast bounds from below the estimate for every point at least
// angle from the origin.
func latencyAtLeast(angle float64) uint32 {
	if angle <= 0 {
		return LastMileMicros
	}
	return uint32(earthRadiusKm*angle*microsPerKm) + LastMileMicros // truncation rounds down
}

func dot(a [3]float64, b [3]float32) float64 {
	return a[0]*float64(b[0]) + a[1]*float64(b[1]) + a[2]*float64(b[2])
}

// circle is a cap of the sphere: every unit vector it holds is within
// radius (radians) of center. An empty circle has a negative radius. It is
// stored in float32, the radius rounded up.
type circle struct {
	center [3]float32
	radius float32
}

var noCircle = circle{radius: -1}

// circleOf returns a circle holding the unit vectors vs yields: about
// their mean or about the middle of their extent on each axis, whichever
// needs the smaller radius out to the farthest. (The mean is drawn towards
// where the vectors are dense, and the farthest from it may lie far on the
// other side: taking the smaller of the two, measured paired on the
// market snapshot, took 5% off counting the nodes beyond a latency ceiling
// and 2% off placements.) The farthest is found by the chord, three
// products a vector, and only its angle is taken: the chord orders the
// vectors by angle but for their lengths and the centre's, which float32
// leaves off 1 by under 10⁻⁷, and that misorders them by under 5·10⁻⁷
// rad, which a second angleMargin covers. (Every box of both trees is
// drawn this way when they are built.)
func circleOf(vs func(yield func([3]float32) bool)) circle {
	var sum [3]float64
	var low, high [3]float32
	for k := range 3 {
		low[k], high[k] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	n := 0
	for v := range vs {
		for k := range 3 {
			sum[k] += float64(v[k])
			low[k], high[k] = min(low[k], v[k]), max(high[k], v[k])
		}
		n++
	}
	if n == 0 {
		return noCircle
	}
	middle := [3]float64{float64(low[0]) + float64(high[0]), float64(low[1]) + float64(high[1]), float64(low[2]) + float64(high[2])}
	best := circle{center: [3]float32{1, 0, 0}, radius: math.Pi} // when neither has a direction
	for _, about := range [...][3]float64{sum, middle} {
		center, ok := normalised(about)
		if !ok {
			continue
		}
		c := widen3(center)
		var farthest [3]float32
		chord := -1.0
		for v := range vs {
			d0, d1, d2 := c[0]-float64(v[0]), c[1]-float64(v[1]), c[2]-float64(v[2])
			if d := d0*d0 + d1*d1 + d2*d2; d > chord {
				chord, farthest = d, v
			}
		}
		best = tighter(best, circle{center: center, radius: roundUp(angle(c, widen3(farthest)) + 2*angleMargin)})
	}
	return best
}

// merge returns a circle holding a and b: about the middle of their
// centres, out to the farther rim.
func (a circle) merge(b circle) circle {
	switch {
	case a.radius < 0:
		return b
	case b.radius < 0:
		return a
	}
	ac, bc := widen3(a.center), widen3(b.center)
	center, ok := normalised([3]float64{ac[0] + bc[0], ac[1] + bc[1], ac[2] + bc[2]})
	if !ok {
		return circle{center: a.center, radius: math.Pi}
	}
	c := widen3(center)
	r := max(angle(c, ac)+float64(a.radius), angle(c, bc)+float64(b.radius))
	return circle{center: center, radius: roundUp(r + 1e-9)}
}

// tighter returns the smaller of two circles that both hold a box's nodes.
// A box's circle is drawn about its own nodes when its tree is built, which
// is tighter than its children's merged (by a third at the top of a metro):
// each merge adds the distance between the centres to the larger rim.
func tighter(a, b circle) circle {
	if b.radius < a.radius {
		return b
	}
	return a
}

// keeps reports whether a box's circle c still holds every located node
// under it after one of them moved to v (or became located, or not). When
// it does not, the box takes its children's circles merged, taken anew, as
// they need not lie inside c; the callers merge only then, as a merge
// costs trigonometry and most moves stay inside their boxes' circles.
func keeps(c circle, v [3]float32, located bool) bool {
	return !located || (c.radius >= 0 && angle(widen3(c.center), widen3(v))+angleMargin <= float64(c.radius))
}

// roundUp returns r as a float32 no smaller, and at most π.
func roundUp(r float64) float32 {
	f := float32(min(r, math.Pi))
	if float64(f) < r {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func widen3(v [3]float32) [3]float64 { return [3]float64{float64(v[0]), float64(v[1]), float64(v[2])} }

// normalised returns v scaled to a unit vector, in float32, and false when
// v is too short to have a direction.
func normalised(v [3]float64) ([3]float32, bool) {
	n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if n < 1e-9 {
		return [3]float32{}, false
	}
	return [3]float32{float32(v[0] / n), float32(v[1] / n), float32(v[2] / n)}, true
}

// angle is the angle between a and b, which need not be unit vectors:
// atan2 of the cross and dot products, which unlike acos of the cosine is
// precise for small angles too. The circles are built with it; the
// searches, which must be fast, use acos with margins.
func angle(a, b [3]float64) float64 {
	cross := [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
	return math.Atan2(math.Sqrt(cross[0]*cross[0]+cross[1]*cross[1]+cross[2]*cross[2]), a[0]*b[0]+a[1]*b[1]+a[2]*b[2])
}

// nearest bounds from below the angle from the job's origin to the points
// of c. The float32 centre is a unit vector only to 6·10⁻⁸, which cosMargin
// covers as it does for a node's vector.
//
// The angle to the centre is taken as its chord, √(2-2cos), which no arc
// is shorter than: a square root where acos adds a polynomial, for a bound
// the search takes of most boxes it opens. It is short of the angle θ by
// θ³/24, about a metre at 100 km and 0.2% of the distance at 1,500 km, so
// the boxes it loosens are far ones, which seldom score high enough to
// matter. Its rounding is under 2·10⁻⁸ rad (the square root of that of
// 2-2cos), which angleMargin covers.
func (q *query) nearest(c *circle) float64 {
	cos := min(dot(q.origin, c.center)+cosMargin, 1)
	return math.Sqrt(2-2*cos) - angleMargin - float64(c.radius)
}

// ring is where EstimateLatencyMicros passes a latency ceiling, about the
// job's origin: a point surely farther than angle is beyond the ceiling,
// one surely nearer within it. For a node whose unit vector's cosine with
// the origin is cos, surely beyond is cos ≤ beyond and surely within is
// cos > within; only a node between (a band a few metres wide) needs the
// estimate itself.
type ring struct {
	ceiling        uint32
	angle          float64
	cos, sin       float64 // of angle
	beyond, within float64 // cosines
	// fineBeyond and fineWithin are beyond and within for a vector taken
	// in float64 from the node's Location, as a leaf's offsets are: they
	// leave out ringCosMargin, which covers a float32 vector's rounding,
	// and keep ringAngleMargin, which covers the haversine's. The band
	// between them is 1.3 m wide wherever the ring is, where beyond and
	// within leave 18 m at 20 ms and 245 m at 100 km: on the market
	// snapshot the estimates this saves took 30% off the longest counts
	// warm, and some 8% cold, where cache misses weigh more.
	fineBeyond, fineWithin float64
	// A box may lie within the ring only when the cosine of its rim
	// exceeds rimWithin (the rim is less than the ring's angle), and
	// outside it only when it exceeds rimOutside (the rim is at most the
	// angle's supplement); see side.
	rimWithin, rimOutside float64
}

func (q *query) ring(ceiling uint32) ring {
	if ceiling < LastMileMicros {
		return ring{ceiling: ceiling, angle: -1, beyond: 2, within: 2, fineBeyond: 2, fineWithin: 2} // every point beyond
	}
	// The estimate rounds to the nearest µs: it exceeds the ceiling from
	// this many km on.
	km := (float64(ceiling-LastMileMicros) + 0.5) / microsPerKm
	r := ring{ceiling: ceiling, angle: km / earthRadiusKm, beyond: -2, within: 2, fineBeyond: -2, fineWithin: 2, rimWithin: -2, rimOutside: 2}
	r.cos, r.sin = math.Cos(r.angle), math.Sin(r.angle)
	if r.angle <= math.Pi { // else every rim is less, and none at most the supplement
		r.rimWithin, r.rimOutside = r.cos+boxCosMargin, -r.cos+boxCosMargin
	}
	// A node is surely beyond when acos(cos+ringCosMargin)-ringAngleMargin
	// ≥ angle, surely within when acos(cos-ringCosMargin)+ringAngleMargin <
	// angle: solved for cos.
	if a := r.angle + ringAngleMargin; a < math.Pi {
		r.beyond, r.fineBeyond = math.Cos(a)-ringCosMargin, math.Cos(a)-fineCosMargin
	}
	if a := r.angle - ringAngleMargin; a > 0 {
		r.within, r.fineWithin = math.Cos(a)+ringCosMargin, math.Cos(a)+fineCosMargin
	}
	return r
}

// The ring's margins are narrower than the bounds' (cosMargin,
// angleMargin), because every node they leave in the band costs the count
// an exact estimate (about 50 ns of trigonometry and a read of its
// Location): a ring through a dense metro passes within cosMargin of a
// hundred nodes or more. What they must cover is the same: a node's float32
// vector moves its cosine with the origin by under 1.1·10⁻⁷, and the
// haversine's angle is off by well under 10⁻⁸ rad; ringCosMargin is nearly
// three times the one and ringAngleMargin ten times the other. The band
// they leave is about a quarter as wide (18 m rather than 70 m at 20 ms).
const (
	ringCosMargin   = 3e-7
	ringAngleMargin = 1e-7
)

// fineCosMargin covers the rounding of a cosine taken from float64 unit
// vectors and a leaf's offsets: the vectors' sines and cosines, each within
// an ulp, the products and sums, and math.Cos of the ring's angle, together
// well under 10⁻¹⁴.
const fineCosMargin = 1e-12

// Where a box lies about a ring.
const (
	across = iota
	within
	outside
)

// side says whether box b's circle lies within the ring, outside it, or
// across it. Within, when the angle to its centre plus its rim is less
// than the ring's; outside, when that angle less the rim is at least the
// ring's. In cosines, by the cosine of a sum, as cos falls over [0, π].
// The rim's angleMargin is far more than the rounding of these products,
// even where cos is flat, and boxCosMargin more than that of the box's
// float32s.
func (r *ring) side(q *query, b *geoBox) int {
	switch in, out := r.sides(q, b); {
	case in == 1:
		return within
	case out == 1:
		return outside
	}
	return across
}

// sides is side as two flags, 1 when b is within (in) or outside (out),
// taken without branches.
func (r *ring) sides(q *query, b *geoBox) (in, out int) {
	cos := dot(q.origin, b.centre)
	cosRim, sinRim := float64(b.cosRim), float64(b.sinRim)
	in = b2i(cosRim > r.rimWithin) & b2i(cos-boxCosMargin > r.cos*cosRim+r.sin*sinRim)
	out = b2i(cosRim > r.rimOutside) & b2i(cos+boxCosMargin <= r.cos*cosRim-r.sin*sinRim)
	return in, out
}

// boxCosMargin covers the rounding of a geoBox's float32s in side: its
// centre, rounded from a unit vector, moves the cosine with the origin by
// under 5.2·10⁻⁸, and its rim's cosine and sine, each off by under 6·10⁻⁸
// of itself, move the cosine of the sum or difference by under 8.5·10⁻⁸.
const boxCosMargin = 5e-7

// geoTree counts the nodes beyond a job's latency ceiling, for the no-fit
// explanation. The Index's main tree is cut by much besides position, so
// its boxes are wide on the map; this one is cut by position alone, so
// only the boxes the ceiling's circle passes through are opened. It holds
// slots [base, base+len(leafOf)) in an order of its own (perm), their
// positions in that order (offsets, so that a leaf is read in one sweep),
// and counts the online nodes whose latency is estimated from their
// position.
type geoTree struct {
	base    int32
	perm    []int32     // slots, in the tree's order
	offsets []geoOffset // by position in perm
	// locs are the nodes' positions as EstimateLatencyMicros takes them,
	// by position in perm, for the few nodes so near the ring that the
	// count takes their estimate. Read beside the offsets rather than from
	// the nodes, which are twelve times the size and far apart, they took
	// a quarter off the longest counts on the market snapshot.
	locs   []Location
	boxes  []geoBox
	spans  []geoSpan // by box
	spots  []circle  // by box: holds every located node under it, online or not
	leafOf []int32   // by slot - base
}

// geoOffset is a node's position as the count reads it, 12 bytes: its
// unit vector, taken in float64 from its Location, less its leaf's centre,
// in steps of the leaf's step (see geoBox.step), rounded to the nearest; or
// uncounted, for a node the count does not count (offline, or not
// located). Its cosine with the origin is then off by under √3/2 of a step,
// a billionth of the leaf's width, where a float32 vector's is off by up to
// 1.1·10⁻⁷: so few nodes are near enough the ring to need the estimate
// (see ring.fineBeyond). (Circles hold offline nodes too, and read their
// positions from the hot data.)
type geoOffset [3]int32

const uncounted = math.MinInt32

// counted reports whether the count counts o's node.
func (o geoOffset) counted() bool { return o[0] != uncounted }

// step is the unit of leaf b's offsets: a bound on how far a point of its
// circle lies from its centre, the chord to the rim (under √2·sin(rim) for
// a rim up to a right angle, else 2), taken half as much again (far more
// than the rounding of the centre, of the rim's sine and of a float32
// vector against its Location's), spread over the steps of an int32.
func (b *geoBox) step() float64 {
	most := 2.01
	if b.cosRim > 0 {
		most = 1.5 * float64(b.sinRim)
	}
	return most / math.MaxInt32
}

// geoBox is what the count reads of a box, in 32 bytes: its circle
// (spots[i]) as a unit vector and the cosine and sine of its radius with
// angleMargin added (its rim), so that placing it about a ring takes no
// trigonometry; how many nodes it counts; and its children, or for a leaf
// its offsets, so that they are found without reading its span. A box's
// children are adjacent and begin at a multiple of geoFanout, filling four
// cache lines, which the count reads together (see across). Boxes 1 to
// geoFanout-1 are unused, so that the groups of children start aligned.
type geoBox struct {
	centre         [3]float32
	cosRim, sinRim float32
	n              int32 // online located nodes
	first          int32 // the first child, or a leaf's first offset
	points         int32 // a leaf's nodes, offsets[first:first+points]; for a box, minus its children
}

func (b *geoBox) leaf() bool  { return b.points > 0 }
func (b *geoBox) kids() int32 { return -b.points }

// setSpot sets what the count derives from b's circle.
func (b *geoBox) setSpot(c circle) {
	v := widen3(c.center)
	n := math.Sqrt(v[0]*v[0] + v[1]*v[1] + v[2]*v[2])
	if n > 0 {
		b.centre = [3]float32{float32(v[0] / n), float32(v[1] / n), float32(v[2] / n)}
	}
	rim := float64(c.radius) + angleMargin
	b.cosRim, b.sinRim = float32(math.Cos(rim)), float32(math.Sin(rim))
}

// geoSpan is what a box's refresh needs and its count does not.
type geoSpan struct{ lo, hi, parent int32 } // lo, hi into perm

// geoLeafSize is how many nodes a leaf holds, and geoFanout how many
// children a box has (see split for those with fewer). The count's cost,
// cold, is mostly cache misses one after another down the tree: eight
// children, read together, make it a third as deep as two did, for more
// boxes placed about the ring. Measured paired on the market snapshot (the
// counts over 5 µs), eight children took 16% off, four 11% and sixteen
// 12%, where two placed without branches added 4%; leaves of 16 cost 10%
// more than 32, and of 64 4% more.
const (
	geoLeafSize = 32
	geoFanLog   = 3
	geoFanout   = 1 << geoFanLog
)

func newGeoTree(x *Index, lo, hi int32) geoTree {
	g := geoTree{base: lo, perm: make([]int32, hi-lo), offsets: make([]geoOffset, hi-lo), locs: make([]Location, hi-lo), leafOf: make([]int32, hi-lo)}
	for i := range g.perm {
		g.perm[i] = lo + int32(i)
	}
	if hi > lo {
		// The root, and boxes 1 to geoFanout-1 unused, so that every
		// group of children begins aligned.
		g.boxes, g.spans, g.spots = make([]geoBox, geoFanout), make([]geoSpan, geoFanout), make([]circle, geoFanout)
		for i := range g.spans {
			g.spans[i], g.spots[i] = geoSpan{0, 0, -1}, noCircle
		}
		g.spans[0].hi = hi - lo
		g.split(x, 0)
	}
	for k, s := range g.perm {
		g.locs[k] = x.nodes[s].Location
	}
	for i := int32(len(g.boxes)) - 1; i >= 0; i-- {
		b, sp := &g.boxes[i], g.spans[i]
		if sp.parent < 0 && i != 0 {
			continue
		}
		if b.leaf() {
			for _, s := range g.perm[sp.lo:sp.hi] {
				g.leafOf[s-g.base] = i
			}
		}
		g.spots[i] = circleOf(g.located(x, sp.lo, sp.hi))
		if !b.leaf() {
			g.spots[i] = tighter(g.merged(i), g.spots[i])
		}
		b.setSpot(g.spots[i])
		g.quantize(x, i, sp.lo, sp.hi)
		g.recompute(x, i, nil)
	}
	return g
}

// merged returns box i's children's circles merged.
func (g *geoTree) merged(i int32) circle {
	b := &g.boxes[i]
	c := noCircle
	for k := b.first; k < b.first+b.kids(); k++ {
		c = c.merge(g.spots[k])
	}
	return c
}

// located yields the positions of the located nodes in perm[lo:hi],
// online or not.
func (g *geoTree) located(x *Index, lo, hi int32) func(yield func([3]float32) bool) {
	return func(yield func([3]float32) bool) {
		for _, s := range g.perm[lo:hi] {
			if h := &x.hot[s]; h.located && !yield(h.v) {
				return
			}
		}
	}
}

// quantize sets the offsets of the nodes in perm[lo:hi], under leaf i,
// from their Locations (locs) against the leaf's circle as it is: when the
// circle is drawn anew, so must be all its offsets.
func (g *geoTree) quantize(x *Index, i, lo, hi int32) {
	b := &g.boxes[i]
	if !b.leaf() {
		return
	}
	c, step := widen3(b.centre), b.step()
	for k := lo; k < hi; k++ {
		h := &x.hot[g.perm[k]]
		if !h.online || !h.located {
			g.offsets[k] = geoOffset{uncounted}
			continue
		}
		v := unitVector(g.locs[k])
		for a := range 3 {
			d := math.Round((v[a] - c[a]) / step)
			if math.Abs(d) > math.MaxInt32 {
				panic("scheduler: a leaf's circle does not hold its node")
			}
			g.offsets[k][a] = int32(d)
		}
	}
}

// split cuts box i, whose span is set, and its subtree: into geoFanout
// children by halving it at the median of its widest axis, then each half
// at its own, geoFanLog times; fewer when the leaves below are not a whole
// number of such levels down, so that they come out full (a box has fewer
// children then, mostly the root, rather than every leaf fewer nodes).
func (g *geoTree) split(x *Index, i int32) {
	lo, hi := g.spans[i].lo, g.spans[i].hi
	if hi-lo <= geoLeafSize {
		g.boxes[i].first, g.boxes[i].points = lo, hi-lo
		return
	}
	levels := 0
	for geoLeafSize<<levels < int(hi-lo) {
		levels++
	}
	halvings := levels % geoFanLog
	if halvings == 0 {
		halvings = geoFanLog
	}
	cuts := []int32{lo, hi}
	for range halvings {
		next := []int32{lo}
		for k := 1; k < len(cuts); k++ {
			a, b := cuts[k-1], cuts[k]
			mid := g.halve(x, a, b)
			next = append(next, mid, b)
		}
		cuts = next
	}
	for len(g.boxes)%geoFanout != 0 {
		g.boxes, g.spans, g.spots = append(g.boxes, geoBox{}), append(g.spans, geoSpan{0, 0, -1}), append(g.spots, noCircle)
	}
	k := int32(len(g.boxes))
	kids := int32(len(cuts) - 1)
	g.boxes[i].first, g.boxes[i].points = k, -kids
	for c := range kids {
		g.boxes = append(g.boxes, geoBox{})
		g.spans = append(g.spans, geoSpan{cuts[c], cuts[c+1], i})
		g.spots = append(g.spots, noCircle)
	}
	for c := range kids {
		g.split(x, k+c)
	}
}

// halve orders perm[lo:hi] about the median of its widest axis and
// returns where the upper half begins.
func (g *geoTree) halve(x *Index, lo, hi int32) int32 {
	var low, high [3]float32
	for k := range 3 {
		low[k], high[k] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for _, s := range g.perm[lo:hi] {
		for k, v := range x.hot[s].v {
			low[k], high[k] = min(low[k], v), max(high[k], v)
		}
	}
	d := 0
	for k := range 3 {
		if high[k]-low[k] > high[d]-low[d] {
			d = k
		}
	}
	mid := (lo + hi) / 2
	nthElement(g.perm[lo:hi], int(mid-lo), func(p, q int32) bool { return x.hot[p].v[d] < x.hot[q].v[d] })
	return mid
}

// recompute sets box i's count from its offsets or children, and its
// circle when a node under it moved, or became located or not (moved, its
// hot data; nil when none did; see keeps).
func (g *geoTree) recompute(x *Index, i int32, moved *hotNode) {
	b := &g.boxes[i]
	if !b.leaf() {
		b.n = 0
		for k := b.first; k < b.first+b.kids(); k++ {
			b.n += g.boxes[k].n
		}
		if moved != nil {
			if !keeps(g.spots[i], moved.v, moved.located) {
				if c := g.merged(i); c != g.spots[i] {
					g.spots[i] = c
					b.setSpot(c)
				}
			}
		}
		return
	}
	sp := g.spans[i]
	if moved != nil {
		g.spots[i] = circleOf(g.located(x, sp.lo, sp.hi))
		b.setSpot(g.spots[i])
		g.quantize(x, i, sp.lo, sp.hi)
	}
	b.n = 0
	for _, o := range g.offsets[sp.lo:sp.hi] {
		if o.counted() {
			b.n++
		}
	}
}

// holds reports whether slot s is in g.
func (g *geoTree) holds(s int32) bool { return s >= g.base && s-g.base < int32(len(g.leafOf)) }

// refresh takes slot s's node as it now is, and recomputes the boxes above
// it.
func (g *geoTree) refresh(x *Index, s int32, moved bool) {
	leaf := g.leafOf[s-g.base]
	sp := g.spans[leaf]
	for k := sp.lo; k < sp.hi; k++ {
		if g.perm[k] == s {
			g.locs[k] = x.nodes[s].Location
			if !moved { // else the leaf's circle is drawn anew, and all its offsets with it
				g.quantize(x, leaf, k, k+1)
			}
		}
	}
	var h *hotNode
	if moved {
		h = &x.hot[s]
	}
	for i := leaf; i >= 0; i = g.spans[i].parent {
		g.recompute(x, i, h)
	}
}

// beyond counts the online located nodes under box i whose estimated
// latency from the job's origin exceeds the ring's ceiling.
func (g *geoTree) beyond(x *Index, q *query, r *ring, i int32) int {
	if len(g.boxes) == 0 {
		return 0
	}
	b := &g.boxes[i]
	if b.n == 0 || r.angle < 0 {
		return int(b.n) // none, or all: every estimate exceeds a ceiling below the last mile
	}
	switch r.side(q, b) {
	case within:
		return 0
	case outside:
		return int(b.n)
	}
	return g.across(x, q, r, b)
}

// across is beyond for a box the ring crosses. It places every child of
// the box about the ring before opening any, so that their lines are read
// together rather than one at a time down each child's subtree, and
// without branches, as a child is beyond, within or across in no order a
// processor could predict. (A child with no nodes is never opened; one
// with nodes has a rim of at least 0, so is never both within and
// outside.)
func (g *geoTree) across(x *Index, q *query, r *ring, b *geoBox) int {
	if b.leaf() {
		return g.leafBeyond(x, q, r, b)
	}
	var crossed [geoFanout]int32
	n, m := 0, 0
	for k := b.first; k < b.first+b.kids(); k++ {
		c := &g.boxes[k]
		in, out := r.sides(q, c)
		n += int(c.n) & -out
		crossed[m] = k
		m += (1 - in - out) & b2i(c.n > 0)
	}
	for _, k := range crossed[:m] {
		n += g.across(x, q, r, &g.boxes[k])
	}
	return n
}

// b2i is 1 for true and 0 for false, which the compiler takes without a
// branch.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// leafBeyond is beyond for a leaf the ring crosses.
func (g *geoTree) leafBeyond(x *Index, q *query, r *ring, b *geoBox) int {
	// Surely beyond and surely within are counted without branches (the
	// ring crosses the leaf, whose nodes fall either side in no order a
	// processor could predict: the branches cost more than the rest of
	// the count); only a leaf with a node between the two, for which
	// neither counter counts, is read again, for the estimate of each
	// such node.
	//
	// A node's cosine with the origin is the centre's plus its offset's
	// (rel), off by under √3/2 of a step, so a step either side widens the
	// ring's fine band; the thresholds are taken less the centre's, once.
	offs := g.offsets[b.first : b.first+b.points]
	step := b.step()
	o := &q.origin
	centre := dot(*o, b.centre)
	per0, per1, per2 := o[0]*step, o[1]*step, o[2]*step
	surelyBeyond, surelyWithin := r.fineBeyond-centre-step, r.fineWithin-centre+step
	beyond, within := 0, 0
	for k := range offs {
		d := &offs[k]
		rel := per0*float64(d[0]) + per1*float64(d[1]) + per2*float64(d[2])
		counted := b2i(d[0] != uncounted)
		beyond += b2i(rel <= surelyBeyond) & counted
		within += b2i(rel > surelyWithin) & counted
	}
	if beyond+within == int(b.n) {
		return beyond
	}
	for k := range offs {
		d := &offs[k]
		if rel := per0*float64(d[0]) + per1*float64(d[1]) + per2*float64(d[2]); d[0] != uncounted &&
			rel > surelyBeyond && rel <= surelyWithin &&
			EstimateLatencyMicros(q.job.Origin, g.locs[int(b.first)+k]) > r.ceiling {
			beyond++
		}
	}
	return beyond
}
