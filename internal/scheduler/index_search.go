package scheduler

import (
	"math"
	"math/bits"
	"slices"
)

// Place chooses nodes for job from the index's snapshot, exactly as Place
// would (see Index); Plan.Rejected is always empty. It only reads the
// index, so placements may run concurrently (see Index); each takes scratch
// space from the index's pool, or the caller's through PlaceWith.
//
// The search runs twice over the tree, best box first, pruning by bounds
// that no node in a box can exceed:
//
//  1. The compute score is a share of the fastest feasible node's TFLOPS,
//     so that node is found first: boxes in order of their most TFLOPS,
//     stopping at the first box that cannot hold a faster feasible node.
//
//  2. Then the placements. Every scorer is monotone in one attribute
//     (compute rises with TFLOPS, latency falls with RTT or distance,
//     reliability rises with the record, price falls with the bid) and the
//     Total is their weighted sum rounded down, so scoring a box's best
//     attribute values — most TFLOPS, least latency, best record, lowest
//     bid, even when no one node has them all — bounds the Total of every
//     node in it. Boxes are visited in order of that bound; once the top
//     list is full, a box whose bound is below its last entry's Total, or
//     equal to it with no ID before that entry's, cannot place a node
//     (topList.offer would refuse it), and the search stops at the first
//     box below. The same bound, per node, spares most nodes the
//     feasibility checks and the distance estimate.
//
// A box's latency bound is its least measured RTT, and for the nodes whose
// latency is estimated from their position, the estimate at the nearest
// point of a circle on the sphere that holds them all (index_geo.go), less
// margins far larger than the rounding of that computation or of
// EstimateLatencyMicros. The scores are bounded in float64 from their
// unrounded fractions (setFastest says why that is safe); the scores and
// Totals placed are the scorers' own.
func (x *Index) Place(job Job) (Plan, error) {
	s, _ := x.scratch.Get().(*Scratch)
	if s == nil {
		s = new(Scratch)
	}
	defer x.scratch.Put(s)
	return x.PlaceWith(s, job)
}

// Scratch is a placement's working space (the query, the search's heap and
// top list), kept between placements so that they allocate little. The
// zero value is ready to use; a Scratch serves one placement at a time, so
// concurrent placements each need their own, one per goroutine (or from
// the caller's sync.Pool).
type Scratch struct {
	q      query
	totals totalQueue
}

// PlaceWith is Place with the caller's scratch space.
func (x *Index) PlaceWith(s *Scratch, job Job) (Plan, error) {
	if err := job.Validate(); err != nil {
		return Plan{}, err
	}
	from := x
	if job.GPUs >= bigJobGPUs && x.big != nil {
		from = x.big // every node that may fit the job, and only they (see Index.big)
	}
	q := from.prepare(&s.q, job)
	fastest, ok := from.fastest(q)
	if !ok {
		if from != x { // the counts are of every node
			q = x.prepare(&s.q, job)
		}
		return Plan{}, x.misfits(q).err(&job)
	}
	top, feasible := from.best(q, &s.totals, fastest)
	plan := Plan{Placements: placements(top)}
	if len(top) < job.Replicas {
		return plan, notEnoughOperators(&job, len(top), feasible)
	}
	return plan, nil
}

// query is a job prepared for the search.
type query struct {
	job      *Job // &copy
	copy     Job
	req      request
	region   uint32
	anyWhere bool // the job names no region
	nowhere  bool // the job names a region no node is in
	origin   [3]float64
	located  bool // the job's origin is known

	// The job's limits as the hot data holds them (see hotNode).
	gpus int32 // clamped to an int16
	// excluded holds hash16 of each excluded ID, when there are at most
	// maxExcludedHashes of them (see verdict).
	excluded              []uint16
	vram, tflops, ceiling uint32
	region16              uint16

	// For totalAtMost, set by best: each scorer's share of the Total as a
	// float64 function of the attribute, per unit.
	perTFLOPS, perRel, perBid, perLatency float64
	fastest                               uint64
	scoreCeiling                          uint32 // where the latency score reaches 0
	// For relBidAtMost: the weights of a box's relBid, best record and
	// lowest bid in its second bound, and perBid times the price ceiling.
	pairedRelBid, pairedRel, pairedBid, perCeiling float64
	// For rttAtMost: the weights of a box's relBidRTT, best record, lowest
	// bid and least RTT in its second bound, and the latency score's
	// weight (perLatency times the score's ceiling).
	rttRelBid, rttRel, rttBid, rttRTT, latencyWeight float64

	// The search's working space, kept in the Scratch between placements.
	heap  heap
	top   []ranked
	cand  candidate
	roots [2]int32
}

