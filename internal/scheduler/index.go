package scheduler

import (
	"fmt"
	"math"
	"slices"
	"sync"
)

// Index answers Place for a snapshot that changes one node at a time,
// without visiting every node. Index.Place(job) returns exactly what
// Place(job, x.Snapshot(), weights) returns: the same placements in the
// same order with the same scores, and the same error with the same
// message. Only Plan.Rejected differs: it is left empty, since listing a
// million rejections would be the full scan.
//
// When nothing fits, the error counts how many nodes fail each of the
// job's limits ("812 have too little VRAM (need 24 GiB per GPU), ..."),
// each limit on its own (see misfits). These counts are exact, but they
// are not Plan.Rejected's first failing checker per node: keeping that
// partition would mean visiting every node, because free GPUs change with
// every reservation. The index keeps one counter per criterion instead
// (multiset, and geoTree for distance), and Place's message gives the same
// counts from its scan.
//
// Nodes live in a tree of boxes (index_tree.go, cut as index_build.go
// says). Every box holds, for its available nodes, bounds on each
// attribute that decides feasibility or a score: the most free GPUs, VRAM
// and TFLOPS, the lowest bid, the best reliability, the least RTT, a
// circle on the sphere holding their positions, and the most of two
// weighted sums that bound attributes together where the best of each
// are seldom one node's (record and bid; and record, bid and RTT over the
// nodes without a position). Place searches the tree
// best first twice (index_search.go): for the fastest feasible node, which
// the compute score is relative to, and then for the best Replicas nodes
// of distinct operators, skipping every box whose bound cannot beat the
// list. The bounds are upper bounds, never estimates, so nothing that
// could be placed is skipped; how the tree is cut decides only the speed.
// A job of bigJobGPUs or more is searched for in a second index of the
// nodes that may have that many free (big), the same way.
//
// The index takes a node's ID as its identity: NewIndex refuses two nodes
// with one ID, and Set replaces by ID. Updates (Set, SetFreeGPUs, Remove)
// refresh the bounds on one path of the tree, a microsecond or so.
//
// Concurrency: Place, PlaceWith (each goroutine with its own Scratch),
// Node, Snapshot, Len and Version only read the index, and any number of
// them may run at once. Set, SetFreeGPUs and Remove write it, and each
// must run alone, with no reader beside it: for instance placements under
// the read side of a sync.RWMutex the caller holds and updates under its
// write side. A caller that places under the read lock and then reserves
// under the write lock must check that the snapshot did not change in
// between (Version), or re-place.
type Index struct {
	w        Weights
	relBid   relBidWeights
	checkers []checker

	// A node has a slot for life: nodes and hot are indexed by it, and a
	// node that leaves the snapshot keeps its slot, marked offline.
	nodes  []Node
	hot    []hotNode
	slotOf map[string]int32
	leafOf []int32 // slot → the leaf box holding it
	// idKey orders the main tree's slots by ID, from 1, so that the search
	// breaks ties of Total without reading two nodes' IDs from memory far
	// apart; it is 0 for slots added since (see idNotBefore).
	idKey []uint32

	tree  []box
	spans []span  // by box
	up    []int32 // by box: its parent, or -1
	// Slots [0, mainEnd) are under box 0, built with the index. Nodes
	// added since are in slots [mainEnd, len(nodes)), under their own
	// small tree (boxes [mainBoxes, len(tree)), root overflowRoot), which
	// is rebuilt on every addition; when it outgrows maxOverflow the whole
	// index is rebuilt.
	mainEnd, mainBoxes, overflowRoot int32
	overflowLimit                    int // maxOverflow, but for tests
	// The same slots again, cut by position alone, for counting nodes
	// beyond a latency ceiling.
	geo, geoOverflow geoTree

	regions     map[string]uint32
	regionCount []int // online nodes by region code
	// The no-fit counters, over online nodes: free GPUs (below 0 as 0),
	// VRAM, TFLOPS, bids, and measured RTTs; nodes without an RTT and
	// without a known position.
	free, vram, tflops, price, rtt multiset
	unplaced                       int
	online                         int

	version uint64 // updates that changed the snapshot

	scratch sync.Pool // of *Scratch, for Place

	// big is a second index over the nodes that may have bigJobGPUs free
	// (bigNode), kept as this one is, for the jobs that need that many: a
	// tree of an eighth of the market's nodes, none of which lacks the
	// GPUs, bounds such a job's search far closer than the whole tree,
	// where nearly every box holds one node with eight free. Every node
	// online here with bigJobGPUs free is online there, the same Node; one
	// there may have fewer free since. nil in big itself (inBig).
	big   *Index
	inBig bool
}

// bigJobGPUs is the fewest GPUs a job asks for to be placed from Index.big.
const bigJobGPUs = 5

