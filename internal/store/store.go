// Package store is the ledger's authenticated state. Every key and value is held in
// memory; a fixed-depth Merkle tree over key buckets gives the app hash and proofs (see
// merkle.go); goleveldb makes each commit durable, or nothing does, for tests and
// benchmarks. It implements ledger.Store: writes stage over the committed state, Commit
// applies them and persists them with the version (block height) and root hash (app hash)
// in one atomic batch.
//
// Only the latest version is kept: consensus never reads an older one, and a restarted
// validator that is behind replays blocks instead. Opening a store rebuilds the tree from
// the persisted values and refuses a state whose root is not the recorded app hash. Like the
// ledger above it, a store is not safe for concurrent use: consensus serialises every call.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/btree"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/omnisync/omnisync/internal/ledger"
)

// Store is a ledger.Store held in memory and, when opened on a directory, persisted in
// goleveldb.
type Store struct {
	db *leveldb.DB // nil: in memory only
	// committed is the state of the last commit; order holds its keys sorted, for
	// iteration.
	committed map[string][]byte
	order     *btree.BTreeG[string]
	// staged holds the writes since the last commit (a nil value deletes); stagedTables
	// lists its keys by table, the part of a key up to its first '/' (the ledger's
	// tables), so a scan sorts only the staged keys that can match it.
	staged       map[string][]byte
	stagedTables map[string][]string
	// tree is the Merkle tree of the working state as of the writes handed to the
	// hasher; pending holds the writes since. Chunks of writes are hashed in the
	// background, in order, while the ledger goes on executing; hashing is closed once the
	// last handed-off chunk is in the tree (nil: nothing handed off), and only then may this
	// goroutine touch tree.
	tree    *merkle
	pending []write
	hashing chan struct{}
	version int64
	hash    []byte
	// batch is what Commit hands the database, and dbKey a key of it in the making,
	// each reused from one commit to the next: Write copies the batch, and Put the key,
	// and a batch grown afresh for every block, doubling as it went, was the most the
	// store allocated. The batch stays the size of the largest block's writes; nil
	// before the first commit to a database.
	batch *leveldb.Batch
	dbKey []byte
}

// hashChunk is how many writes collect before they are hashed in the background.
const hashChunk = 4096

var _ ledger.Store = (*Store)(nil)

// Key layout in the database: values under 's', the last commit's version and hash
// under 'm'.
var (
	valuePrefix = []byte{'s'}
	metaKey     = []byte{'m'}
)

// Open opens (or creates) the store in dir and loads its latest version.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		return nil, fmt.Errorf("state in %s was written by the IAVL store of an earlier release, which this one cannot read: start from a new home", dir)
	}
	path := filepath.Join(dir, "ledger.db")
	db, err := leveldb.OpenFile(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	s, err := load(db)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("load state from %s: %w", path, err)
	}
	return s, nil
}

// OpenMemory returns an empty store that lives in memory.
func OpenMemory() *Store { return newStore(nil) }

func newStore(db *leveldb.DB) *Store {
	return &Store{
		db:           db,
		committed:    map[string][]byte{},
		order:        btree.NewG(32, func(a, b string) bool { return a < b }),
		staged:       map[string][]byte{},
		stagedTables: map[string][]string{},
		tree:         newMerkle(),
	}
}