// prepare readies q, a Scratch's, for job.
func (x *Index) prepare(q *query, j Job) *query {
	exclude := q.req.exclude[:0]
	*q = query{copy: j, heap: heap{q.heap.items[:0]}, top: q.top[:0], excluded: q.excluded[:0], anyWhere: j.Region == "", gpus: int32(clamp16(j.GPUs)),
		vram: saturate(j.VRAMMiB), tflops: saturate(j.MinTFLOPSMilli), ceiling: saturate(j.MaxPricePerHourUomni)}
	job := &q.copy
	q.job, q.req = job, request{job: job, exclude: exclude}
	if len(job.Exclude) > 0 {
		q.req.exclude = append(exclude, job.Exclude...)
		slices.Sort(q.req.exclude)
		q.req.exclude = slices.Compact(q.req.exclude)
		if len(q.req.exclude) <= maxExcludedHashes {
			for _, id := range q.req.exclude {
				q.excluded = append(q.excluded, hash16(id))
			}
		}
	}
	if !q.anyWhere {
		var known bool
		q.region, known = x.regions[job.Region]
		q.nowhere = !known
		q.region16 = uint16(min(q.region, manyRegions))
	}
	if job.Origin.Known() {
		q.origin, q.located = unitVector(job.Origin), true
	}
	return q
}

// admits reports whether box b may hold a node that meets the job's
// limits other than latency.
func (q *query) admits(b *box) bool {
	if b.has&hasNodes == 0 || b.maxFree < q.gpus || b.maxVRAM < q.vram || b.maxT < q.tflops || b.minPrice > q.ceiling {
		return false
	}
	return q.anyWhere || (!q.nowhere && q.region16 >= b.minRegion && q.region16 <= b.maxRegion)
}

// reaches reports whether a node with this least latency may meet the
// job's latency ceiling.
func (q *query) reaches(latency uint32, known bool) bool {
	c := q.job.MaxLatencyMicros
	return c == 0 || (known && latency <= c)
}

// latencyFloor returns the least latency a node in b may have, and false
// when no node in b has a latency the job can know.
func (q *query) latencyFloor(b *box) (uint32, bool) {
	lat, known := b.rttFloor()
	if q.located && b.has&hasLocated != 0 {
		lat, known = min(lat, latencyAtLeast(q.nearest(&b.spot))), true
	}
	return lat, known
}

// rttFloor returns the least measured RTT of a node in b, and false when
// no node in b has one.
func (b *box) rttFloor() (uint32, bool) {
	if b.has&hasRTT != 0 {
		return b.minRTT, true
	}
	return math.MaxUint32, false
}

// fits is admits for one node: the checkers make the final call.
func (q *query) fits(h *hotNode) bool {
	return h.online && int32(h.free) >= q.gpus && h.vram >= q.vram && h.tflops >= q.tflops && h.price <= q.ceiling &&
		(q.anyWhere || (!q.nowhere && (h.region == q.region16 || h.region == manyRegions)))
}

// latencyAtLeast is a lower bound on the estimated latency from the job's
// origin to the point whose unit vector is v.
func (q *query) latencyAtLeast(v [3]float32) uint32 {
	return latencyAtLeast(angleAtLeast(dot(q.origin, v)))
}

