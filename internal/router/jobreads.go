package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// HeightReader is a chain that tells its last committed height cheaply (chain.Wallet
// does). A router whose Chain is one answers status polls from one read of each job per
// block (jobReads); any other reads the chain at every poll.
type HeightReader interface {
	Height(ctx context.Context) (int64, error)
}

// heightFresh is how long a probe of the chain's height serves the polls after it: no
// answer is older than the last block the router saw, nor than this.
const heightFresh = 20 * time.Millisecond

// jobReads answers the REST API's reads of job records (GET /v1/jobs/{id}, its event
// stream, `job wait`, an output) from one chain read per job per block: every consumer
// polls its jobs several times a block, and each read was a query of the chain and a JSON
// decode. A record read once the router knew of height h holds at least block h's state;
// it serves every read until the router learns of a later block.
//
// A client never sees a job go backwards: reads of one job run one after another, each
// begun after the one before it ended, so each is at least as new; the answer kept is
// always the last one read. Errors (a job not yet escrowed, a chain that did not answer)
// are not kept. The records it returns are shared: callers only read them.
type jobReads struct {
	chain   ChainReader
	heights HeightReader
	now     func() time.Time

	mu       sync.Mutex
	height   int64         // the newest height probed
	probedAt time.Time     // when it was
	probing  chan struct{} // closed when the probe in flight ends; nil when none is
	jobs     map[string]*jobRead
}

// jobRead is one job's last read: done is closed when it ended, and then job or err is
// set.
type jobRead struct {
	height int64 // the height the router knew when the read began
	done   chan struct{}
	ended  bool // done is closed; under jobReads.mu
	job    ledger.Job
	err    error
}

// maxJobReads bounds the records kept: more jobs than this polled and reads are dropped
// (and read again at their next poll; see evictLocked).
const maxJobReads = 8192

func newJobReads(chain ChainReader, heights HeightReader) *jobReads {
	return &jobReads{chain: chain, heights: heights, now: time.Now, jobs: map[string]*jobRead{}}
}

// job returns the chain's record of a job, read at the last block the router has seen
// or later.
func (c *jobReads) job(ctx context.Context, id string) (ledger.Job, error) {
	h, err := c.currentHeight(ctx)
	if err != nil {
		return ledger.Job{}, fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	for {
		c.mu.Lock()
		r := c.jobs[id]
		if r == nil {
			break // c.mu held
		}
		select {
		case <-r.done:
			if r.err == nil && r.height >= h {
				c.mu.Unlock()
				return r.job, nil
			}
			// Too old, or failed: read again.
		default:
			// A read is under way: the next one begins after it ends.
			c.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return ledger.Job{}, fmt.Errorf("%w: %v", api.ErrUnavailable, ctx.Err())
			}
			if r.err == nil && r.height >= h {
				return r.job, nil
			}
			continue
		}
		break // c.mu held
	}
	r := &jobRead{height: h, done: make(chan struct{})}
	if len(c.jobs) >= maxJobReads {
		c.evictLocked(h)
	}
	c.jobs[id] = r
	c.mu.Unlock()

	var cj ledger.Job
	err = c.chain.Query(ctx, "job/"+id, &cj)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		err = fmt.Errorf("%w: job %s", api.ErrNotFound, id)
	case err != nil:
		err = fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	c.mu.Lock()
	r.job, r.err, r.ended = cj, err, true
	close(r.done)
	if err != nil && c.jobs[id] == r {
		delete(c.jobs, id)
	}
	c.mu.Unlock()
	return cj, err
}

// evictLocked makes room among the reads kept: it drops those that ended before height h
// and, should that leave half of maxJobReads or more, every read that ended, which its
// job's next poll reads again. Dropping only the older reads left the map full whenever
// more jobs than it holds were polled within a block (a devnet at 1,000 jobs a second
// polls thousands): it grew without bound, and every read after swept all of it again,
// 3% of the process. Now a sweep makes room for at least half the bound of new reads.
// c.mu must be held.
func (c *jobReads) evictLocked(h int64) {
	for k, old := range c.jobs {
		if old.ended && old.height < h {
			delete(c.jobs, k)
		}
	}
	if len(c.jobs) < maxJobReads/2 {
		return
	}
	for k, old := range c.jobs {
		if old.ended {
			delete(c.jobs, k)
		}
	}
}

// currentHeight returns the chain's last committed height, probed at most once per
// heightFresh however many polls ask. Heights only grow: a chain node that answers with a
// lower one (it restarted) leaves the known height where it was.
func (c *jobReads) currentHeight(ctx context.Context) (int64, error) {
	for {
		c.mu.Lock()
		if !c.probedAt.IsZero() && c.now().Sub(c.probedAt) < heightFresh {
			h := c.height
			c.mu.Unlock()
			return h, nil
		}
		if wait := c.probing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.probing = done
		c.mu.Unlock()

		h, err := c.heights.Height(ctx)
		c.mu.Lock()
		c.probing = nil
		if err == nil {
			c.height, c.probedAt = max(c.height, h), c.now()
		} // else the next poll asks again
		close(done)
		h = c.height
		c.mu.Unlock()
		return h, err
	}
}
