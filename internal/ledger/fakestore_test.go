package ledger

import (
	"crypto/sha256"
	"sort"
	"strings"
)

// memStore is a test fake for Store: a map with a hash over its sorted contents.
type memStore struct {
	working   map[string][]byte
	committed map[string][]byte
	version   int64
	hash      []byte
}

func newMemStore() *memStore {
	return &memStore{working: map[string][]byte{}, committed: map[string][]byte{}}
}

type mapReader map[string][]byte

func (m mapReader) Get(k []byte) ([]byte, error) { return m[string(k)], nil }

func (m mapReader) Iterate(prefix []byte, fn func(k, v []byte) bool) error {
	ks := make([]string, 0)
	for k := range m {
		if strings.HasPrefix(k, string(prefix)) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	for _, k := range ks {
		if !fn([]byte(k), m[k]) {
			break
		}
	}
	return nil
}

func (s *memStore) Get(k []byte) ([]byte, error) { return mapReader(s.working).Get(k) }
func (s *memStore) Iterate(p []byte, fn func(k, v []byte) bool) error {
	return mapReader(s.working).Iterate(p, fn)
}
func (s *memStore) Set(k, v []byte) error { s.working[string(k)] = append([]byte{}, v...); return nil }
func (s *memStore) Delete(k []byte) error { delete(s.working, string(k)); return nil }

func (s *memStore) WorkingHash() []byte {
	h := sha256.New()
	_ = mapReader(s.working).Iterate(nil, func(k, v []byte) bool {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(v)
		h.Write([]byte{0})
		return true
	})
	return h.Sum(nil)
}

func (s *memStore) Commit() ([]byte, int64, error) {
	s.committed = map[string][]byte{}
	for k, v := range s.working {
		s.committed[k] = v
	}
	s.version++
	s.hash = s.WorkingHash()
	return s.hash, s.version, nil
}

func (s *memStore) LastCommit() (int64, []byte) { return s.version, s.hash }
func (s *memStore) Committed() (Reader, error)  { return mapReader(s.committed), nil }