// bigNode reports whether n belongs in Index.big: it has bigJobGPUs GPUs,
// or that many free.
func bigNode(n *Node) bool { return max(n.GPUs, n.FreeGPUs) >= bigJobGPUs }

// hotNode is what the search reads of a node, packed into 48 bytes: a
// leaf's nodes are adjacent in memory and nothing in it is a pointer. The
// uint64 attributes are saturated at MaxUint32, the free GPUs clamped to
// an int16 (as is the job's count, query.gpus) and the region code
// saturated at manyRegions, which keeps every comparison the search makes
// with them conservative (a saturated bid is no higher than the real one;
// see widen). For a node with none of them saturated or clamped (exact),
// and a job none of whose excluded IDs shares the node's idHash, fits and
// the latency from loc decide as the checkers do on the Node itself, and
// the search leaves the Node, far from the cache, unread (verdict).
type hotNode struct {
	free                int16  // clamped
	idHash              uint16 // hash16 of the node's ID
	vram, tflops, price uint32
	rtt                 uint32
	v                   [3]float32 // unit vector, when located
	loc                 Location   // Node.Location, for the estimate itself
	rel                 uint16     // min(ReliabilityBP, 10000), all the scorer uses
	region              uint16
	opHash              uint16 // see ranked
	online              bool
	located             bool // no RTT, so latency is estimated from v
}

// exact reports whether h holds the node's own attributes: none saturated
// or clamped, and a region code of one region.
func (h *hotNode) exact() bool {
	return h.free != math.MaxInt16 && h.vram != math.MaxUint32 && h.tflops != math.MaxUint32 &&
		h.price != math.MaxUint32 && h.region != manyRegions
}

// manyRegions stands for every region code from it up.
const manyRegions = math.MaxUint16

func saturate(v uint64) uint32 { return uint32(min(v, math.MaxUint32)) }

// widen undoes saturate for an upper bound: a saturated value may have
// been anything.
func widen(v uint32) uint64 {
	if v == math.MaxUint32 {
		return math.MaxUint64
	}
	return uint64(v)
}

func clamp16(v int) int16 { return int16(min(max(v, math.MinInt16), math.MaxInt16)) }

// maxOverflow is how many added nodes the index holds outside its main
// tree before it rebuilds: each addition rebuilds the overflow tree, in
// O(maxOverflow·log maxOverflow), and a rebuild of a million nodes takes
// about five seconds on a 2-core host, so the rebuild costs each addition
// about a millisecond. The chain registers nodes far more slowly.
const maxOverflow = 4096

// NewIndex builds an index over nodes, all of them in the snapshot, with
// the weights every Place will score by.
func NewIndex(nodes []Node, w Weights) (*Index, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	x := newIndex(w)
	if err := x.rebuild(slices.Clone(nodes), nil); err != nil {
		return nil, err
	}
	return x, nil
}

func newIndex(w Weights) *Index {
	return &Index{w: w, relBid: relBidWeightsOf(w), checkers: feasibilityCheckers(), overflowLimit: maxOverflow}
}

// rebuild makes the index anew over nodes; online[i] says whether nodes[i]
// is in the snapshot (all are when online is nil).
func (x *Index) rebuild(nodes []Node, online []bool) error {
	x.slotOf = make(map[string]int32, len(nodes))
	for i := range nodes {
		if _, dup := x.slotOf[nodes[i].ID]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicateNode, nodes[i].ID)
		}
		x.slotOf[nodes[i].ID] = int32(i)
	}
	x.nodes = nodes
	x.hot = make([]hotNode, len(nodes))
	if x.regions == nil {
		x.regions = map[string]uint32{} // codes stay the same across rebuilds
	}
	x.regionCount = make([]int, len(x.regions))
	x.online = 0
	x.unplaced = 0
	var free, vram, tflops, price, rtt []uint64
	for i := range nodes {
		x.hot[i] = x.hotOf(&nodes[i])
		if online == nil || online[i] {
			x.hot[i].online = true
			n := &nodes[i]
			free, vram, tflops, price = append(free, freeKey(n.FreeGPUs)), append(vram, n.VRAMMiB), append(tflops, n.TFLOPSMilli), append(price, n.PricePerHourUomni)
			if n.RTTMicros > 0 {
				rtt = append(rtt, uint64(n.RTTMicros))
			}
			x.countOnline(n, 1)
		}
	}
	x.free, x.vram, x.tflops, x.price, x.rtt = newMultiset(free), newMultiset(vram), newMultiset(tflops), newMultiset(price), newMultiset(rtt)
	x.leafOf, x.idKey = make([]int32, len(nodes)), make([]uint32, len(nodes))
	x.tree, x.spans, x.up = x.tree[:0], x.spans[:0], x.up[:0]
	x.mainEnd, x.overflowRoot = int32(len(nodes)), -1
	if len(nodes) > 0 {
		x.buildTree(0, int32(len(nodes)))
	}
	x.mainBoxes = int32(len(x.tree))
	x.geo, x.geoOverflow = newGeoTree(x, 0, x.mainEnd), geoTree{}
	if x.inBig {
		return nil
	}
	var big []Node
	var bigOnline []bool
	for i := range nodes {
		if bigNode(&nodes[i]) {
			big, bigOnline = append(big, nodes[i]), append(bigOnline, online == nil || online[i])
		}
	}
	x.big = newIndex(x.w)
	x.big.inBig, x.big.overflowLimit = true, x.overflowLimit
	return x.big.rebuild(big, bigOnline)
}