// setFastest prepares totalAtMost for the fastest feasible node's TFLOPS.
//
// A node's Total is Σ wᵢ·sᵢ/10000 rounded down, each score sᵢ itself a
// share rounded down: at most Σ wᵢ·fᵢ, fᵢ the unrounded fraction (TFLOPS
// over the fastest's, the unspent share of the price ceiling, ...). That
// sum, in float64, is off by far less than the 10⁻⁶ totalAtMost adds before
// rounding down, so totalAtMost is never below the Total the scorers give.
func (q *query) setFastest(fastest uint64, w Weights) {
	q.fastest = fastest
	if fastest > 0 {
		q.perTFLOPS = float64(w.Compute) / float64(fastest)
	}
	q.perRel = float64(w.Reliability) / BasisPoints
	q.perBid = float64(w.Price) / float64(q.job.MaxPricePerHourUomni)
	q.scoreCeiling = q.job.MaxLatencyMicros
	if q.scoreCeiling == 0 {
		q.scoreCeiling = DefaultLatencyCeilingMicros
	}
	q.perLatency = float64(w.Latency) / float64(q.scoreCeiling)
	q.perCeiling = q.perBid * float64(q.job.MaxPricePerHourUomni)
	rb := relBidWeightsOf(w)
	switch {
	case rb.perBid == 0: // no price weight: the second bound is the first
		q.pairedRel, q.pairedBid = q.perRel, -q.perBid
	case q.perBid >= rb.perBid:
		q.pairedRelBid, q.pairedBid = 1, -(q.perBid - rb.perBid)
	default:
		k := q.perBid / rb.perBid
		q.pairedRelBid, q.pairedRel = k, (1-k)*rb.perRel
	}
	// The most of relBidRTT that fits within the job's own weights: the
	// least ratio of a job's weight to relBidRTT's, over those relBidRTT
	// has (none: k stays 0, and the second bound is the first).
	k := math.Inf(1)
	for _, r := range [...][2]float64{{q.perRel, rb.perRel}, {q.perBid, rb.perBid}, {q.perLatency, rb.perRTT}} {
		if r[1] > 0 {
			k = min(k, r[0]/r[1])
		}
	}
	if math.IsInf(k, 1) {
		k = 0
	}
	q.rttRelBid = k
	q.rttRel, q.rttBid, q.rttRTT = q.perRel-k*rb.perRel, q.perBid-k*rb.perBid, q.perLatency-k*rb.perRTT
	q.latencyWeight = q.perLatency * float64(q.scoreCeiling)
}

// relBidAtMost bounds the reliability and price parts of the Total of
// every node of an admitted box b (whose lowest bid is at most the job's
// ceiling C) that the job may be placed on (whose bid is at most C):
// perRel·rel + perBid·(C − bid). Taking the best record and the lowest bid
// gives one bound; box.relBid, the most of r·rel − c·bid over its nodes
// for relBidWeights r (the job's perRel) and c, another. A job that weighs
// the bid more (perBid ≥ c) has perRel·rel − perBid·bid = (r·rel − c·bid)
// − (perBid − c)·bid, at most relBid − (perBid − c)·(lowest bid); one that
// weighs it less, with k = perBid/c < 1, has k·(r·rel − c·bid) + (1 −
// k)·r·rel, at most k·relBid + (1 − k)·r·(best record). Neither exceeds
// the first, and both are exact when one node has both the box's best
// record and its lowest bid. (setFastest sets the weights; the float64
// arithmetic is off by far less than totalAtMost's 10⁻⁶.)
func (q *query) relBidAtMost(b *box) float64 {
	rel, bid := float64(b.maxRel), float64(b.minPrice)
	corner := q.perRel*rel - q.perBid*bid
	paired := q.pairedRelBid*float64(b.relBid) + q.pairedRel*rel + q.pairedBid*bid
	return q.perCeiling + min(corner, paired)
}

// rttAtMost bounds the reliability, price and latency parts of the Total
// of every node without a position (whose latency is its measured RTT, or
// unknown) in an admitted box b that the job may be placed on, as
// relBidAtMost does the first two: perRel·rel + perBid·(C − bid) +
// perLatency·(L − rtt), L the latency score's ceiling, is at most
// latencyWeight (perLatency·L) + perCeiling + perRel·rel − perBid·bid −
// perLatency·z, for z = rttCapped(rtt). (A node the job may be placed on
// scores perLatency·(L − rtt) when its RTT is under L and 0 otherwise. A
// job with a latency ceiling has L at it, and places only nodes with an
// RTT of at most L, which z does not exceed; a job without one has L at
// the default, where z is min(rtt, L), and an unknown latency scores 0 as
// z = L does; a ceiling over the default leaves z at most the RTT and
// below L.) The corner bound takes the best record, the lowest bid and
// the least z; box.relBidRTT,
// the most of r·rel − c·bid − l·z for relBidWeights r, c and l, gives
// another: with k the least of perRel/r, perBid/c and perLatency/l, the
// job's sum is k·(r·rel − c·bid − l·z) plus what is left of each weight,
// none negative, times its attribute, at most k·relBidRTT + (perRel −
// k·r)·(best record) − (perBid − k·c)·(lowest bid) − (perLatency − k·l)·(least
// z). setFastest sets the weights; the float64 arithmetic is off by far
// less than totalAtMost's 10⁻⁶.
func (q *query) rttAtMost(b *box) float64 {
	rel, bid, z := float64(b.maxRel), float64(b.minPrice), float64(rttCapped(b.minRTT))
	corner := q.perRel*rel - q.perBid*bid - q.perLatency*z
	paired := q.rttRelBid*float64(b.relBidRTT) + q.rttRel*rel - q.rttBid*bid - q.rttRTT*z
	return q.latencyWeight + q.perCeiling + min(corner, paired)
}

