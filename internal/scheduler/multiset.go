package scheduler

import "slices"

// multiset holds uint64 values and says how many lie below a bound, for the
// Index's no-fit counts (how many nodes have too little VRAM, bid above the
// ceiling, ...). Each distinct value is held once, with its count: nodes
// share a few free-GPU counts, VRAM sizes and TFLOPS ratings, so a
// reservation, which moves a node from one free-GPU count to another,
// changes two counts and moves nothing. The distinct values sit in sorted
// chunks of at most 2×multisetChunk, so adding a new value or removing a
// value's last copy moves at most a chunk; lasts holds each chunk's
// largest value, for finding a value's chunk in one dense array, and a
// Fenwick tree over the chunks' counts counts the values before a chunk:
// all O(multisetChunk + log n).
type multiset struct {
	chunks []countedChunk
	lasts  []uint64 // by chunk: its largest value
	n      int
	sizes  []int // Fenwick tree of the chunks' counts
}

// countedChunk is a run of distinct values, sorted, and how many of each
// the multiset holds (at least one).
type countedChunk struct {
	values []uint64
	counts []int32
}

const multisetChunk = 512

func newMultiset(values []uint64) multiset {
	values = slices.Clone(values)
	slices.Sort(values)
	m := multiset{n: len(values)}
	var c countedChunk
	for k, v := range values {
		if k > 0 && values[k-1] == v {
			c.counts[len(c.counts)-1]++
			continue
		}
		if len(c.values) == multisetChunk {
			m.chunks = append(m.chunks, c)
			c = countedChunk{}
		}
		c.values, c.counts = append(c.values, v), append(c.counts, 1)
	}
	if len(c.values) > 0 {
		m.chunks = append(m.chunks, c)
	}
	m.recount()
	return m
}

// recount rebuilds lasts and the Fenwick tree, after chunks were split or
// dropped.
func (m *multiset) recount() {
	m.lasts = make([]uint64, len(m.chunks))
	m.sizes = make([]int, len(m.chunks)+1)
	for i, c := range m.chunks {
		m.lasts[i] = c.values[len(c.values)-1]
		for _, k := range c.counts {
			m.sizes[i+1] += int(k)
		}
		if j := (i + 1) + (i+1)&-(i+1); j <= len(m.chunks) {
			m.sizes[j] += m.sizes[i+1]
		}
	}
}

// resize adds d to chunk i's count in the Fenwick tree.
func (m *multiset) resize(i, d int) {
	for i++; i < len(m.sizes); i += i & -i {
		m.sizes[i] += d
	}
}

// before counts the values in chunks [0, i).
func (m *multiset) before(i int) int {
	n := 0
	for ; i > 0; i -= i & -i {
		n += m.sizes[i]
	}
	return n
}

// chunkFor is the first chunk whose last value is at least v, or the last
// chunk: the one that holds v if any does, and where v is to go.
func (m *multiset) chunkFor(v uint64) int {
	i, _ := slices.BinarySearch(m.lasts, v)
	return min(i, len(m.chunks)-1)
}

func (m *multiset) add(v uint64) {
	m.n++
	if len(m.chunks) == 0 {
		m.chunks = []countedChunk{{values: []uint64{v}, counts: []int32{1}}}
		m.recount()
		return
	}
	i := m.chunkFor(v)
	c := &m.chunks[i]
	j, found := slices.BinarySearch(c.values, v)
	if found {
		c.counts[j]++
		m.resize(i, 1)
		return
	}
	c.values, c.counts = slices.Insert(c.values, j, v), slices.Insert(c.counts, j, 1)
	m.lasts[i] = c.values[len(c.values)-1]
	if len(c.values) <= 2*multisetChunk {
		m.resize(i, 1)
		return
	}
	half := len(c.values) / 2
	low := countedChunk{slices.Clone(c.values[:half]), slices.Clone(c.counts[:half])}
	high := countedChunk{slices.Clone(c.values[half:]), slices.Clone(c.counts[half:])}
	m.chunks[i] = low
	m.chunks = slices.Insert(m.chunks, i+1, high)
	m.recount()
}

// remove takes one v out; v must be present.
func (m *multiset) remove(v uint64) {
	i := m.chunkFor(v)
	c := &m.chunks[i]
	j, found := slices.BinarySearch(c.values, v)
	if !found {
		panic("scheduler: multiset.remove of a value not held")
	}
	m.n--
	if c.counts[j]--; c.counts[j] > 0 {
		m.resize(i, -1)
		return
	}
	c.values, c.counts = slices.Delete(c.values, j, j+1), slices.Delete(c.counts, j, j+1)
	if len(c.values) == 0 {
		m.chunks = slices.Delete(m.chunks, i, i+1)
		m.recount()
		return
	}
	m.lasts[i] = c.values[len(c.values)-1]
	m.resize(i, -1)
}

// below counts the values less than v.
func (m *multiset) below(v uint64) int {
	if len(m.chunks) == 0 {
		return 0
	}
	i := m.chunkFor(v)
	c := &m.chunks[i]
	j, _ := slices.BinarySearch(c.values, v)
	// Sum the shorter side of j: the chunk's count is the Fenwick tree's.
	if j <= len(c.values)/2 {
		return m.before(i) + sum(c.counts[:j])
	}
	return m.before(i+1) - sum(c.counts[j:])
}

// above counts the values greater than v.
func (m *multiset) above(v uint64) int {
	if v == ^uint64(0) {
		return 0
	}
	return m.n - m.below(v+1)
}

func sum(counts []int32) int {
	n := 0
	for _, k := range counts {
		n += int(k)
	}
	return n
}
