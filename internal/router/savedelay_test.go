package router

import (
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// savedRecords holds the records a job saves, in the order it saved them.
type savedRecords struct {
	mu      sync.Mutex
	records [][]byte
}

// savingJob is a job of no router whose saves land in the records returned.
func savingJob() (*job, *savedRecords) {
	saved := &savedRecords{}
	j := newJob("job-1", keys.Address("consumer"), api.JobSpec{}, time.Now())
	j.persist = func(_ *job, record []byte) {
		saved.mu.Lock()
		defer saved.mu.Unlock()
		saved.records = append(saved.records, record)
	}
	return j, saved
}

func (s *savedRecords) writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// decode rebuilds the job from the i-th record saved.
func (s *savedRecords) decode(i int) (*job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return jobFromRecord(s.records[i])
}

// A change made after a save waits its full saveDelay, gathering the changes that follow,
// rather than being written early by the delayed save that the save made needless: a
// job's immediate saves (its placement, its end) would otherwise leave behind a write of
// whatever came next, an extra write of the record for each.
func TestChangesAfterASaveWaitTheirOwnDelay(t *testing.T) {
	j, saved := savingJob()
	writes := saved.writes
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
	back, err := saved.decode(1)
	if err != nil || len(back.events) != 2 || back.txs["assign"] != "T1" {
		t.Fatalf("the delayed write lacks a change: %+v %v", back, err)
	}
	time.Sleep(saveDelay + saveDelay/2)
	if n := writes(); n != 2 {
		t.Fatalf("%d writes, want 2: nothing changed since the last", n)
	}
}
