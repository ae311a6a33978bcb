package router

import (
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// A change made after a save waits its full saveDelay, gathering the changes that follow,
// rather than being written early by the delayed save that the save made needless: a
// job's immediate saves (its placement, its end) would otherwise leave behind a write of
// whatever came next, an extra write of the record for each.
func TestChangesAfterASaveWaitTheirOwnDelay(t *testing.T) {
	var mu sync.Mutex
	var saved [][]byte
	j := newJob("job-1", keys.Address("consumer"), api.JobSpec{}, time.Now())
	j.persist = func(_ *job, record []byte) {
		mu.Lock()
		defer mu.Unlock()
		saved = append(saved, record)
	}
	writes := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(saved)
	}
	j.set(func(j *job) { j.node = "n1" }) // due at saveDelay
	j.save()                              // ... but written now
	time.Sleep(saveDelay / 2)
	j.record("assigned", "assign", "T1", "recorded on chain")
	changed := time.Now()
	time.Sleep(saveDelay * 7 / 10) // past the first change's delay, within the second's
	if n := writes(); n != 1 {
		t.Fatalf("%d writes %v after a change that waits %v, want 1: the save written at once left its delayed one behind", n, time.Since(changed).Round(time.Millisecond), saveDelay)
	}
	j.record("running", "", "", "accepted")
	waitFor(t, "the changes after the save written", func() bool { return writes() == 2 })
	if waited := time.Since(changed); waited < saveDelay {
		t.Fatalf("the changes were written %v after the first, before saveDelay", waited)
	}
	mu.Lock()
	back, err := jobFromRecord(saved[1])
	mu.Unlock()
	if err != nil || len(back.events) != 2 || back.txs["assign"] != "T1" {
		t.Fatalf("the delayed write lacks a change: %+v %v", back, err)
	}
	time.Sleep(saveDelay + saveDelay/2)
	if n := writes(); n != 2 {
		t.Fatalf("%d writes, want 2: nothing changed since the last", n)
	}
}
