package scheduler

import (
	"cmp"
	"math"
	"slices"
)

// buildTree builds a tree over slots [lo, hi), reordering them, and appends
// its boxes to x.tree; its root is the first of them.
//
// The tree is cut first by TFLOPS, down to a narrow band (one GPU model,
// where models are few), because the fastest feasible node sets every
// compute score and because a job's price ceiling and VRAM cut across
// models. Where nodes of one TFLOPS rating come in a few VRAM sizes (an
// A100 with 40 or 80 GiB, an H100 or an H200), it is cut by VRAM next, so
// that the smaller model's low bids do not admit a box for a job that
// needs the larger model's memory. Then it is cut by region and by how a
// node's latency is known (measured, estimated from its position, or
// unknown), so that a region constraint prunes whole subtrees and a box's
// latency bound is of one kind. Below that, each box is cut at the median
// of the attribute whose spread would move the Total most: TFLOPS,
// reliability, bid, VRAM, free GPUs, and RTT or position, each scaled by
// its weight. Only speed depends on these choices; the bounds are exact
// for any tree.
func (x *Index) buildTree(lo, hi int32) {
	b := treeBuilder{x: x, base: lo, perm: make([]int32, hi-lo)}
	for i := range b.perm {
		b.perm[i] = lo + int32(i)
	}
	b.measure()
	first := int32(len(x.tree))
	x.tree = append(x.tree, box{})
	x.spans = append(x.spans, span{lo, hi})
	x.up = append(x.up, -1)
	b.split(first, 0, int32(len(b.perm)), false)

	// Move the nodes into the order the tree wants.
	nodes, hot := make([]Node, len(b.perm)), make([]hotNode, len(b.perm))
	for i, s := range b.perm {
		nodes[i], hot[i] = x.nodes[s], x.hot[s]
	}
	copy(x.nodes[lo:hi], nodes)
	copy(x.hot[lo:hi], hot)
	for s := lo; s < hi; s++ {
		x.slotOf[x.nodes[s].ID] = s
	}
	// Key the IDs of a tree from slot 0: the main tree (the overflow's
	// slots keep key 0), or an overflow with no main tree beside it.
	if lo == 0 {
		byID := b.perm // free again
		for i := range byID {
			byID[i] = int32(i)
		}
		slices.SortFunc(byID, func(s, t int32) int { return cmp.Compare(x.nodes[s].ID, x.nodes[t].ID) })
		for k, s := range byID {
			x.idKey[s] = uint32(k + 1)
		}
	}
	// Children come after their parent, so bounds are computed backwards.
	for i := int32(len(x.tree)) - 1; i >= first; i-- {
		bx := &x.tree[i]
		if bx.leaf() {
			sp := x.spans[i]
			bx.minID = sp.lo
			for s := sp.lo; s < sp.hi; s++ {
				x.leafOf[s] = i
				if x.nodes[s].ID < x.nodes[bx.minID].ID {
					bx.minID = s
				}
			}
		} else {
			l, r := x.tree[bx.kids].minID, x.tree[bx.kids+1].minID
			bx.minID = l
			if x.nodes[r].ID < x.nodes[l].ID {
				bx.minID = r
			}
		}
		bx.minKey = x.idKey[bx.minID]
		x.recompute(i, -1)
		bx.spot = circleOf(x.located(x.spans[i]))
		if !bx.leaf() {
			bx.spot = tighter(x.tree[bx.kids].spot.merge(x.tree[bx.kids+1].spot), bx.spot)
		}
	}
}

// latencyKind orders nodes by how their latency is known: measured,
// estimated from a position, unknown.
func latencyKind(h *hotNode) int {
	switch {
	case h.rtt > 0:
		return 0
	case h.located:
		return 1
	}
	return 2
}

// Cut dimensions, each a node's attribute scaled to how much of the Total
// (as a fraction) its full range can move.
const (
	cutTFLOPS = iota
	cutReliability
	cutPrice
	cutVRAM
	cutFree
	cutLatency // RTT, or the first of three unit-vector coordinates
	numCuts    = cutLatency + 3
)

// cutLatencyCeiling is the latency ceiling the tree is cut for (see
// measure): a third of the default, 100 ms, amid the ceilings the
// benchmarks' market jobs name (20 to 200 ms).
const cutLatencyCeiling = DefaultLatencyCeilingMicros / 3

type treeBuilder struct {
	x          *Index
	tflopsBand float32 // boxes are cut by TFLOPS first, down to this spread or one value
	base       int32
	perm       []int32            // slots, in the order being built
	coords     [][numCuts]float32 // by slot - base
}

