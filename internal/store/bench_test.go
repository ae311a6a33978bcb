package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
)

// writer is the write path a block takes through a Merkle store.
type writer interface {
	Set(key, value []byte) error
	WorkingHash() []byte
	Commit() ([]byte, int64, error)
}

// iavlWriter is the baseline: the IAVL v1.2.4 tree the store replaced, as the ledger used it.
type iavlWriter struct{ t *iavl.MutableTree }

func newIAVL(b *testing.B, backend string) iavlWriter {
	db := iavldb.DB(iavldb.NewMemDB())
	if backend == "goleveldb" {
		var err error
		if db, err = iavldb.NewDB("state", "goleveldb", b.TempDir()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
	}
	return iavlWriter{iavl.NewMutableTree(db, 100_000, true, iavl.NewNopLogger())}
}

func (w iavlWriter) Set(k, v []byte) error { _, err := w.t.Set(k, v); return err }
func (w iavlWriter) WorkingHash() []byte   { return w.t.WorkingHash() }
func (w iavlWriter) Commit() ([]byte, int64, error) {
	return w.t.SaveVersion()
}

// writePath is a store's cost per key a block writes: Set, the working hash FinalizeBlock
// reports and the Commit that saves the version, on a state of 20,000 account-sized records
// of which each block rewrites half (what a block of 5,000 transfers between 10,000
// accounts does).
type writePath struct{ set, hash, commit time.Duration }

const benchKeys, benchPerBlock = 20_000, 10_000

func benchKey(i int) []byte { return []byte(fmt.Sprintf("acct/%044d", i*7919%benchKeys)) }

func fill(b *testing.B, w writer) {
	value := make([]byte, 24)
	for i := range benchKeys {
		_ = w.Set(benchKey(i), value)
	}
	if _, _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
}

func (p *writePath) blocks(b *testing.B, w writer, rounds int) {
	value := make([]byte, 24)
	for round := range rounds {
		t0 := time.Now()
		for i := range benchPerBlock {
			v := append([]byte{}, value...)
			v[0] = byte(round)
			if err := w.Set(benchKey(2*i+round%2), v); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		w.WorkingHash()
		t2 := time.Now()
		if _, _, err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		p.set, p.hash, p.commit = p.set+t1.Sub(t0), p.hash+t2.Sub(t1), p.commit+time.Since(t2)
	}
}

func (p writePath) keysPerSecond(rounds int) float64 {
	return float64(benchPerBlock*rounds) / (p.set + p.hash + p.commit).Seconds()
}

// BenchmarkWritePath measures the store's write path and, in the same run, the IAVL tree's
// on the same backend as the baseline; x-iavl is how many times faster the store is.
func BenchmarkWritePath(b *testing.B) {
	for _, backend := range []string{"memdb", "goleveldb"} {
		b.Run(backend, func(b *testing.B) {
			const baselineRounds = 4
			base := newIAVL(b, backend)
			fill(b, base)
			var baseline writePath
			baseline.blocks(b, base, baselineRounds)

			s := OpenMemory()
			if backend == "goleveldb" {
				var err error
				if s, err = Open(b.TempDir()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			fill(b, s)
			var p writePath
			b.ResetTimer()
			p.blocks(b, s, b.N)
			keys := float64(benchPerBlock * b.N)
			b.ReportMetric(p.keysPerSecond(b.N), "keys/s")
			b.ReportMetric(baseline.keysPerSecond(baselineRounds), "iavl-keys/s")
			b.ReportMetric(p.keysPerSecond(b.N)/baseline.keysPerSecond(baselineRounds), "x-iavl")
			b.ReportMetric(float64(p.set.Nanoseconds())/keys/1000, "µs-set/key")
			b.ReportMetric(float64(p.hash.Nanoseconds())/keys/1000, "µs-hash/key")
			b.ReportMetric(float64(p.commit.Nanoseconds())/keys/1000, "µs-commit/key")
		})
	}
}

// BenchmarkCommitBlock is one block's writes committed to goleveldb: 2,000 keys of 200
// bytes, as a busy block of job records leaves.
func BenchmarkCommitBlock(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 200)
	keys := make([][]byte, 2000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "job/%040d", i)
	}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		value[0] = byte(n)
		for _, k := range keys {
			if err := s.Set(k, value); err != nil {
				b.Fatal(err)
			}
		}
		if _, _, err := s.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMerkleApply is a chunk of writes folded into the tree: fewer than parallelMin,
// hashed on one goroutine, and a full hashChunk, split in parts.
func BenchmarkMerkleApply(b *testing.B) {
	for _, n := range []int{1000, hashChunk} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			writes := make([]write, n)
			for i := range writes {
				writes[i] = write{key: fmt.Sprintf("job/%040d", i), value: make([]byte, 200)}
			}
			m := newMerkle()
			b.ReportAllocs()
			for b.Loop() {
				m.apply(writes)
			}
		})
	}
}
