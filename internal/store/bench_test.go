package store

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkWritePath is the Merkle store's own cost per key a block writes: Set, the
// working hash FinalizeBlock reports and the Commit that saves the version, on a tree of
// 20,000 account-sized records of which each block rewrites half (what a block of 5,000
// transfers between 10,000 accounts does). A ledger block cannot stage and commit faster
// than this rate divided by the keys its transactions write.
func BenchmarkWritePath(b *testing.B) {
	for _, backend := range []string{"memdb", "goleveldb"} {
		b.Run(backend, func(b *testing.B) {
			s := OpenMemory()
			if backend == "goleveldb" {
				var err error
				if s, err = Open(b.TempDir()); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			const n, perBlock = 20_000, 10_000
			key := func(i int) []byte { return []byte(fmt.Sprintf("acct/%044d", i*7919%n)) }
			value := make([]byte, 24)
			for i := range n {
				_ = s.Set(key(i), value)
			}
			if _, _, err := s.Commit(); err != nil {
				b.Fatal(err)
			}
			var set, hash, commit time.Duration
			b.ResetTimer()
			for round := range b.N {
				t0 := time.Now()
				for i := range perBlock {
					v := append([]byte{}, value...)
					v[0] = byte(round)
					if err := s.Set(key(2*i+round%2), v); err != nil {
						b.Fatal(err)
					}
				}
				t1 := time.Now()
				s.WorkingHash()
				t2 := time.Now()
				if _, _, err := s.Commit(); err != nil {
					b.Fatal(err)
				}
				set, hash, commit = set+t1.Sub(t0), hash+t2.Sub(t1), commit+time.Since(t2)
			}
			keys := float64(perBlock * b.N)
			b.ReportMetric(keys/(set+hash+commit).Seconds(), "keys/s")
			b.ReportMetric(float64(set.Nanoseconds())/keys/1000, "µs-set/key")
			b.ReportMetric(float64(hash.Nanoseconds())/keys/1000, "µs-hash/key")
			b.ReportMetric(float64(commit.Nanoseconds())/keys/1000, "µs-commit/key")
		})
	}
}