// partAtMost bounds the part of the Total of a node with at most these
// (saturated) TFLOPS and reliability score and at least this (saturated)
// bid that is not latency's, unrounded, for totalAtMost.
func (q *query) partAtMost(tflops uint32, rel uint16, bid uint32) float64 {
	ceiling := q.job.MaxPricePerHourUomni
	return q.perTFLOPS*float64(min(widen(tflops), q.fastest)) +
		q.perRel*float64(rel) +
		q.perBid*float64(ceiling-min(uint64(bid), ceiling))
}

// totalAtMost bounds the Total of a node whose other scores are bounded by
// part (partAtMost) and whose latency, when known, is at least latency.
func (q *query) totalAtMost(part float64, latency uint32, latencyKnown bool) uint32 {
	if latencyKnown && latency < q.scoreCeiling {
		part += q.perLatency * float64(q.scoreCeiling-latency)
	}
	return uint32(part + 1e-6)
}

// verdict runs the checkers on slot s, as Place's filter does. When its
// hot data is exact and no excluded ID has its ID's hash, fits is every
// checker but latency's, on the node's own values, and the latency is
// taken from the hot data as checkLatency takes it from the Node: such a
// verdict reads no Node, each a cache miss or two (the search's callers
// have just read the hot data).
func (x *Index) verdict(q *query, s int32) (feasible, bool) {
	if h := &x.hot[s]; h.exact() && len(q.excluded) == len(q.req.exclude) && !slices.Contains(q.excluded, h.idHash) {
		if !q.fits(h) {
			return feasible{}, false
		}
		f := feasible{index: int(s)}
		f.latency, f.latencyKnown = latencyFrom(q.job.Origin, h.rtt, h.loc)
		if latencyVerdict(q.job.MaxLatencyMicros, f.latency, f.latencyKnown) != feasibleNode {
			return feasible{}, false
		}
		return f, true
	}
	c := &q.cand
	*c = candidate{node: &x.nodes[s]}
	for _, check := range x.checkers {
		if check(&q.req, c) != feasibleNode {
			return feasible{}, false
		}
	}
	return feasible{index: int(s), latency: c.latency, latencyKnown: c.latencyKnown}, true
}

// maxExcludedHashes is the most excluded IDs a job may name for verdict
// to look for their hashes; a job naming more has every verdict run by
// the checkers.
const maxExcludedHashes = 16

// tflopsOf returns slot s's TFLOPS, from its hot data when that is exact.
func (x *Index) tflopsOf(s int32) uint64 {
	if h := &x.hot[s]; h.exact() {
		return uint64(h.tflops)
	}
	return x.nodes[s].TFLOPSMilli
}

// score is the scorers' verdict on feasible slot s, from its hot data
// when that is exact (rel is what reliabilityScore gives), as score gives
// it from the Node.
func (x *Index) score(q *query, s int32, f feasible) Scores {
	h := &x.hot[s]
	if !h.exact() {
		return score(q.job, &x.nodes[s], f, q.fastest, x.w)
	}
	return scoreOf(q.job, uint64(h.tflops), uint32(h.rel), uint64(h.price), f, q.fastest, x.w)
}

// roots returns the main tree's root and the overflow tree's, where they
// exist.
func (x *Index) roots(q *query) []int32 {
	r := q.roots[:0]
	if x.mainEnd > 0 {
		r = append(r, 0)
	}
	if x.overflowRoot >= 0 {
		r = append(r, x.overflowRoot)
	}
	return r
}

