package scheduler

import "slices"

// multiset holds uint64 values and says how many lie below a bound, for the
// Index's no-fit counts (how many nodes have too little VRAM, bid above the
// ceiling, ...). Values sit in sorted chunks of at most 2×multisetChunk, so
// adding or removing one moves at most a chunk, and a Fenwick tree over the
// chunks' lengths counts the values in the chunks before a bound: both
// O(multisetChunk + log n), well under a microsecond.
type multiset struct {
	chunks [][]uint64 // non-empty, sorted; each chunk's values ≤ the next chunk's
	n      int
	sizes  []int // Fenwick tree of len(chunks[i])
}

const multisetChunk = 512

func newMultiset(values []uint64) multiset {
	values = slices.Clone(values)
	slices.Sort(values)
	m := multiset{n: len(values)}
	for len(values) > 0 {
		k := min(len(values), multisetChunk)
		m.chunks = append(m.chunks, values[:k:k])
		values = values[k:]
	}
	m.recount()
	return m
}

// recount rebuilds the Fenwick tree, after chunks were split or dropped.
func (m *multiset) recount() {
	m.sizes = make([]int, len(m.chunks)+1)
	for i, c := range m.chunks {
		m.sizes[i+1] += len(c)
		if j := (i + 1) + (i+1)&-(i+1); j <= len(m.chunks) {
			m.sizes[j] += m.sizes[i+1]
		}
	}
}

// resize adds d to chunk i's length in the Fenwick tree.
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
	i, _ := slices.BinarySearchFunc(m.chunks, v, func(c []uint64, v uint64) int {
		if c[len(c)-1] < v {
			return -1
		}
		return 1
	})
	return min(i, len(m.chunks)-1)
}

func (m *multiset) add(v uint64) {
	m.n++
	if len(m.chunks) == 0 {
		m.chunks = [][]uint64{{v}}
		m.recount()
		return
	}
	i := m.chunkFor(v)
	c := m.chunks[i]
	j, _ := slices.BinarySearch(c, v)
	c = slices.Insert(c, j, v)
	if len(c) <= 2*multisetChunk {
		m.chunks[i] = c
		m.resize(i, 1)
		return
	}
	half := len(c) / 2
	m.chunks[i] = slices.Clone(c[:half])
	m.chunks = slices.Insert(m.chunks, i+1, slices.Clone(c[half:]))
	m.recount()
}

// remove takes one v out; v must be present.
func (m *multiset) remove(v uint64) {
	i := m.chunkFor(v)
	c := m.chunks[i]
	j, found := slices.BinarySearch(c, v)
	if !found {
		panic("scheduler: multiset.remove of a value not held")
	}
	m.n--
	if c = slices.Delete(c, j, j+1); len(c) == 0 {
		m.chunks = slices.Delete(m.chunks, i, i+1)
		m.recount()
	} else {
		m.chunks[i] = c
		m.resize(i, -1)
	}
}

// below counts the values less than v.
func (m *multiset) below(v uint64) int {
	if len(m.chunks) == 0 {
		return 0
	}
	i := m.chunkFor(v)
	j, _ := slices.BinarySearch(m.chunks[i], v)
	return m.before(i) + j
}

// above counts the values greater than v.
func (m *multiset) above(v uint64) int {
	if v == ^uint64(0) {
		return 0
	}
	return m.n - m.below(v+1)
}
