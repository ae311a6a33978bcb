package ledger

import (
	"sort"
	"strings"
)

// overlay buffers one transaction's writes over a parent, so a transaction that fails
// halfway changes nothing. Flush applies the writes in sorted key order: the Merkle tree's
// shape, and so the app hash, depends on insertion order.
type overlay struct {
	parent interface {
		Reader
		Set(key, value []byte) error
		Delete(key []byte) error
	}
	writes map[string][]byte // nil value = delete
}

func newOverlay(parent interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
}) *overlay {
	return &overlay{parent: parent, writes: map[string][]byte{}}
}

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.writes[string(key)]; ok {
		return v, nil
	}
	return o.parent.Get(key)
}

func (o *overlay) Set(key, value []byte) error {
	o.writes[string(key)] = append([]byte{}, value...)
	return nil
}

func (o *overlay) Delete(key []byte) error {
	o.writes[string(key)] = nil
	return nil
}

// Iterate merges buffered writes with the parent's keys in ascending order.
func (o *overlay) Iterate(prefix []byte, fn func(key, value []byte) bool) error {
	var pending []string
	for k := range o.writes {
		if strings.HasPrefix(k, string(prefix)) {
			pending = append(pending, k)
		}
	}
	sort.Strings(pending)
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

func (o *overlay) flush() error {
	ks := make([]string, 0, len(o.writes))
	for k := range o.writes {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
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
	o.writes = map[string][]byte{}
	return nil
}
