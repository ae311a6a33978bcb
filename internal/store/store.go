// Package store is the ledger's versioned Merkle state: an IAVL tree (github.com/cosmos/iavl)
// on goleveldb, or in memory for tests and benchmarks. It implements ledger.Store: writes
// stage in the tree's working set, Commit saves them as the next version in one batch, so the
// version (block height) and root hash (app hash) are always persisted together.
//
// Point reads of hot keys are answered from a cache of recent values, since a read that
// walks the tree costs a node-cache lookup per level. Like the ledger above it, a store is
// not safe for concurrent use: consensus serialises every call.
package store

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"

	"github.com/omnisync/omnisync/internal/ledger"
)

// IAVL is a ledger.Store backed by an IAVL tree.
type IAVL struct {
	tree  *iavl.MutableTree
	close func() error
	// view caches the read-only tree of the last saved version (CheckTx and queries read
	// it for every call); viewVersion says which version it is.
	view        immutable
	viewVersion int64
	values      valueCache
	// dirty says the working tree holds writes not yet committed; until then it is the
	// committed version, and committed reads may use the value cache.
	dirty bool
}

var _ ledger.Store = (*IAVL)(nil)

const cacheSize = 100_000

// Open opens (or creates) the store in dir and loads its latest version.
func Open(dir string) (*IAVL, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	db, err := iavldb.NewDB("state", "goleveldb", filepath.Clean(dir))
	if err != nil {
		return nil, fmt.Errorf("open state db in %s: %w", dir, err)
	}
	s, err := load(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.close = db.Close
	return s, nil
}

// OpenMemory returns an empty store that lives in memory.
func OpenMemory() *IAVL {
	s, err := load(iavldb.NewMemDB())
	if err != nil {
		panic(fmt.Sprintf("memory store: %v", err)) // cannot fail on an empty memdb
	}
	s.close = func() error { return nil }
	return s
}

func load(db iavldb.DB) (*IAVL, error) {
	tree := iavl.NewMutableTree(db, cacheSize, true, iavl.NewNopLogger())
	if _, err := tree.Load(); err != nil {
		return nil, fmt.Errorf("load state tree: %w", err)
	}
	return &IAVL{tree: tree}, nil
}

// Close releases the database.
func (s *IAVL) Close() error { return s.close() }

// Get reads the working state. A read that misses the value cache walks the tree, one
// node-cache lookup per level.
func (s *IAVL) Get(key []byte) ([]byte, error) {
	if v, ok := s.values.get(key); ok {
		return v, nil
	}
	v, err := s.tree.Get(key)
	if err != nil {
		return nil, err
	}
	s.values.put(string(key), v)
	return v, nil
}

func (s *IAVL) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	s.dirty = true
	if _, err := s.tree.Set(key, value); err != nil {
		s.values.reset()
		return err
	}
	s.values.put(string(key), value)
	return nil
}

func (s *IAVL) Delete(key []byte) error {
	s.dirty = true
	if _, _, err := s.tree.Remove(key); err != nil {
		s.values.reset()
		return err
	}
	s.values.put(string(key), nil)
	return nil
}

func (s *IAVL) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return iterate(s.tree.Iterator, prefix, fn)
}

func (s *IAVL) WorkingHash() []byte { return s.tree.WorkingHash() }

func (s *IAVL) Commit() ([]byte, int64, error) {
	hash, version, err := s.tree.SaveVersion()
	if err == nil {
		s.dirty = false
	}
	return hash, version, err
}

func (s *IAVL) LastCommit() (int64, []byte) { return s.tree.Version(), s.tree.Hash() }

// Committed returns the last saved version, immune to writes staged after it.
func (s *IAVL) Committed() (ledger.Reader, error) {
	v := s.tree.Version()
	if v == 0 {
		return emptyReader{}, nil
	}
	if s.view.t == nil || s.viewVersion != v {
		t, err := s.tree.GetImmutable(v)
		if err != nil {
			return nil, fmt.Errorf("open version %d: %w", v, err)
		}
		s.view, s.viewVersion = immutable{t}, v
	}
	return committed{s: s, version: v, immutable: s.view}, nil
}

// committed reads a saved version. While nothing is staged over it (between a commit and
// the end of the next block, since the ledger stages a block's writes at its end), the
// working tree is that version, and point reads go through the value cache: CheckTx reads
// the signer's and the recipient's accounts for every transaction it admits.
type committed struct {
	s       *IAVL
	version int64
	immutable
}

func (c committed) Get(key []byte) ([]byte, error) {
	if !c.s.dirty && c.s.tree.Version() == c.version {
		return c.s.Get(key)
	}
	return c.immutable.Get(key)
}

type immutable struct{ t *iavl.ImmutableTree }

func (r immutable) Get(key []byte) ([]byte, error) { return r.t.Get(key) }
func (r immutable) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return iterate(r.t.Iterator, prefix, fn)
}

type emptyReader struct{}

func (emptyReader) Get([]byte) ([]byte, error)                   { return nil, nil }
func (emptyReader) Iterate([]byte, func(k, v []byte) bool) error { return nil }

type iteratorFunc func(start, end []byte, ascending bool) (iavldb.Iterator, error)

func iterate(open iteratorFunc, prefix []byte, fn func(key, value []byte) bool) error {
	it, err := open(prefix, prefixEnd(prefix), true)
	if err != nil {
		return err
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if !fn(it.Key(), it.Value()) {
			break
		}
	}
	return it.Error()
}

// prefixEnd is the first key after every key with the prefix (nil: no upper bound).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte{}, prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// valueCache remembers recently read and written values of the working tree, so the
// ledger's reads of hot keys (accounts, validators) skip the walk from the root, which
// costs a node-cache lookup per level once a commit has detached the in-memory children.
// It keeps two generations and drops the older when the newer fills: a cheap
// approximation of least-recently-used. A nil value records an absent key.
type valueCache struct {
	cur, old map[string][]byte
}

const valueCacheSize = 200_000 // entries per generation

func (c *valueCache) get(key []byte) ([]byte, bool) {
	if v, ok := c.cur[string(key)]; ok {
		return v, true
	}
	if v, ok := c.old[string(key)]; ok {
		c.put(string(key), v)
		return v, true
	}
	return nil, false
}

func (c *valueCache) put(key string, value []byte) {
	if c.cur == nil {
		c.cur = make(map[string][]byte)
	}
	if len(c.cur) >= valueCacheSize {
		c.old, c.cur = c.cur, make(map[string][]byte, valueCacheSize)
	}
	c.cur[key] = value
}

func (c *valueCache) reset() { c.cur, c.old = nil, nil }
