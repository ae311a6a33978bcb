package chain

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/blockwait"
)

// fakeHeights is a chain node's height that the test sets, counting the watch's reads.
type fakeHeights struct {
	height atomic.Int64
	reads  atomic.Int64
}

func (f *fakeHeights) read(context.Context) (int64, error) {
	f.reads.Add(1)
	return f.height.Load(), nil
}

// Every waiter hears of each new block once, the newest if it fell behind, and of
// nothing while the height stands still.
func TestHeightWatchWakesEveryWaiter(t *testing.T) {
	var w heightWatch
	chain := &fakeHeights{}
	chain.height.Store(4)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var waiters []<-chan int64
	for range 3 {
		ch, err := w.add(ctx, chain.read)
		if err != nil {
			t.Fatal(err)
		}
		waiters = append(waiters, ch)
	}
	quiet := func(when string) {
		t.Helper()
		time.Sleep(5 * heightPoll)
		for i, ch := range waiters {
			select {
			case h := <-ch:
				t.Fatalf("%s: waiter %d told of height %d", when, i, h)
			default:
			}
		}
	}
	hears := func(want int64) {
		t.Helper()
		for i, ch := range waiters {
			select {
			case h := <-ch:
				if h != want {
					t.Fatalf("waiter %d told of height %d, want %d", i, h, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("waiter %d never told of height %d", i, want)
			}
		}
	}
	quiet("height 4, as when they came")
	chain.height.Store(5)
	hears(5)
	quiet("height 5, told already")
	chain.height.Store(6)
	time.Sleep(5 * heightPoll)
	chain.height.Store(7)
	time.Sleep(5 * heightPoll)
	hears(7)
	quiet("height 7, told already")
}

// The watch's goroutine runs only while someone waits: it stops reading once the last
// waiter's context ends, and starts again for the next one.
func TestHeightWatchStopsWithItsLastWaiter(t *testing.T) {
	var w heightWatch
	chain := &fakeHeights{}
	chain.height.Store(1)
	stopped := func() bool {
		return waitFor(func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return !w.running
		})
	}

	first, cancelFirst := context.WithCancel(t.Context())
	second, cancelSecond := context.WithCancel(t.Context())
	defer cancelSecond()
	for _, ctx := range []context.Context{first, second} {
		if _, err := w.add(ctx, chain.read); err != nil {
			t.Fatal(err)
		}
	}
	cancelFirst()
	time.Sleep(5 * heightPoll)
	if before := chain.reads.Load(); !waitFor(func() bool { return chain.reads.Load() > before }) {
		t.Fatal("the watch stopped reading while a waiter was left")
	}
	cancelSecond()
	if !stopped() {
		t.Fatal("the watch still runs with nobody waiting")
	}
	reads := chain.reads.Load()
	time.Sleep(10 * heightPoll)
	if n := chain.reads.Load() - reads; n != 0 {
		t.Fatalf("the watch read the height %d times with nobody waiting", n)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := w.add(ctx, chain.read)
	if err != nil {
		t.Fatal(err)
	}
	chain.height.Store(2)
	select {
	case h := <-ch:
		if h != 2 {
			t.Fatalf("told of height %d, want 2", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter after the watch stopped never heard of the next block")
	}
	cancel()
	if !stopped() {
		t.Fatal("the restarted watch still runs with nobody waiting")
	}
}

// A context that has ended adds no waiter, and starts nothing.
func TestHeightWatchRefusesAnEndedContext(t *testing.T) {
	var w heightWatch
	chain := &fakeHeights{}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := w.add(ctx, chain.read); err == nil {
		t.Fatal("added a waiter whose context had ended")
	}
	if w.running || chain.reads.Load() != 0 {
		t.Fatal("started the watch for nobody")
	}
}

// The wallet the daemons hold offers the watch to them: the router and the validator
// find it by this method (blockwait.Next).
var _ blockwait.Watch = (*Wallet)(nil)

// waitFor reports whether cond became true within five seconds.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
