package chain

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// displacedAfter is how long a tx may stay missing from the index after the account's
// sequence passed it before the signer concludes another tx took its sequence. The index
// trails a commit by moments, not seconds.
const displacedAfter = 3 * time.Second

// watch confirms the blocks of this signer's txs in flight, polling for new heights. It
// owns all chain reads for them and ends when none is in flight (send starts it again).
//
// On every new height it reads the account's committed sequence c. A tx in flight below c
// was carried by a block: it is looked up by hash until found, or, missing for
// displacedAfter, given up as displaced by another tx of this key and sent again. The tx
// at c is looked up once per height: a block may have carried and rejected it (see
// settleLocked). Lookups are per tx, but only for the txs a block can have carried: one
// account query and about one lookup per committed tx.
func (s *Signer) watch() {
	tick := time.NewTicker(s.opts.PollInterval)
	defer tick.Stop()
	var height int64
	var committed uint64
	for range tick.C {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		fresh := false
		if h, err := s.client.Height(ctx); err == nil && h != height {
			if acc, err := s.client.Account(ctx, s.addr); err == nil {
				height, committed, fresh = h, acc.Seq, true
			}
		}
		due, more := s.due(height, committed, fresh)
		for _, p := range due {
			c, found, err := s.client.TxResult(ctx, p.hash)
			if err != nil && !found {
				continue // the lookup failed; next tick
			}
			s.mu.Lock()
			s.settleLocked(p, c, found, err, committed)
			s.mu.Unlock()
		}
		if fresh {
			s.rebroadcast(ctx, committed)
		}
		cancel()
		if !more {
			return
		}
	}
}

// rebroadcast sends again the bytes of the tx in flight at the account's committed
// sequence, the one every later tx of this key waits for, once it has gone uncarried for
// RebroadcastAfter since it was last sent. A mempool loses what it holds when its chain
// node dies or restarts, or when this client fails over to another chain node that never
// received it; nothing else would then ever carry the tx, and the signer's txs would wait
// to their callers' deadlines. A mempool that still holds it answers ErrTxInCache, and the
// tx waits another period: a slow chain costs one request per period. One that admits it
// had lost it, and so most likely the txs this signer sent after it: they are sent again
// too, in order. Any other answer is left to the watcher's usual course.
func (s *Signer) rebroadcast(ctx context.Context, committed uint64) {
	s.mu.Lock()
	var lost []*inflight
	for p := range s.inflight {
		if p.seq == committed && time.Since(p.sent) >= s.opts.RebroadcastAfter {
			lost = append(lost, p)
		}
	}
	if len(lost) == 0 {
		s.mu.Unlock()
		return
	}
	head := lost[0]
	for p := range s.inflight {
		if p.epoch == head.epoch && p.seq > head.seq {
			lost = append(lost, p)
		}
	}
	s.mu.Unlock()
	sort.Slice(lost, func(i, j int) bool { return lost[i].seq < lost[j].seq })
	for i, p := range lost {
		_, err := s.client.BroadcastSync(ctx, p.tx)
		s.mu.Lock()
		p.sent = time.Now()
		s.mu.Unlock()
		if i == 0 && err != nil {
			return // held still (ErrTxInCache), or refused: the rest are where they were
		}
	}
}

// due lists the txs in flight a block can have carried, by sequence; more is false (and
// the watcher stops) when nothing is in flight.
func (s *Signer) due(height int64, committed uint64, fresh bool) (due []*inflight, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.height = height
	if len(s.inflight) == 0 {
		s.watching = false
		return nil, false
	}
	for p := range s.inflight {
		if p.seq < committed || (fresh && p.seq == committed) {
			due = append(due, p)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].seq < due[j].seq })
	return due, true
}

// settleLocked records what the index said about p. Committed: done. Rejected in its
// block: the error goes to Submit, and if the rejection left a gap (the ledger does not
// use up the sequence of a tx that fails), every tx this signer sent after p in p's epoch
// is dead too (rejected in the same block or dropped by the mempool's re-check): they are
// sent again, and the next tx asks the mempool for its sequence.
func (s *Signer) settleLocked(p *inflight, c Committed, found bool, err error, committed uint64) {
	if _, ok := s.inflight[p]; !ok {
		return
	}
	if found && c.Height <= p.after {
		found = false // identical bytes an earlier block carried
	}
	if !found {
		switch {
		case p.seq >= committed:
		case p.missing.IsZero():
			p.missing = time.Now()
		case time.Since(p.missing) > displacedAfter:
			s.resolveLocked(p, outcome{resend: true})
		}
		return
	}
	if err == nil {
		s.resolveLocked(p, outcome{c: c})
		return
	}
	s.resolveLocked(p, outcome{err: err, resend: errors.Is(err, ledger.ErrWrongSequence)})
	if !leftGap(p.seq, err) {
		return
	}
	for q := range s.inflight {
		if q.epoch == p.epoch && q.seq > p.seq {
			s.resolveLocked(q, outcome{resend: true})
		}
	}
	if p.epoch == s.epoch {
		s.epoch++
		s.synced = false
	}
}

// leftGap says whether a tx with sequence seq that its block rejected with err left its
// sequence unused behind it: any rejection but one for a sequence already used by
// another tx (which displaced this one and no other).
func leftGap(seq uint64, err error) bool {
	if !errors.Is(err, ledger.ErrWrongSequence) {
		return true
	}
	m := expectedSeq.FindStringSubmatch(err.Error())
	if m == nil {
		return true
	}
	e, perr := strconv.ParseUint(m[1], 10, 64)
	return perr != nil || e < seq
}