// measure computes every node's cut coordinates.
func (b *treeBuilder) measure() {
	x := b.x
	var maxT, maxVRAM uint32
	prices := make([]uint32, len(b.perm))
	for i, s := range b.perm {
		h := &x.hot[s]
		maxT, maxVRAM = max(maxT, h.tflops), max(maxVRAM, h.vram)
		prices[i] = h.price
	}
	// A bid moves a job's Total by the price weight times its share of
	// the job's price ceiling, and a latency by the latency weight times
	// its share of the job's latency ceiling, so the two are scaled by
	// ceilings: those of the jobs they move most, which open the most
	// boxes, a price ceiling at the median bid and cutLatencyCeiling.
	// Against twice the median bid and the default latency ceiling, as
	// they were, this cut the work of the benchmarks' placements (boxes
	// bounded, boxes read for the fastest node, and 16 for each leaf
	// scanned) on the market snapshot from 292 a placed job on average to
	// 259, at the 99th percentile from 598 to 530 and at the 99.9th from
	// 796 to 696; on the uniform snapshot from 1,327 to 1,119 on average
	// (2,494 to 2,552 at the 99th percentile). Other scales for free GPUs,
	// reliability or VRAM moved it less, or traded the tail for the mean.
	slices.Sort(prices)
	priceScale := float64(1)
	if len(prices) > 0 {
		priceScale = max(float64(prices[len(prices)/2]), 1)
	}
	w := func(bp uint32) float64 { return float64(bp) / BasisPoints }
	// A radian of great circle is this many cutLatencyCeilings.
	const latencyPerRadian = earthRadiusKm * microsPerKm / cutLatencyCeiling
	b.tflopsBand = float32(w(x.w.Compute) / 8)
	b.coords = make([][numCuts]float32, len(b.perm))
	for i, s := range b.perm {
		h, c := &x.hot[s], &b.coords[i]
		c[cutTFLOPS] = float32(w(x.w.Compute) * float64(h.tflops) / max(float64(maxT), 1))
		c[cutReliability] = float32(w(x.w.Reliability) * float64(h.rel) / BasisPoints)
		c[cutPrice] = float32(w(x.w.Price) * float64(h.price) / priceScale)
		// VRAM and free GPUs decide feasibility, not the score: a tenth
		// of the Total for the whole range is a guess that cuts them
		// when they vary much more than the scored attributes do.
		c[cutVRAM] = float32(0.1 * float64(h.vram) / max(float64(maxVRAM), 1))
		c[cutFree] = float32(0.1 * float64(min(max(h.free, 0), 8)) / 8)
		switch {
		case h.rtt > 0:
			c[cutLatency] = float32(w(x.w.Latency) * float64(h.rtt) / cutLatencyCeiling)
		case h.located:
			for k := range 3 {
				c[cutLatency+k] = float32(w(x.w.Latency) * latencyPerRadian * float64(h.v[k]))
			}
		}
	}
}

func (b *treeBuilder) coord(s int32, d int) float32 { return b.coords[s-b.base][d] }

// split cuts box i, over perm[lo:hi], and its subtree; sorted says whether
// perm[lo:hi] is in category order.
func (b *treeBuilder) split(i, lo, hi int32, sorted bool) {
	x := b.x
	if hi-lo <= leafSize {
		x.tree[i].kids, x.tree[i].size = ^(b.base + lo), uint8(hi-lo)
		return
	}
	var mid int32
	if low, high := b.spread(lo, hi, cutTFLOPS); high-low > b.tflopsBand || (high > low && b.fewValues(lo, hi, cutTFLOPS)) {
		mid = b.cutAt(lo, hi, cutTFLOPS)
		sorted = false
	} else if high == low && b.varies(lo, hi, cutVRAM) && b.fewValues(lo, hi, cutVRAM) {
		// One rating, a few memory sizes: GPU models. (Where ratings
		// vary within the band, VRAM is no sign of a model: a cut there
		// split the uniform snapshot's bands and slowed it.)
		mid = b.cutAt(lo, hi, cutVRAM)
		sorted = false
	} else {
		if !sorted {
			slices.SortFunc(b.perm[lo:hi], func(p, q int32) int {
				return cmp.Or(cmp.Compare(x.hot[p].region, x.hot[q].region), cmp.Compare(latencyKind(&x.hot[p]), latencyKind(&x.hot[q])))
			})
			sorted = true
		}
		if mid = b.categoryCut(lo, hi); mid < 0 {
			mid = b.cutAt(lo, hi, b.widest(lo, hi))
		}
	}
	// The children sit side by side, so one visit reads both.
	k := int32(len(x.tree))
	x.tree[i].kids = k
	x.tree = append(x.tree, box{}, box{})
	x.spans = append(x.spans, span{b.base + lo, b.base + mid}, span{b.base + mid, b.base + hi})
	x.up = append(x.up, i, i)
	b.split(k, lo, mid, sorted)
	b.split(k+1, mid, hi, sorted)
}