// fastest returns the most TFLOPS of a feasible node, if any is.
func (x *Index) fastest(q *query) (best uint64, found bool) {
	// faster reports whether box c may hold a feasible node faster than
	// any found.
	faster := func(c int32) bool {
		b := &x.tree[c]
		if (found && widen(b.maxT) <= best) || !q.admits(b) {
			return false
		}
		return q.job.MaxLatencyMicros == 0 || q.reaches(q.latencyFloor(b))
	}
	h := &q.heap
	h.reset()
	for _, r := range x.roots(q) {
		if faster(r) {
			h.push(r, x.tree[r].maxT)
		}
	}
	for h.len() > 0 {
		i, key := h.pop()
		if found && widen(key) <= best {
			break
		}
		// Go down the faster side while it is the best box there is,
		// leaving the other in the heap.
		for !x.tree[i].leaf() {
			l, r := x.tree[i].kids, x.tree[i].kids+1
			if x.tree[r].maxT > x.tree[l].maxT {
				l, r = r, l
			}
			if faster(r) {
				h.push(r, x.tree[r].maxT)
			}
			if !faster(l) {
				i = -1
				break
			}
			if k := x.tree[l].maxT; h.len() > 0 && h.top() > k {
				h.push(l, k)
				i = -1
				break
			}
			i = l
		}
		if i < 0 {
			continue
		}
		sp := x.tree[i].slots()
		for s := sp.lo; s < sp.hi; s++ {
			if n := &x.hot[s]; (!found || widen(n.tflops) > best) && q.fits(n) {
				if _, ok := x.verdict(q, s); ok {
					if t := x.tflopsOf(s); !found || t > best {
						best, found = t, true
					}
				}
			}
		}
	}
	return best, found
}

// best returns the placements and, when there are fewer than the job's
// replicas, how many nodes are feasible. (Only then is it needed, for the
// error; and only then is it exact: until the list is full nothing is
// pruned but boxes without a feasible node.)
func (x *Index) best(q *query, h *totalQueue, fastest uint64) (placed []ranked, feasibleNodes int) {
	q.setFastest(fastest, x.w)
	s := search{x: x, q: q, top: topList{want: q.job.Replicas, entries: q.top[:0]}, floor: -1}
	defer func() { q.top = s.top.entries[:0] }()
	h.reset()
	for _, r := range x.roots(q) {
		if t, ok := s.bound(r); ok {
			h.push(r, t)
		}
	}
	for h.len() > 0 {
		i, key := h.pop()
		if b := &x.tree[i]; s.beaten(key, b.minKey, b.minID) {
			if int64(key) < s.floor {
				break // every box left is bounded by key
			}
			continue
		}
		// Go down the better side while it is the best box there is.
		for !x.tree[i].leaf() {
			l, r := x.tree[i].kids, x.tree[i].kids+1
			lt, lok := s.bound(l)
			rt, rok := s.bound(r)
			if !lok || (rok && rt > lt) {
				l, r, lt, lok, rt, rok = r, l, rt, rok, lt, lok
			}
			if rok {
				h.push(r, rt)
			}
			if !lok {
				i = -1
				break
			}
			if h.len() > 0 && h.top() > lt {
				h.push(l, lt)
				i = -1
				break
			}
			i = l
		}
		if i < 0 {
			continue
		}
		s.leaf(i)
	}
	return s.top.entries, s.feasible
}

// search is best's state: the list so far and what it takes to enter it.
type search struct {
	x        *Index
	q        *query
	top      topList
	floor    int64 // the last entry's Total once the list is full, -1 before
	feasible int   // nodes found feasible
}

// beaten reports whether nothing with a Total of at most bound, and no ID
// before slot minID's (whose key is minKey), can enter the list.
func (s *search) beaten(bound, minKey uint32, minID int32) bool {
	if int64(bound) != s.floor {
		return int64(bound) < s.floor // never while the list is not full
	}
	return s.notBefore(minKey, minID)
}

// beatenNode is beaten for the node in slot, whose ID key is read only
// on a tie.
func (s *search) beatenNode(bound uint32, slot int32) bool {
	if int64(bound) != s.floor {
		return int64(bound) < s.floor
	}
	return s.notBefore(s.x.idKey[slot], slot)
}

// notBefore reports whether slot's ID, whose key is key, is not before
// the last entry's.
func (s *search) notBefore(key uint32, slot int32) bool {
	t := int32(s.top.last().index)
	return s.x.idNotBefore(key, slot, s.x.idKey[t], t)
}

