package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// blockChain is a chain of numbered blocks whose job records change with the height: at
// height h, job "j" has GPUMillis h. Reads count its queries and height probes.
type blockChain struct {
	height  atomic.Int64
	queries atomic.Int64
	probes  atomic.Int64
	// during, if set, runs inside each query before it reads the height: a test uses it
	// to move the chain while a read is in flight.
	during func()
}

func (c *blockChain) Height(context.Context) (int64, error) {
	c.probes.Add(1)
	return c.height.Load(), nil
}

func (c *blockChain) Query(_ context.Context, path string, v any) error {
	c.queries.Add(1)
	if c.during != nil {
		c.during()
	}
	if path != "job/j" {
		return ledger.ErrNotFound
	}
	*v.(*ledger.Job) = ledger.Job{ID: "j", GPUMillis: uint64(c.height.Load())}
	return nil
}

func (c *blockChain) BroadcastTx(context.Context, []byte) (string, int64, error) {
	return "", 0, errors.New("not here")
}

// reads returns a jobReads over c with a clock the test moves.
func reads(c *blockChain) (*jobReads, *time.Time) {
	now := time.Unix(1000, 0)
	r := newJobReads(c, c)
	r.now = func() time.Time { return now }
	return r, &now
}

func TestJobReadsOnceABlock(t *testing.T) {
	c := &blockChain{}
	c.height.Store(5)
	r, now := reads(c)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		j, err := r.job(ctx, "j")
		if err != nil || j.GPUMillis != 5 {
			t.Fatalf("poll %d: %+v, %v; want the record at height 5", i, j, err)
		}
	}
	if q, p := c.queries.Load(), c.probes.Load(); q != 1 || p != 1 {
		t.Fatalf("10 polls within one probe's freshness: %d queries, %d probes; want 1 and 1", q, p)
	}

	// Past the probe's freshness, the same block: the height is asked again, the record
	// is not.
	*now = now.Add(heightFresh)
	if j, _ := r.job(ctx, "j"); j.GPUMillis != 5 || c.queries.Load() != 1 || c.probes.Load() != 2 {
		t.Fatalf("same block: %+v after %d queries, %d probes; want the kept record, 1 query, 2 probes", j, c.queries.Load(), c.probes.Load())
	}

	// A new block: the next poll reads the job again.
	c.height.Store(6)
	if j, _ := r.job(ctx, "j"); j.GPUMillis != 5 {
		t.Fatalf("a block the router has not seen yet: got %+v, want the kept record", j)
	}
	*now = now.Add(heightFresh)
	if j, _ := r.job(ctx, "j"); j.GPUMillis != 6 || c.queries.Load() != 2 {
		t.Fatalf("a new block seen: %+v after %d queries; want the record at height 6, 2 queries", j, c.queries.Load())
	}
}

func TestJobReadsKeepNoErrors(t *testing.T) {
	c := &blockChain{}
	c.height.Store(1)
	r, _ := reads(c)
	for i := 0; i < 3; i++ {
		if _, err := r.job(context.Background(), "missing"); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("a job the chain does not know: %v, want ErrNotFound", err)
		}
	}
	if q := c.queries.Load(); q != 3 {
		t.Fatalf("3 polls of a missing job made %d queries; a job escrowed in the next block must show at once", q)
	}
}

// TestJobReadsNeverGoBack polls one job from many goroutines while the chain moves on,
// with reads in flight overlapping blocks: every poller sees the record's height only
// grow, and never older than the last height probed before its poll.
func TestJobReadsNeverGoBack(t *testing.T) {
	c := &blockChain{}
	c.height.Store(1)
	var clock atomic.Int64
	r := newJobReads(c, c)
	r.now = func() time.Time { return time.Unix(0, clock.Load()) }
	var n atomic.Int64
	c.during = func() {
		for range n.Add(1) % 4 { // reads in flight finish out of order
			time.Sleep(50 * time.Microsecond)
		}
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a block every 200µs
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
				c.height.Add(1)
			}
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := 0; i < 300; i++ {
				r.mu.Lock()
				seen := uint64(r.height)
				r.mu.Unlock()
				j, err := r.job(context.Background(), "j")
				if err != nil {
					t.Error(err)
					return
				}
				if j.GPUMillis < last {
					t.Errorf("the job went back from height %d to %d", last, j.GPUMillis)
					return
				}
				if j.GPUMillis < seen {
					t.Errorf("the job read at height %d after the router saw block %d", j.GPUMillis, seen)
					return
				}
				last = j.GPUMillis
				clock.Add(int64(time.Millisecond))
			}
		}()
	}
	wg.Wait()
	if q := c.queries.Load(); q >= 16*300 {
		t.Fatalf("%d queries for %d polls: nothing was shared", q, 16*300)
	}
}

// everyJob is a chain at a fixed height that holds every job asked for.
type everyJob struct{ blockChain }

func (c *everyJob) Query(_ context.Context, path string, v any) error {
	c.queries.Add(1)
	*v.(*ledger.Job) = ledger.Job{ID: strings.TrimPrefix(path, "job/")}
	return nil
}

// More jobs polled within one block than the reads kept: the reads stay bounded, and a
// job dropped is read again. They grew without bound, every new read sweeping them all.
func TestJobReadsStayBoundedWithinABlock(t *testing.T) {
	c := &everyJob{}
	c.height.Store(7)
	r := newJobReads(c, c)
	ctx := context.Background()
	for i := range 3 * maxJobReads {
		id := fmt.Sprintf("job-%d", i)
		if j, err := r.job(ctx, id); err != nil || j.ID != id {
			t.Fatalf("read %s: %+v, %v", id, j, err)
		}
		if n := len(r.jobs); n > maxJobReads {
			t.Fatalf("%d reads kept after %d jobs, bound %d", n, i+1, maxJobReads)
		}
	}
	before := c.queries.Load()
	if _, err := r.job(ctx, "job-0"); err != nil || c.queries.Load() != before+1 {
		t.Fatalf("a dropped job: %v, %d queries, want one more", err, c.queries.Load()-before)
	}
}
