package ledger

// txCache remembers decoded, signature-checked txs by hash, evicting the oldest first.
// It holds only pure facts (a signature either verifies or not), so using it cannot make
// two validators disagree.
type txCache struct {
	limit int
	m     map[[32]byte]*Tx // pointers keep the table small enough to stay in cache
	order [][32]byte
}

func newTxCache(limit int) *txCache {
	return &txCache{limit: limit, m: make(map[[32]byte]*Tx, limit)}
}

func (c *txCache) get(h [32]byte) (Tx, bool) {
	if tx, ok := c.m[h]; ok {
		return *tx, true
	}
	return Tx{}, false
}

func (c *txCache) put(h [32]byte, tx Tx) {
	if _, ok := c.m[h]; ok {
		return
	}
	if len(c.order) >= c.limit {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.m[h] = &tx
	c.order = append(c.order, h)
}