// bound returns the most a node in box i may score, and false when no
// node in it can be placed.
func (s *search) bound(i int32) (uint32, bool) {
	q, b := s.q, &s.x.tree[i]
	if !q.admits(b) {
		return 0, false
	}
	compute := q.perTFLOPS * float64(min(widen(b.maxT), q.fastest))
	part := compute + q.relBidAtMost(b)
	// latencyFloor, but bounded first by the least latency a located node
	// may have, at the job's origin: the box is often beaten without the
	// trigonometry of its circle.
	rtt, measured := b.rttFloor()
	lat, known := rtt, measured
	var near uint32 // the located nodes' least latency, when the job can know it
	if q.located && b.has&hasLocated != 0 {
		if s.beaten(q.totalAtMost(part, min(lat, LastMileMicros), true), b.minKey, b.minID) {
			return 0, false
		}
		near = latencyAtLeast(q.nearest(&b.spot))
		lat, known = min(lat, near), true
	}
	if !q.reaches(lat, known) {
		return 0, false
	}
	t := q.totalAtMost(part, lat, known)
	if measured {
		// The least RTT, the best record and the lowest bid are seldom
		// one node's. So the nodes whose latency is an RTT (or unknown)
		// are bounded apart, with record, bid and RTT together
		// (rttAtMost), and the located ones at their own least latency,
		// rather than all at the least of both. Without this the
		// market's three-replica jobs bounded a third more boxes.
		var apart uint32
		if q.reaches(rtt, true) {
			apart = uint32(compute + q.rttAtMost(b) + 1e-6)
		}
		switch {
		case b.has&hasLocated == 0:
		case q.located:
			if q.reaches(near, true) {
				apart = max(apart, q.totalAtMost(part, near, true))
			}
		case q.job.MaxLatencyMicros == 0: // their latency is unknown to the job, and scores 0
			apart = max(apart, q.totalAtMost(part, 0, false))
		}
		t = min(t, apart)
	}
	return t, !s.beaten(t, b.minKey, b.minID)
}

// leaf offers the feasible nodes of leaf i to the list. Each node is
// first bounded as a box of one, which leaves only a located node's
// latency to a bound (the estimate is trigonometry, and the checkers
// compute it exactly for the few nodes that pass).
func (s *search) leaf(i int32) {
	x, q := s.x, s.q
	sp := x.tree[i].slots()
	for slot := sp.lo; slot < sp.hi; slot++ {
		n := &x.hot[slot]
		if !q.fits(n) {
			continue
		}
		if s.floor >= 0 {
			var t uint32
			part := q.partAtMost(n.tflops, n.rel, n.price)
			switch {
			case n.rtt > 0:
				t = q.totalAtMost(part, n.rtt, true)
			case n.located && q.located:
				// At the origin first, as bound does a box: most
				// nodes are beaten without the trigonometry.
				if s.beatenNode(q.totalAtMost(part, LastMileMicros, true), slot) {
					continue
				}
				t = q.totalAtMost(part, q.latencyAtLeast(n.v), true)
			default:
				t = q.totalAtMost(part, 0, false)
			}
			if s.beatenNode(t, slot) {
				continue
			}
		}
		f, ok := x.verdict(q, slot)
		if !ok {
			continue
		}
		s.feasible++
		s.top.offer(ranked{node: &x.nodes[slot], index: int(slot), scores: x.score(q, slot, f), opHash: n.opHash})
		if s.top.full() {
			s.floor = int64(s.top.last().scores.Total)
		}
	}
}

