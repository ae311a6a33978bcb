package store

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// The state's commitment is a Merkle tree of fixed depth over key buckets:
//
//	leaf(k, v)   = sha256(0x00 || uvarint(len k) || k || v)
//	bucket(b)    = sha256(0x01 || leaf... in key order), or 32 zero bytes when b is empty
//	node(l, r)   = sha256(0x02 || l || r), or 32 zero bytes when both are zero
//	root         = the node above all 2^depth buckets; the app hash
//
// A key lives in bucket sha256(key)[:2]. A block's writes change only the buckets they
// touch and the paths above them, and each changed bucket is rebuilt once per hash, so the
// cost per written key is two small hashes, a share of a bucket rebuild and a share of a
// 16-level path: a few microseconds, where an IAVL tree costs about twenty (see
// docs/design-notes.md). A proof is every key and value of the key's bucket and the sibling
// hashes up to the root (proof.go).
const (
	depth      = 16
	numBuckets = 1 << depth
)

var zeroHash [32]byte

// leafEntry is one key of a bucket and its leaf hash.
type leafEntry struct {
	key  string
	leaf [32]byte
}

// merkle is the tree of the working state, brought up to date by apply.
type merkle struct {
	buckets [][]leafEntry
	nodes   [][32]byte // heap order: nodes[1] is the root, nodes[numBuckets+b] bucket b
}

// write is a key's new value; a nil value deletes it.
type write struct {
	key   string
	value []byte
}

func newMerkle() *merkle {
	return &merkle{
		buckets: make([][]leafEntry, numBuckets),
		nodes:   make([][32]byte, 2*numBuckets),
	}
}

func bucketOf(key string) int {
	var small [128]byte // []byte(key) of a key over 32 bytes (most) was an allocation per write
	h := sha256.Sum256(append(small[:0], key...))
	return int(binary.BigEndian.Uint16(h[:2]))
}

func leafHash(key string, value []byte) [32]byte {
	var small [256]byte
	buf := small[:0]
	if n := 1 + binary.MaxVarintLen64 + len(key) + len(value); n > len(small) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, 0x00)
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	buf = append(buf, value...)
	return sha256.Sum256(buf)
}

func bucketHash(entries []leafEntry) [32]byte {
	if len(entries) == 0 {
		return zeroHash
	}
	var small [1 + 7*32]byte // most buckets hold a key or two
	buf := small[:0]
	if n := 1 + 32*len(entries); n > len(small) {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, 0x01)
	for i := range entries {
		buf = append(buf, entries[i].leaf[:]...)
	}
	return sha256.Sum256(buf)
}

func nodeHash(l, r [32]byte) [32]byte {
	if l == zeroHash && r == zeroHash {
		return zeroHash
	}
	var buf [65]byte
	buf[0] = 0x02
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

func (m *merkle) root() []byte {
	r := m.nodes[1]
	return r[:]
}

// change is a key's new leaf, or its removal; seq orders the writes to one key.
type change struct {
	key     string
	bucket  int
	seq     int
	leaf    [32]byte
	deleted bool
}

// apply folds writes, in order, into the tree. The work splits by bucket range into
// independent subtrees, hashed in parallel (the result does not depend on how it is
// split): in each, the changed buckets are merged once, then the paths above them are
// recomputed level by level.
func (m *merkle) apply(writes []write) {
	if len(writes) == 0 {
		return
	}
	parts := 1
	if len(writes) >= parallelMin {
		parts = min(runtime.GOMAXPROCS(0), maxParts)
		for parts&(parts-1) != 0 {
			parts-- // a power of two, so each part is one subtree
		}
	}
	// Hash every change, in parallel over slices of the writes, then hand each to its part.
	changes := make([]change, len(writes))
	parallel(parts, func(p int) {
		for i := p * len(writes) / parts; i < (p+1)*len(writes)/parts; i++ {
			w := writes[i]
			c := change{key: w.key, bucket: bucketOf(w.key), seq: i, deleted: w.value == nil}
			if !c.deleted {
				c.leaf = leafHash(w.key, w.value)
			}
			changes[i] = c
		}
	})
	// Each part's changes are a window of one array, sized by a count first: slices of
	// their own, grown by doubling as they were appended to, took more bytes than the
	// changes themselves.
	perPart := numBuckets / parts
	byPart := make([][]change, parts)
	if parts == 1 {
		byPart[0] = changes // sorted in place below; nothing else reads changes
	} else {
		var counts [maxParts]int
		for _, c := range changes {
			counts[c.bucket/perPart]++
		}
		all, start := make([]change, len(changes)), 0
		for p := range parts {
			byPart[p] = all[start : start : start+counts[p]]
			start += counts[p]
		}
		for _, c := range changes {
			p := c.bucket / perPart
			byPart[p] = append(byPart[p], c)
		}
	}
	parallel(parts, func(p int) {
		part := byPart[p]
		slices.SortFunc(part, func(x, y change) int {
			if x.bucket != y.bucket {
				return x.bucket - y.bucket
			}
			if c := strings.Compare(x.key, y.key); c != 0 {
				return c
			}
			return y.seq - x.seq // the latest write to a key first
		})
		// Of the writes to one key only the latest counts.
		part = slices.CompactFunc(part, func(x, y change) bool { return x.key == y.key })
		m.update(part, parts)
	})
	for i := numBuckets / perPart; i > 1; i /= 2 {
		for p := i / 2; p < i; p++ {
			m.nodes[p] = nodeHash(m.nodes[2*p], m.nodes[2*p+1])
		}
	}
}

// parallelMin is the number of changed keys below which hashing stays on one goroutine,
// and maxParts the most subtrees hashed at once.
const parallelMin, maxParts = 2048, 8

func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

// update merges changes sorted by bucket and key into their buckets and rehashes the
// paths above them up to the root of their subtree, one of the parts nodes below the root
// (nodes parts to 2*parts-1).
func (m *merkle) update(changes []change, parts int) {
	var dirty []int
	for len(changes) > 0 {
		b := changes[0].bucket
		n := 1
		for n < len(changes) && changes[n].bucket == b {
			n++
		}
		m.buckets[b] = merge(m.buckets[b], changes[:n])
		m.nodes[numBuckets+b] = bucketHash(m.buckets[b])
		dirty = append(dirty, numBuckets+b)
		changes = changes[n:]
	}
	for len(dirty) > 0 && dirty[0] >= 2*parts {
		parents := dirty[:0]
		for _, i := range dirty {
			p := i / 2
			if len(parents) > 0 && parents[len(parents)-1] == p {
				continue
			}
			parents = append(parents, p)
			m.nodes[p] = nodeHash(m.nodes[2*p], m.nodes[2*p+1])
		}
		dirty = parents
	}
}

// merge applies changes sorted by key to a bucket sorted by key in one pass. A change to
// the one key of a bucket, the common case, rewrites its leaf in place.
func merge(bucket []leafEntry, changes []change) []leafEntry {
	if c := changes[0]; len(changes) == 1 && !c.deleted && len(bucket) == 1 && bucket[0].key == c.key {
		bucket[0].leaf = c.leaf
		return bucket
	}
	out := make([]leafEntry, 0, len(bucket)+len(changes))
	i := 0
	for _, c := range changes {
		for i < len(bucket) && bucket[i].key < c.key {
			out = append(out, bucket[i])
			i++
		}
		if i < len(bucket) && bucket[i].key == c.key {
			i++ // replaced or removed
		}
		if !c.deleted {
			out = append(out, leafEntry{key: c.key, leaf: c.leaf})
		}
	}
	return append(out, bucket[i:]...)
}
