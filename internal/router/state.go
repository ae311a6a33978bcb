package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/internal/ledger"
)

// jobsBucket is the JetStream key-value bucket that holds one record per job the router
// runs (jobRecord), written at every change. Participants have no JetStream rights, so
// only the router reads or writes it.
const jobsBucket = "router_jobs"

// DefaultFinishedRetention is how long a finished job stays in memory and in the store,
// for status queries, unless Options say otherwise.
const DefaultFinishedRetention = 10 * time.Minute

func (r *Router) openJobs(ctx context.Context) error {
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: jobsBucket, Description: "OmniRouter job state: one record per job, so a restarted router resumes it",
		History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("open job store: %w", err)
	}
	r.kv = kv
	return nil
}

// saveJob writes a job's record. A failed write is logged and the job goes on: only a
// restart before the next successful write would lose the change.
func (r *Router) saveJob(id string, record []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.kv.Put(ctx, id, record); err != nil {
		r.log.Warn("job state not saved", "job", id, "err", err)
	}
}

// resumeJobs loads every job a previous router saved, keeps the finished ones for status
// queries and takes up the others.
func (r *Router) resumeJobs(ctx context.Context) error {
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list saved jobs: %w", err)
	}
	var resumed, kept int
	for key := range lister.Keys() {
		entry, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read saved job %s: %w", key, err)
		}
		j, err := jobFromRecord(entry.Value())
		if err != nil {
			r.log.Warn("saved job unreadable; skipping it", "key", key, "err", err)
			continue
		}
		j.persist = r.saveJob
		r.mu.Lock()
		r.jobs[j.id] = j
		r.mu.Unlock()
		if !j.finished.IsZero() {
			kept++
			continue
		}
		j.resumed = true
		resumed++
		r.wg.Add(1)
		if j.escrowed {
			go r.run(j)
		} else {
			go r.confirmEscrow(j)
		}
	}
	if resumed+kept > 0 {
		r.log.Info("resumed saved jobs", "running", resumed, "finished", kept)
	}
	return nil
}

// escrowWait is how long a restarted router waits for the chain to show the escrow of a
// job whose submission it died during: the tx may still be in a mempool. A variable so
// tests need not wait as long.
var escrowWait = 10 * time.Second

// confirmEscrow takes up a job saved before its escrow was confirmed: if the chain shows
// it, the job runs; if not within escrowWait, it never was escrowed and is forgotten.
func (r *Router) confirmEscrow(j *job) {
	deadline := time.Now().Add(escrowWait)
	for {
		var cj ledger.Job
		err := r.opts.Chain.Query(r.ctx, "job/"+j.id, &cj)
		if err == nil {
			j.set(func(j *job) { j.escrowed = true })
			j.record("escrowed", "", "", "the escrow committed while the router was restarting")
			if missing := j.missingInputs(); len(missing) > 0 {
				// Its consumer was told the submission failed and never learnt the job id to
				// upload to: refund it now rather than wait for inputs to the deadline.
				defer r.wg.Done()
				r.release(j, fmt.Errorf("the router restarted before it stored inputs %v; nothing ran, submit the job again", missing))
				r.finish(j)
				return
			}
			r.run(j) // owns the WaitGroup slot from here
			return
		}
		if !errors.Is(err, ledger.ErrNotFound) || time.Now().After(deadline) || r.ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer r.wg.Done()
	if r.ctx.Err() != nil {
		return
	}
	r.log.Info("a job saved before its escrow was never escrowed; forgetting it", "job", j.id)
	r.mu.Lock()
	delete(r.jobs, j.id)
	r.mu.Unlock()
	r.forgetJob(j.id)
}

// forgetJob removes a job's record from the store.
func (r *Router) forgetJob(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.kv.Purge(ctx, id); err != nil {
		r.log.Debug("forget job", "job", id, "err", err)
	}
}

// forgetFinished drops jobs that finished more than FinishedRetention ago, from memory
// and from the store; the chain still answers for them.
func (r *Router) forgetFinished() {
	cutoff := r.opts.Now().Add(-r.opts.FinishedRetention)
	var old []string
	r.mu.Lock()
	for id, j := range r.jobs {
		j.mu.Lock()
		if !j.finished.IsZero() && j.finished.Before(cutoff) {
			old = append(old, id)
		}
		j.mu.Unlock()
	}
	for _, id := range old {
		delete(r.jobs, id)
	}
	r.mu.Unlock()
	for _, id := range old {
		r.forgetJob(id)
	}
}