// load reads every value, rebuilds the tree and checks its root against the recorded hash.
func load(db *leveldb.DB) (*Store, error) {
	s := newStore(db)
	meta, err := db.Get(metaKey, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if len(meta) != 8+32 {
		return nil, fmt.Errorf("commit record has %d bytes, want 40", len(meta))
	}
	s.version, s.hash = int64(binary.BigEndian.Uint64(meta)), meta[8:]
	it := db.NewIterator(util.BytesPrefix(valuePrefix), nil)
	for it.Next() {
		k := string(it.Key()[len(valuePrefix):])
		s.committed[k] = slices.Clone(it.Value())
		s.order.ReplaceOrInsert(k)
		s.pending = append(s.pending, write{k, s.committed[k]})
	}
	it.Release()
	if err := it.Error(); err != nil {
		return nil, err
	}
	if root := s.WorkingHash(); string(root) != string(s.hash) {
		return nil, fmt.Errorf("state at height %d hashes to %x, but its commit recorded %x: the database is damaged", s.version, root, s.hash)
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error {
	s.settle()
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Get reads the working state: staged writes over the last commit. The returned slice
// belongs to the store and must not be modified.
func (s *Store) Get(key []byte) ([]byte, error) {
	v, _ := s.value(string(key))
	return v, nil
}

func (s *Store) value(key string) ([]byte, bool) {
	if len(s.staged) > 0 {
		if v, ok := s.staged[key]; ok {
			return v, v != nil
		}
	}
	v, ok := s.committed[key]
	return v, ok
}

// Set stages a write. The store keeps value, which the caller must not modify afterwards.
func (s *Store) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	s.stage(string(key), value)
	return nil
}

// Stage stages a write keyed by a string, without copying the key; a nil value deletes.
// The store keeps value, which the caller must not modify afterwards.
func (s *Store) Stage(key string, value []byte) { s.stage(key, value) }

// Delete stages a removal.
func (s *Store) Delete(key []byte) error {
	s.stage(string(key), nil)
	return nil
}

func (s *Store) stage(key string, value []byte) {
	n := len(s.staged)
	s.staged[key] = value
	if len(s.staged) > n {
		t := tableOf(key)
		s.stagedTables[t] = append(s.stagedTables[t], key)
	}
	if s.pending == nil {
		s.pending = make([]write, 0, hashChunk)
	}
	s.pending = append(s.pending, write{key, value})
	if len(s.pending) >= hashChunk {
		s.handOff()
	}
}

// HashStaged starts hashing the writes staged so far in the background; the ledger calls
// it each time it flushes part of a block.
func (s *Store) HashStaged() { s.handOff() }

// handOff starts hashing the pending writes in the background, after every chunk handed
// off before them.
func (s *Store) handOff() {
	if len(s.pending) == 0 {
		return
	}
	chunk, prev, done := s.pending, s.hashing, make(chan struct{})
	s.pending, s.hashing = nil, done
	go func() {
		if prev != nil {
			<-prev
		}
		s.tree.apply(chunk)
		close(done)
	}()
}

// settle waits until every write is in the tree.
func (s *Store) settle() {
	s.handOff()
	if s.hashing != nil {
		<-s.hashing
		s.hashing = nil
	}
}

// Iterate visits the working state's keys under prefix in order.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	if len(s.staged) == 0 {
		return s.iterateCommitted(prefix, fn)
	}
	p := string(prefix)
	staged := s.stagedUnder(p)
	i := 0
	next := func() (string, bool) {
		if i < len(staged) {
			return staged[i], true
		}
		return "", false
	}
	// emitBefore visits the staged keys before limit (all of them when all is set),
	// skipping deletions, and reports whether fn wants more.
	emitBefore := func(limit string, all bool) bool {
		for k, ok := next(); ok && (all || k < limit); k, ok = next() {
			i++
			if v := s.staged[k]; v != nil && !fn([]byte(k), v) {
				return false
			}
		}
		return true
	}
	more := true
	err := s.iterateCommitted(prefix, func(k, v []byte) bool {
		ks := string(k)
		if more = emitBefore(ks, false); !more {
			return false
		}
		if sk, ok := next(); ok && sk == ks {
			i++
			if v = s.staged[ks]; v == nil {
				return true // deleted
			}
		}
		more = fn(k, v)
		return more
	})
	if err != nil || !more {
		return err
	}
	emitBefore("", true)
	return nil
}

func (s *Store) iterateCommitted(prefix []byte, fn func(key, value []byte) bool) error {
	p := string(prefix)
	visit := func(k string) bool {
		if !strings.HasPrefix(k, p) {
			return false
		}
		return fn([]byte(k), s.committed[k])
	}
	if end := prefixEnd(prefix); end != nil {
		s.order.AscendRange(p, string(end), visit)
	} else {
		s.order.AscendGreaterOrEqual(p, visit)
	}
	return nil
}

// WorkingHash is the root over the working state.
func (s *Store) WorkingHash() []byte {
	s.settle()
	return s.tree.root()
}

// Commit applies the staged writes as the next version and persists them, with the
// version and its hash, in one batch.
func (s *Store) Commit() ([]byte, int64, error) {
	hash := s.WorkingHash()
	version := s.version + 1
	if s.db != nil {
		if s.batch == nil {
			s.batch = new(leveldb.Batch)
		}
		batch := s.batch
		batch.Reset()
		for k, v := range s.staged {
			s.dbKey = append(append(s.dbKey[:0], valuePrefix...), k...)
			if v == nil {
				batch.Delete(s.dbKey)
			} else {
				batch.Put(s.dbKey, v)
			}
		}
		meta := binary.BigEndian.AppendUint64(nil, uint64(version))
		batch.Put(metaKey, append(meta, hash...))
		if err := s.db.Write(batch, nil); err != nil {
			return nil, 0, fmt.Errorf("persist version %d: %w", version, err)
		}
	}
	for k, v := range s.staged {
		if v == nil {
			if _, ok := s.committed[k]; ok {
				delete(s.committed, k)
				s.order.Delete(k)
			}
			continue
		}
		if _, ok := s.committed[k]; !ok {
			s.order.ReplaceOrInsert(k)
		}
		s.committed[k] = v
	}
	clear(s.staged)
	clear(s.stagedTables)
	s.version, s.hash = version, slices.Clone(hash)
	return slices.Clone(hash), version, nil
}

// LastCommit is the version and hash of the last commit.
func (s *Store) LastCommit() (int64, []byte) { return s.version, slices.Clone(s.hash) }

// Committed returns a view of the last commit, which staged writes do not change; it
// follows later commits.
func (s *Store) Committed() (ledger.Reader, error) { return committedView{s}, nil }

type committedView struct{ s *Store }

func (c committedView) Get(key []byte) ([]byte, error) { return c.s.committed[string(key)], nil }
func (c committedView) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return c.s.iterateCommitted(prefix, fn)
}