// fewValues reports whether dimension d takes only a few values in
// perm[lo:hi], judging by a sample: GPU models rather than a continuum.
func (b *treeBuilder) fewValues(lo, hi int32, d int) bool {
	const samples, few = 64, 16
	step := max((hi-lo)/samples, 1)
	var seen [few + 1]float32
	n := 0
	for k := lo; k < hi; k += step {
		if v := b.coord(b.perm[k], d); !slices.Contains(seen[:n], v) {
			if n == few {
				return false
			}
			seen[n] = v
			n++
		}
	}
	return true
}

// varies reports whether dimension d takes more than one value in
// perm[lo:hi].
func (b *treeBuilder) varies(lo, hi int32, d int) bool {
	first := b.coord(b.perm[lo], d)
	for _, s := range b.perm[lo+1 : hi] {
		if b.coord(s, d) != first {
			return true
		}
	}
	return false
}

func (b *treeBuilder) spread(lo, hi int32, d int) (low, high float32) {
	low, high = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, s := range b.perm[lo:hi] {
		c := b.coord(s, d)
		low, high = min(low, c), max(high, c)
	}
	return low, high
}

// cutAt orders perm[lo:hi] by dimension d about its median and returns
// where to cut: between two values near the median when one is close
// enough, so that nodes alike in d (one GPU model, one price) stay in one
// box, else at the middle.
func (b *treeBuilder) cutAt(lo, hi int32, d int) int32 {
	part := b.perm[lo:hi]
	mid := len(part) / 2
	nthElement(part, mid, func(p, q int32) bool { return b.coord(p, d) < b.coord(q, d) })
	v := b.coord(part[mid], d)
	// part[:mid] ≤ v ≤ part[mid:]: gather the v's either side of mid.
	first, last := mid, mid+1
	for k := mid - 1; k >= 0; k-- {
		if b.coord(part[k], d) == v {
			first--
			part[k], part[first] = part[first], part[k]
		}
	}
	for k := mid + 1; k < len(part); k++ {
		if b.coord(part[k], d) == v {
			part[k], part[last] = part[last], part[k]
			last++
		}
	}
	slack := len(part) / 8
	cut := mid
	switch {
	case first >= slack && (mid-first <= last-mid || last > len(part)-slack):
		cut = first
	case last <= len(part)-slack:
		cut = last
	}
	return lo + int32(cut)
}

// categoryCut returns the region or latency-kind boundary in perm[lo:hi]
// nearest its middle, or -1 when the range is of one category.
func (b *treeBuilder) categoryCut(lo, hi int32) int32 {
	x := b.x
	category := func(k int32) [2]int {
		h := &x.hot[b.perm[k]]
		return [2]int{int(h.region), latencyKind(h)}
	}
	if category(lo) == category(hi-1) {
		return -1
	}
	mid := (lo + hi) / 2
	// perm[lo:hi] is sorted by category: walk out from the middle.
	for d := int32(0); ; d++ {
		if k := mid - d; k > lo && category(k-1) != category(k) {
			return k
		}
		if k := mid + d; k < hi && category(k-1) != category(k) {
			return k
		}
	}
}

// widest returns the cut dimension with the largest spread in perm[lo:hi].
func (b *treeBuilder) widest(lo, hi int32) int {
	var low, high [numCuts]float32
	for d := range numCuts {
		low[d], high[d] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for _, s := range b.perm[lo:hi] {
		c := &b.coords[s-b.base]
		for d := range numCuts {
			low[d], high[d] = min(low[d], c[d]), max(high[d], c[d])
		}
	}
	best := 0
	for d := range numCuts {
		if high[d]-low[d] > high[best]-low[best] {
			best = d
		}
	}
	return best
}

// nthElement reorders a so that a[k] is where sorting would put it, with
// nothing after it less and nothing before it greater: Hoare's selection
// with a median-of-three pivot and a three-way partition, so long runs of
// equal values (every node of one GPU model) stay linear.
func nthElement(a []int32, k int, less func(p, q int32) bool) {
	lo, hi := 0, len(a)
	for hi-lo > 1 {
		m := lo + (hi-lo)/2
		if less(a[m], a[lo]) {
			a[m], a[lo] = a[lo], a[m]
		}
		if less(a[hi-1], a[lo]) {
			a[hi-1], a[lo] = a[lo], a[hi-1]
		}
		if less(a[hi-1], a[m]) {
			a[hi-1], a[m] = a[m], a[hi-1]
		}
		pivot := a[m]
		// a[lo:lt] < pivot, a[lt:i] == pivot, a[gt:hi] > pivot
		lt, i, gt := lo, lo, hi
		for i < gt {
			switch {
			case less(a[i], pivot):
				a[lt], a[i] = a[i], a[lt]
				lt++
				i++
			case less(pivot, a[i]):
				gt--
				a[i], a[gt] = a[gt], a[i]
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt
		case k >= gt:
			lo = gt
		default:
			return
		}
	}
}
