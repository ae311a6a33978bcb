package scheduler

import "math"

// box is a node of the Index's tree: bounds on the available nodes under
// it (online, with a free GPU: a node without one fits no job, every job
// needing a GPU, so its attributes would only loosen the bounds). The
// bounds are computed from a leaf's nodes or a box's two children, never
// estimated, so they hold whatever the tree's shape. A box is 64 bytes,
// one cache line where the tree's array is aligned, small because the
// search reads a few hundred of them per placement.
type box struct {
	kids          int32  // its children are boxes kids and kids+1; for a leaf, ^(its first slot)
	minID         int32  // the slot with the smallest ID under it, online or not
	minKey        uint32 // idKey[minID], kept here to spare the search its cache miss
	maxFree       int32  // the most of its nodes' clamped free GPUs
	minRTT        uint32
	maxVRAM, maxT uint32 // saturated, see hotNode
	minPrice      uint32
	maxRel        uint16
	minRegion     uint16
	maxRegion     uint16
	has           uint8  // hasNodes, hasRTT, hasLocated
	size          uint8  // a leaf's slots, from ^kids: the search need not read its span
	spot          circle // holds every located node under it, available or not
	// relBid is the most relBidWeights.of its available nodes: record and
	// bid bounded together, far tighter than the best record and the lowest
	// bid, which may be two nodes' (see query.relBidAtMost).
	relBid float32
	// relBidRTT is the most relBidWeights.ofRTT of its available nodes
	// without a position, whose latency is their measured RTT (or
	// unknown): record, bid and RTT bounded together, for those nodes
	// alone (see query.rttAtMost); -Inf when it has none.
	relBidRTT float32
}

// What a box has, available.
const (
	hasNodes   = 1 << iota
	hasRTT     // a node with a measured RTT
	hasLocated // a node whose latency is estimated from its position
)

// span is a box's slots, [lo, hi).
type span struct{ lo, hi int32 }

// leafSize is the most nodes a leaf holds.
const leafSize = 16

func (b *box) leaf() bool { return b.kids < 0 }

// slots returns leaf b's slots, as x.spans does.
func (b *box) slots() span { return span{^b.kids, ^b.kids + int32(b.size)} }

// clear empties b's bounds.
func (b *box) clear() {
	*b = box{kids: b.kids, size: b.size, minID: b.minID, minKey: b.minKey, spot: b.spot,
		maxFree: math.MinInt32, minRTT: math.MaxUint32, minPrice: math.MaxUint32, minRegion: math.MaxUint16,
		relBid: float32(math.Inf(-1)), relBidRTT: float32(math.Inf(-1))}
}

func (b *box) include(h *hotNode, w *relBidWeights) {
	if !h.online || h.free < 1 {
		return
	}
	b.has |= hasNodes
	b.relBid = max(b.relBid, w.of(h))
	b.maxFree = max(b.maxFree, int32(h.free))
	b.minRegion, b.maxRegion = min(b.minRegion, h.region), max(b.maxRegion, h.region)
	b.maxRel = max(b.maxRel, h.rel)
	b.maxVRAM, b.maxT, b.minPrice = max(b.maxVRAM, h.vram), max(b.maxT, h.tflops), min(b.minPrice, h.price)
	if h.rtt > 0 {
		b.has |= hasRTT
		b.minRTT = min(b.minRTT, h.rtt)
	}
	if h.located {
		b.has |= hasLocated
	} else {
		b.relBidRTT = max(b.relBidRTT, w.ofRTT(h))
	}
}

func (b *box) merge(c *box) {
	b.has |= c.has
	b.relBid, b.relBidRTT = max(b.relBid, c.relBid), max(b.relBidRTT, c.relBidRTT)
	b.maxFree = max(b.maxFree, c.maxFree)
	b.minRegion, b.maxRegion = min(b.minRegion, c.minRegion), max(b.maxRegion, c.maxRegion)
	b.maxRel = max(b.maxRel, c.maxRel)
	b.minRTT = min(b.minRTT, c.minRTT)
	b.maxVRAM, b.maxT, b.minPrice = max(b.maxVRAM, c.maxVRAM), max(b.maxT, c.maxT), min(b.minPrice, c.minPrice)
}

