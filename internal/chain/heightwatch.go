package chain

import (
	"context"
	"sync"
	"time"
)

// heightPoll is how often the height watch asks for the ledger's height while someone
// waits for a block.
const heightPoll = 20 * time.Millisecond

// heightWatch tells everyone waiting for the ledger's next block when it commits: one
// goroutine, running only while someone waits, asks the chain node for its height every
// heightPoll and sends each waiter each new height. Jobs waiting for the chain node to
// show a change (a result committed, a job decided) each asked it on a timer of their own,
// most of the time reading a state they had read already, and the queries grew with the
// number of jobs waiting; now each asks again only after a block. The zero value is ready.
type heightWatch struct {
	mu      sync.Mutex
	waiting map[chan int64]struct{}
	height  int64 // the last height read
	running bool
}

// NewBlocks sends the height of each block the ledger commits after the call on the
// channel it returns, until ctx ends. The channel holds one height, the newest: a reader
// that was busy while two blocks committed is woken once, with the second. The client
// asks its chain node for the height every heightPoll while anyone waits, however many do.
func (c *Client) NewBlocks(ctx context.Context) (<-chan int64, error) {
	return c.heights.add(ctx, c.Height)
}

// add registers a waiter until ctx ends, starting the watch if it is not running.
func (w *heightWatch) add(ctx context.Context, height func(context.Context) (int64, error)) (<-chan int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan int64, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		// The blocks to tell this waiter of are those after the one committed now.
		h, err := height(ctx)
		if err != nil {
			return nil, err
		}
		w.height, w.running = h, true
		go w.run(height)
	}
	if w.waiting == nil {
		w.waiting = map[chan int64]struct{}{}
	}
	w.waiting[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.waiting, ch)
	})
	return ch, nil
}

// run reads the height every heightPoll while anyone waits and sends each waiter every
// height above the last one read; a read that fails is tried again at the next tick.
func (w *heightWatch) run(height func(context.Context) (int64, error)) {
	tick := time.NewTicker(heightPoll)
	defer tick.Stop()
	for range tick.C {
		w.mu.Lock()
		if len(w.waiting) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		h, err := height(ctx)
		cancel()
		if err != nil {
			continue
		}
		w.mu.Lock()
		if h > w.height {
			for ch := range w.waiting {
				// This goroutine alone sends: with an unread height drained, the send cannot block.
				select {
				case <-ch:
				default:
				}
				ch <- h
			}
		}
		w.height = h // a lower height is a chain node that restarted: its next block is news
		w.mu.Unlock()
	}
}
