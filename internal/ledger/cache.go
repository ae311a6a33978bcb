package ledger

import (
	"bytes"
	"slices"
	"sort"
	"strings"
)

// kv is a readable, writable view of state: the store, or an overlay over it.
type kv interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
}

// overlay buffers writes over a parent. FinalizeBlock runs a block's transactions over one
// that answers repeated reads and hands the store each key once per flush, with a journal
// per transaction over it, so a transaction that fails halfway changes nothing; CheckTx runs
// each transaction over a scratch overlay it then drops. Flush hands the store each key once; the order does not
// matter, since the store's hash depends only on its content.
type overlay struct {
	parent kv
	writes map[string][]byte // nil value = delete
	// tables lists the written keys by table (a key up to and including its first '/'),
	// so iterating a prefix looks only at the writes that can match it, not at the whole
	// block's.
	tables map[string][]string
	// memo, when not nil, remembers the result of small prefix scans until a key under
	// the prefix is written: every settlement lists the validators to split its fee, and
	// nothing in a block of settlements changes them.
	memo map[string][]pair
}

type pair struct{ k, v []byte }

// memoLimit bounds the scans memoised: larger ones are usually stopped early (due dates).
const memoLimit = 64

func newOverlay(parent kv) *overlay {
	return &overlay{parent: parent, writes: map[string][]byte{}, tables: map[string][]string{}}
}

// newBlockOverlay is the overlay that collects a whole block's writes, sized for about
// size of them.
func newBlockOverlay(parent kv, size int) *overlay {
	return &overlay{
		parent: parent, writes: make(map[string][]byte, size),
		tables: map[string][]string{}, memo: map[string][]pair{},
	}
}

// reset empties the overlay for reuse over parent.
func (o *overlay) reset(parent kv) {
	o.parent = parent
	clear(o.writes)
	clear(o.tables)
	if o.memo != nil {
		clear(o.memo)
	}
}

func tableOf(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.writes[string(key)]; ok {
		return v, nil
	}
	return o.parent.Get(key)
}

func (o *overlay) Set(key, value []byte) error {
	o.put(string(key), append(make([]byte, 0, len(value)), value...))
	return nil
}

func (o *overlay) Delete(key []byte) error {
	o.put(string(key), nil)
	return nil
}

// put records a write and returns the write it replaced, if any; the overlay owns value
// from now on.
func (o *overlay) put(k string, value []byte) (prev []byte, had bool) {
	o.forgetScans(k)
	n := len(o.writes)
	prev, had = o.writes[k]
	o.writes[k] = value
	if len(o.writes) > n {
		t := tableOf(k)
		o.tables[t] = append(o.tables[t], k)
	}
	return prev, had
}

// forgetScans drops the memoised scans a write of k changes.
func (o *overlay) forgetScans(k string) {
	for prefix := range o.memo {
		if strings.HasPrefix(k, prefix) {
			delete(o.memo, prefix)
		}
	}
}

