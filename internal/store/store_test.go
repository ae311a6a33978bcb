package store

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
)

func TestCommitPersistsHeightAndHashTogether(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := s.Set([]byte(fmt.Sprintf("k%d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		working := s.WorkingHash()
		hash, v, err := s.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if v != int64(i+1) || !bytes.Equal(hash, working) {
			t.Fatalf("commit %d: version %d, hash %x, working hash was %x", i, v, hash, working)
		}
	}
	_ = s.Set([]byte("uncommitted"), []byte("x"))
	v, hash := s.LastCommit()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v2, hash2 := s2.LastCommit()
	if v2 != v || !bytes.Equal(hash, hash2) {
		t.Fatalf("reopened at %d %x, want %d %x", v2, hash2, v, hash)
	}
	if got, _ := s2.Get([]byte("uncommitted")); got != nil {
		t.Fatal("uncommitted write survived a restart")
	}
}

func TestCommittedViewIgnoresStagedWrites(t *testing.T) {
	s := OpenMemory()
	_ = s.Set([]byte("a/1"), []byte("one"))
	_, _, _ = s.Commit()
	_ = s.Set([]byte("a/1"), []byte("changed"))
	_ = s.Set([]byte("a/2"), []byte("two"))
	view, err := s.Committed()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := view.Get([]byte("a/1")); string(got) != "one" {
		t.Fatalf("committed view sees %q", got)
	}
	var keys []string
	_ = view.Iterate([]byte("a/"), func(k, _ []byte) bool { keys = append(keys, string(k)); return true })
	if len(keys) != 1 {
		t.Fatalf("committed view iterates %v", keys)
	}
}

func TestIteratePrefixIsBoundedAndOrdered(t *testing.T) {
	s := OpenMemory()
	for _, k := range []string{"b/2", "a/9", "b/1", "b\xff", "c/0", "b/10"} {
		_ = s.Set([]byte(k), []byte("v"))
	}
	var got []string
	_ = s.Iterate([]byte("b/"), func(k, _ []byte) bool { got = append(got, string(k)); return true })
	if want := []string{"b/1", "b/10", "b/2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSameWritesSameHash(t *testing.T) {
	a, b := OpenMemory(), OpenMemory()
	for _, s := range []*Store{a, b} {
		for i := 0; i < 100; i++ {
			_ = s.Set([]byte(fmt.Sprintf("key-%03d", i)), []byte(fmt.Sprint(i*i)))
		}
		_ = s.Delete([]byte("key-050"))
	}
	ha, _, _ := a.Commit()
	hb, _, _ := b.Commit()
	if !bytes.Equal(ha, hb) {
		t.Fatal("identical write sequences produced different hashes")
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{"a": "b", "a\xff": "b", "\xff\xff": "", "ab": "ac"} {
		if got := string(prefixEnd([]byte(in))); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}

// A committed view handed out before a block stages its writes keeps reading the
// committed values.
func TestCommittedViewStaysPutWhileABlockStages(t *testing.T) {
	s := OpenMemory()
	_ = s.Set([]byte("a/1"), []byte("one"))
	_, _, _ = s.Commit()
	view, err := s.Committed()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := view.Get([]byte("a/1")); string(got) != "one" {
		t.Fatalf("committed view sees %q", got)
	}
	_ = s.Set([]byte("a/1"), []byte("staged"))
	_ = s.Delete([]byte("a/1"))
	_ = s.Set([]byte("a/1"), []byte("staged again"))
	if got, _ := view.Get([]byte("a/1")); string(got) != "one" {
		t.Fatalf("committed view sees the staged %q", got)
	}
	if got, _ := s.Get([]byte("a/1")); string(got) != "staged again" {
		t.Fatalf("working state reads %q", got)
	}
	_, _, _ = s.Commit()
	view, _ = s.Committed()
	if got, _ := view.Get([]byte("a/1")); string(got) != "staged again" {
		t.Fatalf("new committed view sees %q", got)
	}
}

// The store against a plain map: after any mix of writes, deletions and commits, reads and
// prefix iteration of the working and committed state agree with the model, and the hash
// depends only on the content, not on the history that produced it.
func TestMatchesAMapModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := OpenMemory()
	working, committed := map[string]string{}, map[string]string{}
	want := func(k string) string { return working[k] }
	key := func() string { return fmt.Sprintf("%c/%d", "abc"[rng.IntN(3)], rng.IntN(60)) }
	for step := range 3000 {
		switch r := rng.IntN(10); {
		case r < 6:
			k, v := key(), fmt.Sprint(step)
			_ = s.Set([]byte(k), []byte(v))
			working[k] = v
		case r < 9:
			k := key()
			_ = s.Delete([]byte(k))
			delete(working, k)
		default:
			if _, _, err := s.Commit(); err != nil {
				t.Fatal(err)
			}
			committed = maps.Clone(working)
		}
		if step%50 != 0 {
			continue
		}
		view, _ := s.Committed()
		for _, c := range []struct {
			name string
			r    interface {
				Iterate([]byte, func(k, v []byte) bool) error
			}
			model map[string]string
		}{{"working", s, working}, {"committed", view, committed}} {
			for _, prefix := range []string{"a/", "b/", "c/", "b/1", ""} {
				var got, want []string
				_ = c.r.Iterate([]byte(prefix), func(k, v []byte) bool { got = append(got, string(k)+"="+string(v)); return true })
				for _, k := range slices.Sorted(maps.Keys(c.model)) {
					if strings.HasPrefix(k, prefix) {
						want = append(want, k+"="+c.model[k])
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d: %s iteration of %q = %v, want %v", step, c.name, prefix, got, want)
				}
			}
		}
		k := key()
		if got, _ := s.Get([]byte(k)); string(got) != want(k) || (got != nil) != has(working, k) {
			t.Fatalf("step %d: Get(%s) = %q, want %q", step, k, got, want(k))
		}
		fresh := OpenMemory()
		for k, v := range working {
			_ = fresh.Set([]byte(k), []byte(v))
		}
		if !bytes.Equal(fresh.WorkingHash(), s.WorkingHash()) {
			t.Fatalf("step %d: the hash depends on history, not only on content", step)
		}
	}
}

func has(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// Iteration may stop early, both inside the committed keys and among staged keys past them.
func TestIterateStopsWhenAsked(t *testing.T) {
	s := OpenMemory()
	for _, k := range []string{"p/1", "p/3"} {
		_ = s.Set([]byte(k), []byte("c"))
	}
	_, _, _ = s.Commit()
	for _, k := range []string{"p/0", "p/2", "p/4", "p/5"} {
		_ = s.Set([]byte(k), []byte("s"))
	}
	for limit := 1; limit <= 6; limit++ {
		var got []string
		_ = s.Iterate([]byte("p/"), func(k, _ []byte) bool { got = append(got, string(k)); return len(got) < limit })
		if want := []string{"p/0", "p/1", "p/2", "p/3", "p/4", "p/5"}[:limit]; !slices.Equal(got, want) {
			t.Fatalf("stop after %d: visited %v, want %v", limit, got, want)
		}
	}
}

func TestProofsShowValuesAndAbsence(t *testing.T) {
	s := OpenMemory()
	for i := range 500 {
		_ = s.Set([]byte(fmt.Sprintf("acct/%d", i)), []byte(fmt.Sprint(i)))
	}
	_ = s.Set([]byte("empty"), nil)
	if _, _, err := s.Prove([]byte("acct/1")); err == nil {
		t.Fatal("proved a key while a block was staged")
	}
	root, _, _ := s.Commit()
	for _, k := range []string{"acct/7", "acct/499", "empty", "acct/500", "nothing"} {
		v, p, err := s.Prove([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		if !VerifyProof(root, []byte(k), v, p) {
			t.Fatalf("proof of %s = %q does not verify", k, v)
		}
		if VerifyProof(root, []byte(k), []byte("forged"), p) {
			t.Fatalf("proof of %s verifies a forged value", k)
		}
		if v != nil && VerifyProof(root, []byte(k), nil, p) {
			t.Fatalf("proof of %s verifies its absence", k)
		}
		if len(p.Leaves) > 0 {
			hidden := p
			hidden.Leaves = p.Leaves[1:]
			if VerifyProof(root, []byte(k), v, hidden) && string(p.Leaves[0].Key) != k {
				t.Fatalf("proof of %s verifies with a leaf left out", k)
			}
		}
		tampered := p
		tampered.Siblings = slices.Clone(p.Siblings)
		tampered.Siblings[depth-1][0] ^= 1
		if VerifyProof(root, []byte(k), v, tampered) {
			t.Fatalf("proof of %s verifies with a tampered sibling", k)
		}
	}
}

func TestOpenRefusesDamagedState(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Set([]byte("balance"), []byte("100"))
	if _, _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	db, err := leveldb.OpenFile(filepath.Join(dir, "ledger.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Put([]byte("sbalance"), []byte("1000000"), nil)
	_ = db.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("opened a state whose values do not match its hash: %v", err)
	}
}

func TestOpenRefusesAnIAVLHome(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "state.db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "new home") {
		t.Fatalf("opened an IAVL home: %v", err)
	}
}

// A large block is hashed in background chunks and parallel subtrees, a small one on one
// goroutine; both give the root a store built from the final content gives, also when a key
// is written several times, deleted and written again within and across chunks.
func TestChunkedParallelHashingMatchesContent(t *testing.T) {
	// bulk hashes each block at once, small waits for a hash every parallelMin/2 keys,
	// and early hands off uneven chunks it does not wait for, as the ledger's flushes do.
	bulk, small, early := OpenMemory(), OpenMemory(), OpenMemory()
	const n = 5 * parallelMin
	content := map[string]string{}
	writes := 0
	write := func(k, v string) {
		_ = bulk.Set([]byte(k), []byte(v))
		_ = small.Set([]byte(k), []byte(v))
		early.Stage(k, []byte(v))
		content[k] = v
		if len(content)%(parallelMin/2) == 0 {
			small.WorkingHash()
		}
		if writes++; writes%777 == 0 {
			early.HashStaged()
		}
	}
	remove := func(k string) {
		_ = bulk.Delete([]byte(k))
		_ = small.Delete([]byte(k))
		early.Stage(k, nil)
		delete(content, k)
	}
	for round := range 3 {
		for i := range n {
			write(fmt.Sprintf("acct/%d", (i*7+round)%n), fmt.Sprint(i, round))
			if i%3 == 0 {
				write(fmt.Sprintf("hot/%d", i%5), fmt.Sprint(i)) // rewritten in every chunk
			}
			if i%1000 == 0 {
				remove(fmt.Sprintf("acct/%d", i/2))
			}
			if i%1000 == 500 {
				write(fmt.Sprintf("acct/%d", (i-500)/2), "back")
			}
		}
		remove("acct/5")
		hb, _, _ := bulk.Commit()
		hs, _, _ := small.Commit()
		he, _, _ := early.Commit()
		fresh := OpenMemory()
		for k, v := range content {
			_ = fresh.Set([]byte(k), []byte(v))
		}
		if hf := fresh.WorkingHash(); !bytes.Equal(hb, hf) || !bytes.Equal(hs, hf) || !bytes.Equal(he, hf) {
			t.Fatalf("round %d: bulk root %x, stepwise root %x, early root %x, content root %x", round, hb, hs, he, hf)
		}
	}
}