// countOnline adds (d = 1) or removes (d = -1) a node's share of the
// counters that are plain counts.
func (x *Index) countOnline(n *Node, d int) {
	x.online += d
	x.regionCount[x.regions[n.Region]] += d
	if n.RTTMicros == 0 && !n.Location.Known() {
		x.unplaced += d
	}
}

func freeKey(free int) uint64 { return uint64(max(free, 0)) }

func (x *Index) hotOf(n *Node) hotNode {
	code, ok := x.regions[n.Region]
	if !ok {
		code = uint32(len(x.regions))
		x.regions[n.Region] = code
		x.regionCount = append(x.regionCount, 0)
	}
	h := hotNode{
		tflops: saturate(n.TFLOPSMilli), vram: saturate(n.VRAMMiB), price: saturate(n.PricePerHourUomni),
		free: clamp16(n.FreeGPUs), rel: uint16(reliabilityScore(n.ReliabilityBP)), rtt: n.RTTMicros,
		region: uint16(min(code, manyRegions)), opHash: hash16(n.Operator), idHash: hash16(n.ID), loc: n.Location,
	}
	if n.RTTMicros == 0 && n.Location.Known() {
		h.located = true
		v := unitVector(n.Location)
		h.v = [3]float32{float32(v[0]), float32(v[1]), float32(v[2])}
	}
	return h
}

// hash16 is FNV-1a of a name (an operator's, a node's ID), folded into
// 1..65535.
func hash16(name string) uint16 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return uint16((h^h>>16)%65535 + 1)
}

// Len is the number of nodes in the snapshot.
func (x *Index) Len() int { return x.online }

// Version counts the updates that changed the snapshot: Place answers the
// same job the same way for as long as it stays the same.
func (x *Index) Version() uint64 { return x.version }

// has reports whether the index has a slot for id, online or not.
func (x *Index) has(id string) bool {
	_, ok := x.slotOf[id]
	return ok
}

// Node returns the node with this ID if it is in the snapshot.
func (x *Index) Node(id string) (Node, bool) {
	s, ok := x.slotOf[id]
	if !ok || !x.hot[s].online {
		return Node{}, false
	}
	return x.nodes[s], true
}

// Snapshot returns the nodes in the snapshot, in the index's order:
// Place(job, x.Snapshot(), weights) is what Index.Place answers.
func (x *Index) Snapshot() []Node {
	out := make([]Node, 0, x.online)
	for s := range x.nodes {
		if x.hot[s].online {
			out = append(out, x.nodes[s])
		}
	}
	return out
}

// Set puts n in the snapshot, replacing the node with its ID if there is
// one (online or not): a heartbeat, a changed bid, a node coming back. A
// node the index has not seen is added, which costs more (see
// maxOverflow).
func (x *Index) Set(n Node) {
	if x.big != nil && (bigNode(&n) || x.big.has(n.ID)) {
		x.big.Set(n)
	}
	s, ok := x.slotOf[n.ID]
	if !ok {
		x.add(n)
		return
	}
	x.version++
	x.leave(s)
	old := x.hot[s]
	x.nodes[s] = n
	x.hot[s] = x.hotOf(&n)
	x.join(s)
	x.refresh(s, old.located != x.hot[s].located || old.v != x.hot[s].v, false)
}

// SetFreeGPUs changes a node's free GPUs, for reservations and their
// release; it reports whether the node is in the snapshot.
func (x *Index) SetFreeGPUs(id string, free int) bool {
	s, ok := x.slotOf[id]
	if !ok || !x.hot[s].online {
		return false
	}
	if x.big != nil {
		if x.big.has(id) {
			x.big.SetFreeGPUs(id, free)
		} else if free >= bigJobGPUs {
			n := x.nodes[s]
			n.FreeGPUs = free
			x.big.Set(n)
		}
	}
	if old := x.nodes[s].FreeGPUs; old != free {
		x.version++
		x.free.remove(freeKey(old))
		x.free.add(freeKey(free))
		h := &x.hot[s]
		was := h.free
		x.nodes[s].FreeGPUs, h.free = free, clamp16(free)
		switch {
		case was >= 1 && h.free >= was:
			x.raiseMaxFree(s)
		case was < 1 && h.free >= 1:
			x.includeUp(s)
		default:
			x.refresh(s, false, true)
		}
	}
	return true
}