// pending lists the written keys with the prefix, sorted.
func (o *overlay) pending(prefix []byte) []string {
	var out []string
	collect := func(ks []string) {
		for _, k := range ks {
			if strings.HasPrefix(k, string(prefix)) {
				out = append(out, k)
			}
		}
	}
	if i := bytes.IndexByte(prefix, '/'); i >= 0 {
		collect(o.tables[string(prefix[:i+1])])
	} else {
		// A prefix without '/' can match keys of several tables: those whose name it begins.
		for t, ks := range o.tables {
			if strings.HasPrefix(t, string(prefix)) {
				collect(ks)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Iterate merges buffered writes with the parent's keys in ascending order.
func (o *overlay) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	if o.memo == nil {
		return o.iterate(prefix, fn)
	}
	if list, ok := o.memo[string(prefix)]; ok {
		for _, p := range list {
			if !fn(p.k, p.v) {
				break
			}
		}
		return nil
	}
	var list []pair
	small, complete := true, true
	err := o.iterate(prefix, func(k, v []byte) bool {
		if small && len(list) == memoLimit {
			small, list = false, nil
		}
		if small {
			list = append(list, pair{append([]byte(nil), k...), v})
		}
		if !fn(k, v) {
			complete = false
			return false
		}
		return true
	})
	if err == nil && small && complete {
		o.memo[string(prefix)] = list
	}
	return err
}

func (o *overlay) iterate(prefix []byte, fn func(key, value []byte) bool) error {
	pending := o.pending(prefix)
	stopped := false
	emit := func(k string) bool {
		if v := o.writes[k]; v != nil {
			return fn([]byte(k), v)
		}
		return true
	}
	err := o.parent.Iterate(prefix, func(k, v []byte) bool {
		for len(pending) > 0 && pending[0] < string(k) {
			if !emit(pending[0]) {
				stopped = true
				return false
			}
			pending = pending[1:]
		}
		if len(pending) > 0 && pending[0] == string(k) {
			pending = pending[1:]
			if !emit(string(k)) {
				stopped = true
				return false
			}
			return true
		}
		if !fn(k, v) {
			stopped = true
			return false
		}
		return true
	})
	if err != nil || stopped {
		return err
	}
	for _, k := range pending {
		if !emit(k) {
			break
		}
	}
	return nil
}

// flush applies the writes to the parent and empties the overlay. The order of the writes
// does not matter: to another buffer, nor to the store, whose hash depends only on content.
func (o *overlay) flush() error {
	if parent, ok := o.parent.(*overlay); ok {
		// Ownership of the values passes to the parent buffer.
		for _, ks := range o.tables {
			for _, k := range ks {
				parent.put(k, o.writes[k])
			}
		}
		o.reset(parent)
		return nil
	}
	if st, ok := o.parent.(stager); ok {
		for k, v := range o.writes {
			st.Stage(k, v)
		}
		st.HashStaged()
		o.reset(o.parent)
		return nil
	}
	for k := range o.writes {
		var err error
		if v := o.writes[k]; v == nil {
			err = o.parent.Delete([]byte(k))
		} else {
			err = o.parent.Set([]byte(k), v)
		}
		if err != nil {
			return err
		}
	}
	o.reset(o.parent)
	return nil
}

// journal lets one transaction write straight into the block's overlay while it remembers
// how to undo each write, so a transaction that fails halfway changes nothing, without a
// buffer of its own that every read would look through and every success copy out of.
type journal struct {
	o    *overlay
	undo []undoEntry
}

type undoEntry struct {
	key  string
	prev []byte
	had  bool // the overlay held a write for key before
}

func (j *journal) Get(key []byte) ([]byte, error) { return j.o.Get(key) }
func (j *journal) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	return j.o.Iterate(prefix, fn)
}

func (j *journal) Set(key, value []byte) error {
	j.put(string(key), append(make([]byte, 0, len(value)), value...))
	return nil
}

func (j *journal) Delete(key []byte) error {
	j.put(string(key), nil)
	return nil
}

// put records a write and how to undo it; the overlay owns value from now on.
func (j *journal) put(k string, value []byte) {
	prev, had := j.o.put(k, value)
	j.undo = append(j.undo, undoEntry{key: k, prev: prev, had: had})
}

// keep accepts the transaction's writes.
func (j *journal) keep() { j.undo = j.undo[:0] }

// rollback undoes the transaction's writes, newest first.
func (j *journal) rollback() { j.rollbackTo(0) }

// savepoint marks the writes so far; rollbackTo(mark) undoes those made since, newest
// first, so one item of a batch can fail without the others (batch.go).
func (j *journal) savepoint() int { return len(j.undo) }

func (j *journal) rollbackTo(mark int) {
	for i := len(j.undo) - 1; i >= mark; i-- {
		if u := j.undo[i]; u.had {
			j.o.put(u.key, u.prev)
		} else {
			j.o.unput(u.key)
		}
	}
	j.undo = j.undo[:mark]
}

// unput forgets the write of a key the overlay did not hold before the current
// transaction. Undone newest first, it is the last key its table lists.
func (o *overlay) unput(k string) {
	o.forgetScans(k)
	delete(o.writes, k)
	t := tableOf(k)
	ks := o.tables[t]
	if i := len(ks) - 1; i >= 0 && ks[i] == k {
		ks = ks[:i]
	} else {
		ks = slices.DeleteFunc(ks, func(s string) bool { return s == k })
	}
	if len(ks) == 0 {
		delete(o.tables, t)
		return
	}
	o.tables[t] = ks
}