// misfits counts, for a job that fits nowhere, the nodes failing each
// criterion, from the index's counters; only nodes beyond a latency
// ceiling by the distance estimate need a tree (geoTree).
func (x *Index) misfits(q *query) *misfits {
	j := q.job
	m := &misfits{nodes: x.online}
	for _, id := range q.req.exclude { // looked up only here: a million IDs' map is far from the cache
		if s, ok := x.slotOf[id]; ok && x.hot[s].online {
			m.counts[rejectExcluded]++
		}
	}
	m.counts[rejectFreeGPUs] = x.free.below(uint64(j.GPUs))
	m.counts[rejectVRAM] = x.vram.below(j.VRAMMiB)
	m.counts[rejectTFLOPS] = x.tflops.below(j.MinTFLOPSMilli)
	m.counts[rejectPrice] = x.price.above(j.MaxPricePerHourUomni)
	if !q.anyWhere {
		m.counts[rejectRegion] = x.online
		if !q.nowhere {
			m.counts[rejectRegion] -= x.regionCount[q.region]
		}
	}
	if c := j.MaxLatencyMicros; c > 0 {
		m.counts[rejectLatency] = x.rtt.above(uint64(c))
		if q.located {
			m.counts[rejectLatencyUnknown] = x.unplaced
			r := q.ring(c)
			m.counts[rejectLatency] += x.geo.beyond(x, q, &r, 0) + x.geoOverflow.beyond(x, q, &r, 0)
		} else {
			m.counts[rejectLatencyUnknown] = x.online - x.rtt.n
		}
	}
	return m
}

// heap is a max-heap of boxes by key, kept between searches.
type heap struct{ items []heapItem }

type heapItem struct {
	key uint32 // a bound on the Total, or a box's (saturated) TFLOPS
	box int32
}

func (h *heap) reset()      { h.items = h.items[:0] }
func (h *heap) top() uint32 { return h.items[0].key }
func (h *heap) len() int    { return len(h.items) }

func (h *heap) push(box int32, key uint32) {
	h.items = append(h.items, heapItem{key, box})
	a := h.items
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].key >= a[i].key {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *heap) pop() (box int32, key uint32) {
	a := h.items
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(a) {
			break
		}
		if c+1 < len(a) && a[c+1].key > a[c].key {
			c++
		}
		if a[i].key >= a[c].key {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	h.items = a
	return top.box, top.key
}

// totalQueue is a max-priority queue of boxes keyed by a bound on the
// Total, for best. No Total exceeds maxTotal, so the queue keeps a list of
// boxes for each key and a bitmap of the keys that have one, and finds the
// greatest key by the bitmap's highest non-zero word: a push or a pop takes
// a few instructions and none of the comparisons a binary heap makes, which
// the processor cannot predict (they took a tenth of a placement). Boxes
// of one key come out last in, first out; the search does not depend on
// the order of equal keys.
type totalQueue struct {
	last [maxTotal + 1]int32 // by key: 1 + the index in items of the last box pushed with it, 0 for none
	used [maxTotal/64 + 1]uint64
	// No word of used outside [low, high] is non-zero: the keys of one
	// search lie close together, so reset visits a few words.
	low, high int
	n         int
	items     []queued
}

// queued is a box in a totalQueue, and the box pushed before it with its
// key, as 1 + its index in items (0 for none).
type queued struct{ box, below int32 }

// maxTotal is the most any Total can be: every score is at most
// BasisPoints, and the weights sum to BasisPoints.
const maxTotal = BasisPoints

func (h *totalQueue) len() int { return h.n }

// reset empties h, visiting only the keys still used.
func (h *totalQueue) reset() {
	for w := h.low; w <= h.high; w++ {
		for u := h.used[w]; u != 0; u &= u - 1 {
			h.last[w*64+bits.TrailingZeros64(u)] = 0
		}
		h.used[w] = 0
	}
	h.low, h.high, h.n, h.items = len(h.used), 0, 0, h.items[:0]
}

// push queues box with key, taken as maxTotal when above it: no node
// scores more, so the key remains a bound.
func (h *totalQueue) push(box int32, key uint32) {
	k := min(key, maxTotal)
	h.items = append(h.items, queued{box, h.last[k]})
	h.last[k] = int32(len(h.items))
	h.used[k/64] |= 1 << (k % 64)
	h.low, h.high = min(h.low, int(k/64)), max(h.high, int(k/64))
	h.n++
}

// top returns the greatest key queued; h must not be empty.
func (h *totalQueue) top() uint32 {
	for h.used[h.high] == 0 {
		h.high--
	}
	return uint32(h.high*64 + bits.Len64(h.used[h.high]) - 1)
}

// pop takes out a box with the greatest key; h must not be empty.
func (h *totalQueue) pop() (box int32, key uint32) {
	key = h.top()
	it := h.items[h.last[key]-1]
	if h.last[key] = it.below; it.below == 0 {
		h.used[key/64] &^= 1 << (key % 64)
	}
	h.n--
	return it.box, key
}
