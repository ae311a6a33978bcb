package router

import (
	"context"
	"fmt"
	"time"
)

// Jobs that fit a node whose GPUs are all held wait in line for capacity, oldest first.
// When a node's free GPUs rise (a reservation released, a heartbeat that says more are
// free, a peer's lease dropped, a node back online), as many jobs are woken as GPUs came
// free, not every waiting job: with thousands waiting, waking all of them at every
// release was thousands of failed placements per freed GPU. A woken job that still finds
// nothing (the GPU went to a job submitted meanwhile, or is too few for it) passes its
// wake to the next in line, at most as many times as jobs were waiting when it was
// given, so a small job behind a large one is not held up by it.

// waiter is one job waiting for capacity; wake receives the times it may pass the wake on,
// and poll is its safety poll. A job keeps its waiter from one wait to the next (a job
// can wait many times), the zero waiter to begin with: once waitForCapacity returns, the
// waiter is out of line, no wake is left in it and its poll is stopped.
type waiter struct {
	wake chan int
	poll *time.Timer
}

// waitForCapacity waits in line, as w, until capacity comes free for the job (it returns
// the times the wake may be passed on; see passWake), its safety poll passes without news
// of any (safetyPoll), or ctx ends.
func (r *Router) waitForCapacity(ctx context.Context, w *waiter) (hops int, err error) {
	if w.wake == nil {
		w.wake = make(chan int, 1)
	}
	r.mu.Lock()
	e := r.waiting.PushBack(w)
	poll := safetyPoll(r.waiting.Len())
	r.mu.Unlock()
	if w.poll == nil {
		w.poll = time.NewTimer(poll)
	} else {
		w.poll.Reset(poll) // stopped, and so drained, when the last wait returned
	}
	defer w.poll.Stop()
	select {
	case hops := <-w.wake:
		return hops, nil
	case <-w.poll.C:
	case <-ctx.Done():
		err = fmt.Errorf("no gpu came free before the job's deadline: %w", ctx.Err())
	}
	r.mu.Lock()
	r.waiting.Remove(e) // if it is still in line
	r.mu.Unlock()
	select {
	case hops = <-w.wake: // woken as it gave up: pass the wake on
		if err != nil {
			r.passWake(hops)
			hops = 0
		}
	default:
	}
	return hops, err
}

// capacitySafetyPoll bounds how long a waiting job sleeps without being woken: every rise
// in free GPUs wakes the line, so this only guards against a rise no one noticed.
const capacitySafetyPoll = 2 * time.Second

// safetyPollRate bounds the placements a second that the line's safety polls try, all
// jobs together: each is a failed placement under r.mu (0.26 ms with 100,000 nodes and
// 1,000 of them held, see BenchmarkAllBusyCheck), and with 5,000 jobs waiting a poll of
// each every capacitySafetyPoll was 0.65 cores spent on news no one missed.
const safetyPollRate = 100

// safetyPoll is how long a job that joins a line of waiting jobs (itself included) sleeps
// without news: capacitySafetyPoll, or longer once the line is long enough that its polls
// together would pass safetyPollRate.
func safetyPoll(waiting int) time.Duration {
	return max(capacitySafetyPoll, (time.Duration(waiting)*time.Second+safetyPollRate-1)/safetyPollRate)
}

// passWake hands a wake the job could not use to the next job in line, if hops allow.
func (r *Router) passWake(hops int) {
	if hops <= 0 {
		return
	}
	r.mu.Lock()
	r.wakeLocked(1, hops-1)
	r.mu.Unlock()
}

// wakeLocked wakes up to n waiting jobs, oldest first, each allowed to pass its wake on
// hops times; r.mu must be held.
func (r *Router) wakeLocked(n, hops int) {
	for ; n > 0 && r.waiting.Len() > 0; n-- {
		w := r.waiting.Remove(r.waiting.Front()).(*waiter)
		w.wake <- hops
	}
}

// freeRoseLocked wakes the line for node id's free GPUs having risen from before to
// after; r.mu must be held.
func (r *Router) freeRoseLocked(before, after int) {
	if after > before {
		r.wakeLocked(after-before, r.waiting.Len())
	}
}
