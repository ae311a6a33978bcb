package scheduler

import "math"

// box is a node of the Index's tree: bounds on the available nodes under
// it (online, with a free GPU: a node without one fits no job, every job
// needing a GPU, so its attributes would only loosen the bounds). The
// bounds are computed from a leaf's nodes or a box's two children, never
// estimated, so they hold whatever the tree's shape; a box fits a cache
// line, as the search reads a few hundred of them per placement.
type box struct {
	kids          int32  // its children are boxes kids and kids+1; -1 for a leaf
	minID         int32  // the slot with the smallest ID under it, online or not
	minKey        uint32 // idKey[minID], kept here to spare the search its cache miss
	maxFree       int32  // clamped to int32
	minRTT        uint32
	maxVRAM, maxT uint32 // saturated, see hotNode
	minPrice      uint32
	maxRel        uint16
	minRegion     uint16
	maxRegion     uint16
	has           uint8  // hasNodes, hasRTT, hasLocated
	spot          circle // holds every located node under it, available or not
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

// clear empties b's bounds.
func (b *box) clear() {
	*b = box{kids: b.kids, minID: b.minID, minKey: b.minKey, spot: b.spot,
		maxFree: math.MinInt32, minRTT: math.MaxUint32, minPrice: math.MaxUint32, minRegion: math.MaxUint16}
}

func (b *box) include(h *hotNode) {
	if !h.online || h.free < 1 {
		return
	}
	b.has |= hasNodes
	b.maxFree = max(b.maxFree, h.free)
	b.minRegion, b.maxRegion = min(b.minRegion, h.region), max(b.maxRegion, h.region)
	b.maxRel = max(b.maxRel, h.rel)
	b.maxVRAM, b.maxT, b.minPrice = max(b.maxVRAM, h.vram), max(b.maxT, h.tflops), min(b.minPrice, h.price)
	if h.rtt > 0 {
		b.has |= hasRTT
		b.minRTT = min(b.minRTT, h.rtt)
	}
	if h.located {
		b.has |= hasLocated
	}
}

func (b *box) merge(c *box) {
	b.has |= c.has
	b.maxFree = max(b.maxFree, c.maxFree)
	b.minRegion, b.maxRegion = min(b.minRegion, c.minRegion), max(b.maxRegion, c.maxRegion)
	b.maxRel = max(b.maxRel, c.maxRel)
	b.minRTT = min(b.minRTT, c.minRTT)
	b.maxVRAM, b.maxT, b.minPrice = max(b.maxVRAM, c.maxVRAM), max(b.maxT, c.maxT), min(b.minPrice, c.minPrice)
}

// recompute sets box i's bounds from its nodes or its children, and its
// circle when slot moved moved (or became located or not; -1 when none
// did): a leaf's is drawn anew, a box's kept while it holds the node (see
// keepOrMerge).
func (x *Index) recompute(i, moved int32) {
	b := &x.tree[i]
	b.clear()
	if !b.leaf() {
		l, r := &x.tree[b.kids], &x.tree[b.kids+1]
		b.merge(l)
		b.merge(r)
		if moved >= 0 {
			h := &x.hot[moved]
			b.spot = keepOrMerge(b.spot, l.spot, r.spot, h.v, h.located)
		}
		return
	}
	sp := x.spans[i]
	for s := sp.lo; s < sp.hi; s++ {
		b.include(&x.hot[s])
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