// raiseMaxFree refreshes the boxes above slot s, which was available and
// has more free GPUs now: only their most free GPUs can change.
func (x *Index) raiseMaxFree(s int32) {
	free := int32(x.hot[s].free)
	for i := x.leafOf[s]; i >= 0 && x.tree[i].maxFree < free; i = x.up[i] {
		x.tree[i].maxFree = free
	}
}

// includeUp refreshes the boxes above slot s, which has just become
// available: each box's bounds are the best of its available nodes', so
// taking s's into them is what recomputing them would give, and a box
// they do not change has ancestors they do not change either.
func (x *Index) includeUp(s int32) {
	h := &x.hot[s]
	for i := x.leafOf[s]; i >= 0; i = x.up[i] {
		old := x.tree[i]
		if x.tree[i].include(h, &x.relBid); x.tree[i] == old {
			return
		}
	}
}

// Remove takes a node out of the snapshot (offline, or gone from the
// chain) and reports whether it was in it. Its slot stays, for Set to
// bring it back cheaply.
func (x *Index) Remove(id string) bool {
	if x.big != nil {
		x.big.Remove(id)
	}
	s, ok := x.slotOf[id]
	if !ok || !x.hot[s].online {
		return false
	}
	x.version++
	x.leave(s)
	x.refresh(s, false, false)
	return true
}

// leave takes slot s's node out of the snapshot's counters, if it is in.
func (x *Index) leave(s int32) {
	h, n := &x.hot[s], &x.nodes[s]
	if !h.online {
		return
	}
	h.online = false
	x.countOnline(n, -1)
	x.free.remove(freeKey(n.FreeGPUs))
	x.vram.remove(n.VRAMMiB)
	x.tflops.remove(n.TFLOPSMilli)
	x.price.remove(n.PricePerHourUomni)
	if n.RTTMicros > 0 {
		x.rtt.remove(uint64(n.RTTMicros))
	}
}

// join puts slot s's node into the snapshot's counters.
func (x *Index) join(s int32) {
	x.hot[s].online = true
	n := &x.nodes[s]
	x.countOnline(n, 1)
	x.free.add(freeKey(n.FreeGPUs))
	x.vram.add(n.VRAMMiB)
	x.tflops.add(n.TFLOPSMilli)
	x.price.add(n.PricePerHourUomni)
	if n.RTTMicros > 0 {
		x.rtt.add(uint64(n.RTTMicros))
	}
}

// add gives a new node a slot in the overflow tree, or rebuilds the index
// when the overflow is full.
func (x *Index) add(n Node) {
	x.version++
	if len(x.nodes)-int(x.mainEnd) >= x.overflowLimit {
		online := make([]bool, len(x.nodes), len(x.nodes)+1)
		for s := range online {
			online[s] = x.hot[s].online
		}
		_ = x.rebuild(append(x.nodes, n), append(online, true)) // n's ID is new
		return
	}
	s := int32(len(x.nodes))
	x.nodes = append(x.nodes, n)
	x.hot = append(x.hot, x.hotOf(&n))
	x.leafOf, x.idKey = append(x.leafOf, 0), append(x.idKey, 0)
	x.slotOf[n.ID] = s
	x.join(s)
	x.tree, x.spans, x.up = x.tree[:x.mainBoxes], x.spans[:x.mainBoxes], x.up[:x.mainBoxes]
	x.overflowRoot = int32(len(x.tree))
	x.buildTree(x.mainEnd, int32(len(x.nodes)))
	x.geoOverflow = newGeoTree(x, x.mainEnd, int32(len(x.nodes)))
}

// idNotBefore reports whether slot s's ID, whose key is key, is not before
// slot t's (key tKey): by the keys when both are in the main tree, else by
// the IDs themselves.
func (x *Index) idNotBefore(key uint32, s int32, tKey uint32, t int32) bool {
	if key != 0 && tKey != 0 {
		return key >= tKey
	}
	return x.nodes[s].ID >= x.nodes[t].ID
}

// unitVector is l on the unit sphere, where the index bounds positions.
func unitVector(l Location) [3]float64 {
	lat, lon := radians(int64(l.LatE6)), radians(int64(l.LonE6))
	return [3]float64{math.Cos(lat) * math.Cos(lon), math.Cos(lat) * math.Sin(lon), math.Sin(lat)}
}
