package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/transport"
)

// jobsBucket is the JetStream key-value bucket that holds one record per job (jobRecord),
// written by the job's owner after its changes (job.save), each write conditional on the
// revision it last wrote: a router that lost a job to another (cluster.go) learns so at
// its next write, and cannot overwrite the new owner's record. Participants have no JetStream
// rights, so only routers read or write it.
const jobsBucket = "router_jobs"

// DefaultFinishedRetention is how long a finished job stays in memory and in the store,
// for status queries, unless Options say otherwise.
const DefaultFinishedRetention = 10 * time.Minute

// openBucket opens a key-value bucket, made (or its config updated) with this server's
// replicas, waiting while a cluster forms.
func (r *Router) openBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Storage, cfg.Replicas = jetstream.FileStorage, r.nats.Replicas()
	var kv jetstream.KeyValue
	err := transport.UntilClusterReady(ctx, func(ctx context.Context) error {
		var err error
		kv, err = r.js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

func (r *Router) openJobs(ctx context.Context) (err error) {
	r.kv, err = r.openBucket(ctx, jetstream.KeyValueConfig{
		Bucket: jobsBucket, Description: "OmniRouter job state: one record per job, so a restarted router or its peer resumes it",
		History: 1,
	})
	return err
}

// saveJob writes a job's record if the store still holds the revision this router wrote
// last. A failed write is logged and the job goes on: only a restart before the next
// successful write would lose the change. A record another router owns now is not
// overwritten: the job is left to it. Called with j.saveMu held; record is saveJob's, and
// its buffer goes back to job.save's once written.
func (r *Router) saveJob(j *job, record []byte) {
	defer releaseRecord(record)
	if j.ctx.Err() != nil {
		return // left: the router shut down or was fenced, and its owner takes it up from the store
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rev uint64
	var err error
	if j.storeRev == 0 {
		rev, err = r.kv.Create(ctx, j.id, record)
	} else {
		rev, err = r.kv.Update(ctx, j.id, record, j.storeRev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Someone wrote since: another router that took the job over, or this one, whose
		// earlier write timed out here yet landed.
		var entry jetstream.KeyValueEntry
		entry, err = r.kv.Get(ctx, j.id)
		if err == nil {
			owner := ownerOf(entry.Value())
			if owner != r.id {
				j.heldBy = owner
				r.lose(j, owner)
				return
			}
			rev, err = r.kv.Update(ctx, j.id, record, entry.Revision())
		}
	}
	if err != nil {
		r.log.Warn("job state not saved", "job", j.id, "err", err)
		return
	}
	j.storeRev = rev
}

// savePending saves every job's changes not yet saved (set delays them by up to
// saveDelay), so that a router stopped in good order leaves nothing behind.
func (r *Router) savePending() {
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.jobs))
	for _, j := range r.jobs {
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	for _, j := range jobs {
		j.save()
	}
}

// ownerOf reads a record's owner; "" when the record cannot be read.
func ownerOf(record []byte) keys.Address {
	j, err := jobFromRecord(record)
	if err != nil {
		return ""
	}
	return j.owner
}

// lose leaves a job that another router owns now: its lifecycle stops where it is,
// without releasing or finishing anything, and this router forgets it.
func (r *Router) lose(j *job, owner keys.Address) {
	r.log.Warn("another router holds the job; leaving it", "job", j.id, "owner", owner.Short())
	j.cancel()
	r.mu.Lock()
	r.dropLocked(j)
	r.mu.Unlock()
}

// track makes j one of this router's jobs, owned by it, its record at store revision rev
// (0: not yet stored).
func (r *Router) track(j *job, rev uint64) {
	j.owner, j.storeRev, j.persist = r.id, rev, r.saveJob
	j.ctx, j.cancel = context.WithCancel(r.ctx)
	j.mu.Lock()
	unfinished := j.finished.IsZero()
	j.mu.Unlock()
	r.mu.Lock()
	if old := r.jobs[j.id]; old != nil {
		r.dropLocked(old)
	}
	r.jobs[j.id] = j
	if unfinished {
		j.counted = true
		r.active++
	}
	r.mu.Unlock()
}

// dropLocked forgets j, if it is still the router's job by its id, and stops counting it
// as unfinished; r.mu must be held.
func (r *Router) dropLocked(j *job) {
	if r.jobs[j.id] == j {
		delete(r.jobs, j.id)
	}
	r.uncountLocked(j)
}

// uncountLocked stops counting j among the router's unfinished jobs, which bound the
// jobs it takes (Options.MaxActiveJobs), and forgets the inputs kept for it; r.mu must be
// held.
func (r *Router) uncountLocked(j *job) {
	if j.counted {
		j.counted = false
		r.active--
	}
	r.releaseInline(j) // needed no more, or by another router that has them not
}

// adoptJobs takes up every saved job that is this router's (it restarted, or it was
// cut off from its peers for a while) or whose owner's lease has lapsed (it died): each
// is claimed by a write conditional on the revision read, so when several routers
// find the same orphan, exactly one gets it. Finished jobs are kept for status queries;
// the others run again from where the chain says they stand.
func (r *Router) adoptJobs(ctx context.Context) error {
	live, err := r.liveRouters(ctx)
	if err != nil {
		return err
	}
	lister, err := r.kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list saved jobs: %w", err)
	}
	var resumed, claimed, kept int
	var unread []string // records that could not be read now; the caller tries again
	for key := range lister.Keys() {
		r.mu.Lock()
		_, have := r.jobs[key]
		r.mu.Unlock()
		if have {
			continue
		}
		entry, err := r.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			unread = append(unread, key)
			continue
		}
		j, err := jobFromRecord(entry.Value())
		if err != nil {
			r.log.Warn("saved job unreadable; skipping it", "key", key, "err", err)
			continue
		}
		rev := entry.Revision()
		switch {
		case j.owner == r.id || j.owner == "": // "": saved before routers had owners
		case live[j.owner]:
			continue // another router's, and it is alive
		default:
			from := j.owner
			j.owner = r.id
			data, _ := j.snapshot()
			if rev, err = r.kv.Update(ctx, key, data, rev); err != nil {
				continue // another router claimed it first
			}
			claimed++
			j.record("taken_over", "", "", "router %s stopped renewing its lease; %s took the job over", from.Short(), r.id.Short())
		}
		r.track(j, rev)
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
		r.log.Info("took up saved jobs", "running", resumed, "finished", kept, "taken_over", claimed)
	}
	if len(unread) > 0 {
		return fmt.Errorf("%w: %d saved jobs could not be read (%s first)", errUnread, len(unread), unread[0])
	}
	return nil
}

// errUnread means some saved jobs could not be read: the lease keeper scans again.
var errUnread = errors.New("job store partly unreadable")

// escrowWait is how long a restarted router waits for the chain to show the escrow of a
// job whose submission it died during: the tx may still be in a mempool. A variable so
// tests need not wait as long.
var escrowWait = 10 * time.Second

// confirmEscrow takes up a job saved before its escrow was confirmed (the router
// restarted, or the chain did not answer the broadcast): if the chain shows it, the job
// runs; if not within escrowWait, it never was escrowed and is forgotten.
func (r *Router) confirmEscrow(j *job) {
	deadline := time.Now().Add(escrowWait)
	j.mu.Lock()
	j.unsure = true
	j.mu.Unlock()
	for {
		var cj ledger.Job
		err := r.opts.Chain.Query(j.ctx, "job/"+j.id, &cj)
		if err == nil {
			j.set(func(j *job) { j.escrowed, j.unsure = true, false })
			j.record("escrowed", "", "", "the escrow committed after the router last heard from the chain (it restarted, or the chain did not answer)")
			r.findStored(j.ctx, j)
			if missing := j.missingInputs(); len(missing) > 0 && !j.wasAnswered() {
				// Its consumer was told the submission failed and never learnt the job id to
				// upload to: refund it now rather than wait for inputs to the deadline. (An
				// Async consumer holds the id, and uploads what is missing as usual.)
				defer r.wg.Done()
				r.release(j, fmt.Errorf("inputs %v were never stored: the consumer was not told the job was escrowed; nothing ran, submit the job again", missing))
				r.finish(j)
				return
			}
			r.run(j) // owns the WaitGroup slot from here
			return
		}
		if !errors.Is(err, ledger.ErrNotFound) || time.Now().After(deadline) || j.ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer r.wg.Done()
	if j.ctx.Err() != nil {
		return
	}
	r.log.Info("a job saved before its escrow was never escrowed; forgetting it", "job", j.id)
	r.mu.Lock()
	r.dropLocked(j)
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
