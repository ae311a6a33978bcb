// Package store is the ledger's versioned Merkle state: an IAVL tree (github.com/cosmos/iavl)
// on goleveldb, or in memory for tests and benchmarks. It implements ledger.Store: writes
// stage in the tree's working set, Commit saves them as the next version in one batch, so the
// version (block height) and root hash (app hash) are always persisted together.
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

func (s *IAVL) Get(key []byte) ([]byte, error) { return s.tree.Get(key) }

func (s *IAVL) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.tree.Set(key, value)
	return err
}

func (s *IAVL) Delete(key []byte) error {
	_, _, err := s.tree.Remove(key)
	return err
}

func (s *IAVL) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return iterate(s.tree.Iterator, prefix, fn)
}

func (s *IAVL) WorkingHash() []byte { return s.tree.WorkingHash() }

func (s *IAVL) Commit() ([]byte, int64, error) { return s.tree.SaveVersion() }

func (s *IAVL) LastCommit() (int64, []byte) { return s.tree.Version(), s.tree.Hash() }

// Committed returns the last saved version, immune to writes staged after it.
func (s *IAVL) Committed() (ledger.Reader, error) {
	v := s.tree.Version()
	if v == 0 {
		return emptyReader{}, nil
	}
	t, err := s.tree.GetImmutable(v)
	if err != nil {
		return nil, fmt.Errorf("open version %d: %w", v, err)
	}
	return immutable{t}, nil
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