// ErrStaged is a proof asked for while a block is staged: the tree then covers the working
// state, not the committed one, and only the latest version is kept. Ask again after the
// block commits.
var ErrStaged = errors.New("a block is staged")

// Prove returns key's committed value (nil: absent) and a proof of it under the last
// commit's hash. It needs the working state to be the committed one, so it fails with
// ErrStaged while a block is staged. The values in the proof belong to the store and must
// not be modified.
func (s *Store) Prove(key []byte) ([]byte, Proof, error) {
	if len(s.staged) > 0 {
		return nil, Proof{}, fmt.Errorf("%w over height %d; prove after it commits", ErrStaged, s.version)
	}
	s.settle()
	return s.committed[string(key)], s.tree.prove(string(key), func(k string) []byte { return s.committed[k] }), nil
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

// stagedUnder lists the staged keys with the prefix, sorted.
func (s *Store) stagedUnder(prefix string) []string {
	var out []string
	collect := func(ks []string) {
		for _, k := range ks {
			if strings.HasPrefix(k, prefix) {
				out = append(out, k)
			}
		}
	}
	if i := strings.IndexByte(prefix, '/'); i >= 0 {
		collect(s.stagedTables[prefix[:i+1]])
	} else {
		for t, ks := range s.stagedTables { // a short prefix may begin several tables
			if strings.HasPrefix(t, prefix) {
				collect(ks)
			}
		}
	}
	slices.Sort(out)
	return out
}

func tableOf(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}