// recompute sets box i's bounds from its nodes or its children, and its
// circle when slot moved moved (or became located or not; -1 when none
// did): a leaf's is drawn anew, a box's kept while it holds the node (see
// keeps).
func (x *Index) recompute(i, moved int32) {
	b := &x.tree[i]
	b.clear()
	if !b.leaf() {
		l, r := &x.tree[b.kids], &x.tree[b.kids+1]
		b.merge(l)
		b.merge(r)
		if moved >= 0 {
			h := &x.hot[moved]
			if !keeps(b.spot, h.v, h.located) {
				b.spot = l.spot.merge(r.spot)
			}
		}
		return
	}
	sp := x.spans[i]
	for s := sp.lo; s < sp.hi; s++ {
		b.include(&x.hot[s], &x.relBid)
	}
	if moved >= 0 {
		b.spot = circleOf(x.located(sp))
	}
}

// located yields the positions of the located nodes in span sp.
func (x *Index) located(sp span) func(yield func([3]float32) bool) {
	return func(yield func([3]float32) bool) {
		for s := sp.lo; s < sp.hi; s++ {
			if h := &x.hot[s]; h.located && !yield(h.v) {
				return
			}
		}
	}
}

// refresh recomputes the bounds on the path from slot s's leaf to the
// root after s changed, as far as they change; the position tree's too
// unless only its free GPUs did (which that tree does not count).
//
// When s moved, every box on the path is looked at: a box's circle need not
// hold its children's (see tighter), so one that is unchanged says nothing
// of its parent's.
func (x *Index) refresh(s int32, moved, freeOnly bool) {
	m := int32(-1)
	if moved {
		m = s
	}
	for i := x.leafOf[s]; i >= 0; i = x.up[i] {
		old := x.tree[i]
		if x.recompute(i, m); x.tree[i] == old && !moved {
			break
		}
	}
	if freeOnly {
		return
	}
	if x.geo.holds(s) {
		x.geo.refresh(x, s, moved)
	} else {
		x.geoOverflow.refresh(x, s, moved)
	}
}

// relBidWeights weighs a node's reliability score against its bid for
// box.relBid: as a job's Total does, the bid's weight taken at a ceiling of
// relBidCeiling. A job with another ceiling weighs the bid differently, and
// query.relBidAtMost makes up the difference from the box's best record or
// lowest bid. For box.relBidRTT it weighs the RTT too, as a job without a
// latency ceiling does (DefaultLatencyCeilingMicros); query.rttAtMost makes
// up the difference for others.
type relBidWeights struct{ perRel, perBid, perRTT float64 }

// relBidCeiling is a price ceiling near the middle of those jobs ask for,
// 1 OMNI per GPU-hour: the nearer a job's, the tighter the bound.
const relBidCeiling = 1_000_000

func relBidWeightsOf(w Weights) relBidWeights {
	return relBidWeights{perRel: float64(w.Reliability) / BasisPoints, perBid: float64(w.Price) / relBidCeiling,
		perRTT: float64(w.Latency) / DefaultLatencyCeilingMicros}
}

// of returns perRel·rel − perBid·bid for h, rounded up to a float32. (The
// float64 products are off by far less than the 10⁻⁶ totalAtMost allows.)
func (w *relBidWeights) of(h *hotNode) float32 {
	return ceil32(w.perRel*float64(h.rel) - w.perBid*float64(h.price))
}

// ofRTT returns perRel·rel − perBid·bid − perRTT·rttCapped(h) for h, a node
// without a position, rounded up to a float32.
func (w *relBidWeights) ofRTT(h *hotNode) float32 {
	return ceil32(w.perRel*float64(h.rel) - w.perBid*float64(h.price) - w.perRTT*float64(rttCapped(h.rtt)))
}

// rttCapped is the RTT that box.relBidRTT weighs for a node without a
// position: its measured RTT up to DefaultLatencyCeilingMicros, and that
// ceiling for one with none (unknown latency). It is never more than the
// RTT of a node that a job may be placed on that still scores for latency,
// whatever the job's ceiling (query.rttAtMost says why).
func rttCapped(rtt uint32) uint32 {
	if rtt == 0 {
		return DefaultLatencyCeilingMicros
	}
	return min(rtt, DefaultLatencyCeilingMicros)
}

// ceil32 returns v as the least float32 no smaller.
func ceil32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}
