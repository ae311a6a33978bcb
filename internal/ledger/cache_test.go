package ledger

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

// snapshot is everything an overlay shows: each key's value under the prefixes the ledger
// scans, read through the overlay (memoised scans included).
func snapshot(t *testing.T, o *overlay) string {
	t.Helper()
	var out string
	for _, prefix := range []string{"acct/", "val/", "job"} {
		err := o.Iterate([]byte(prefix), func(k, v []byte) bool {
			out += fmt.Sprintf("%s=%s ", k, v)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A transaction that fails after writing new keys, overwriting buffered and stored ones and
// deleting others leaves the block's overlay as it found it: values, scans and the keys it
// would hand the store.
func TestJournalRollbackRestoresTheOverlay(t *testing.T) {
	st := newMemStore()
	for _, k := range []string{"acct/a", "acct/b", "val/x", "job/1"} {
		_ = st.Set([]byte(k), []byte("stored"))
	}
	o := newBlockOverlay(st, 8)
	o.put("acct/c", []byte("buffered"))
	o.put("job/2", nil)
	before := snapshot(t, o) // memoises the small scans
	writes, tables := maps.Clone(o.writes), map[string][]string{}
	for t, ks := range o.tables {
		tables[t] = slices.Clone(ks)
	}

	j := &journal{o: o}
	_ = j.Set([]byte("acct/new"), []byte("1"))
	_ = j.Set([]byte("acct/c"), []byte("2"))
	_ = j.Set([]byte("acct/a"), []byte("3"))
	_ = j.Delete([]byte("val/x"))
	_ = j.Set([]byte("val/y"), []byte("4"))
	_ = j.Set([]byte("acct/new"), []byte("5"))
	_ = j.Delete([]byte("job/2"))
	if during := snapshot(t, o); during == before {
		t.Fatal("the journal's writes did not reach the overlay")
	}
	j.rollback()
	if after := snapshot(t, o); after != before {
		t.Fatalf("after rollback the overlay shows\n%s\nwant\n%s", after, before)
	}
	if !maps.EqualFunc(o.writes, writes, slices.Equal) || !maps.EqualFunc(o.tables, tables, slices.Equal) {
		t.Fatalf("after rollback the overlay holds %v %v, want %v %v", o.writes, o.tables, writes, tables)
	}

	_ = j.Set([]byte("acct/kept"), []byte("6"))
	j.keep()
	j.rollback()
	if got, _ := o.Get([]byte("acct/kept")); string(got) != "6" {
		t.Fatalf("a kept write was undone: %q", got)
	}
}
