package store

import (
	"bytes"
	"fmt"
	"testing"
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
	for _, s := range []*IAVL{a, b} {
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
// committed values, also for keys it read (through the value cache) while nothing was staged.
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
