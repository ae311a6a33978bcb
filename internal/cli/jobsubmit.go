package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// jobSubmitter signs and submits one spec, once or --count times, with the sequences
// job submit picks: the account's committed one for a synchronous submission (the
// router answers once its escrow has committed, so the next one reads the next); for
// --async, --seq or the first sequence no pending job holds, then one after the other.
type jobSubmitter struct {
	c       *api.Client
	key     ed25519.PrivateKey
	chainID string
	async   bool
	next    uint64 // the next --async sequence, once known
	known   bool
	poll    time.Duration // how often to look again for a committed block
}

func newJobSubmitter(c *api.Client, key ed25519.PrivateKey, chainID string, s jobSubmitFlags) *jobSubmitter {
	return &jobSubmitter{c: c, key: key, chainID: chainID, async: s.async, next: s.seq, known: s.seqSet, poll: 250 * time.Millisecond}
}

// submit signs spec's create_job with the next sequence and submits it with its inline
// inputs.
func (u *jobSubmitter) submit(ctx context.Context, spec api.JobSpec, inline map[string][]byte) (api.Job, error) {
	addr := keys.AddressOfKey(u.key)
	acc, err := u.c.Account(ctx, string(addr))
	if err != nil {
		return api.Job{}, fmt.Errorf("read account %s: %w", addr, err)
	}
	seq := acc.Seq
	if u.async {
		if !u.known {
			if u.next, err = u.firstFree(ctx, addr, acc.Seq); err != nil {
				return api.Job{}, err
			}
			u.known = true
		}
		seq = u.next
		if err := u.awaitWindow(ctx, addr, seq, acc.Seq); err != nil {
			return api.Job{}, err
		}
	}
	tx, err := ledger.SignTx(u.key, u.chainID, seq, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
		Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
	}})
	if err != nil {
		return api.Job{}, err
	}
	job, err := u.c.SubmitJob(ctx, api.SubmitJobRequest{Spec: spec, InputData: inline, Tx: tx, Async: u.async})
	if err != nil {
		return api.Job{}, u.explainConflict(err, seq)
	}
	u.next = seq + 1
	return job, nil
}

// firstFree is the first sequence from the committed one whose job the API does not
// know, or knows as failed before its escrow committed: an earlier --async submission
// still waiting for its block holds its sequence (the router reports that job as
// queued), one whose block refused its escrow does not (the router takes a job signed
// with it again).
func (u *jobSubmitter) firstFree(ctx context.Context, addr keys.Address, committed uint64) (uint64, error) {
	seq := committed
	for ; seq < committed+ledger.MaxPending; seq++ {
		j, err := u.c.Job(ctx, ledger.JobID(addr, seq))
		if errors.Is(err, api.ErrNotFound) || err == nil && escrowRefused(j) {
			return seq, nil
		}
		if err != nil {
			return 0, fmt.Errorf("look for a free sequence: job %s: %w", ledger.JobID(addr, seq), err)
		}
	}
	return seq, nil
}

// escrowRefused reports whether j failed before its escrow ever committed.
func escrowRefused(j api.Job) bool { return j.Status == api.StatusFailed && !escrowCommitted(j) }

// escrowCommitted reports whether j's escrow has committed: the router records the
// escrowed event then.
func escrowCommitted(j api.Job) bool {
	return slices.ContainsFunc(j.Events, func(e api.Event) bool { return e.Stage == "escrowed" })
}

// awaitWindow waits, while seq lies beyond the ledger.MaxPending sequences an account may
// have waiting in the mempool, for blocks to commit earlier ones.
func (u *jobSubmitter) awaitWindow(ctx context.Context, addr keys.Address, seq, committed uint64) error {
	for seq >= committed+ledger.MaxPending {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sequence %d: %d submissions of %s are still waiting for their block (at most %d may): %w",
				seq, seq-committed, addr, ledger.MaxPending, ctx.Err())
		case <-time.After(u.poll):
		}
		acc, err := u.c.Account(ctx, string(addr))
		if err != nil {
			return fmt.Errorf("read account %s: %w", addr, err)
		}
		committed = acc.Seq
	}
	return nil
}

// explainConflict says what to do about a sequence the router refused (409).
func (u *jobSubmitter) explainConflict(err error, seq uint64) error {
	if !errors.Is(err, api.ErrConflict) {
		return err
	}
	if u.async {
		return fmt.Errorf("%w\n(sequence %d is taken, or out of the account's window: another transaction from this wallet, or a job submitted through another router, holds it; pass --seq with the account's next free sequence, or wait for the pending jobs' block and submit again)", err, seq)
	}
	return fmt.Errorf("%w\n(another transaction from this wallet holds sequence %d, an --async job still waiting for its block perhaps: submit again once it has committed, or submit with --async, which signs past pending jobs)", err, seq)
}

// awaitEscrow waits until an --async job's escrow has committed, which its inputs'
// uploads need: the router records the escrowed event then. A job whose escrow its block
// refused has failed.
func awaitEscrow(ctx context.Context, c *api.Client, id string, poll time.Duration) error {
	for {
		j, err := c.Job(ctx, id)
		if err != nil {
			return err
		}
		if escrowCommitted(j) {
			return nil
		}
		if api.Final(j.Status) {
			return fmt.Errorf("job %s %s before its inputs were uploaded: %s", id, j.Status, j.Error)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s: waiting for its escrow to commit before uploading its inputs: %w", id, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// checkRepeat checks --count, --seq and --wait together.
func (s jobSubmitFlags) checkRepeat() error {
	switch {
	case s.count < 1:
		return fmt.Errorf("--count %d: want 1 or more", s.count)
	case s.count > 1 && s.wait:
		return errors.New("--wait follows one job: leave it out with --count, and follow each job with `omnisync job wait ID`")
	case s.seqSet && !s.async:
		return errors.New("--seq is for --async submissions: a synchronous one is signed with the account's committed sequence")
	}
	return nil
}

// submitJobs submits spec --count times, each job's inputs too large to travel inline
// uploaded once its escrow has committed. It returns the jobs submitted, also those
// before a failure.
func (g *globals) submitJobs(ctx context.Context, f *remoteFlags, s jobSubmitFlags, key ed25519.PrivateKey, chainID string,
	spec api.JobSpec, data map[string][]byte) ([]api.Job, error) {
	c := f.client()
	u := newJobSubmitter(c, key, chainID, s)
	inline, later := splitInputs(spec, data)
	var jobs []api.Job
	for i := range s.count {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		job, err := u.submit(rctx, spec, inline)
		cancel()
		if err == nil {
			jobs = append(jobs, job)
			err = g.sendLater(ctx, c, s.async, job.ID, spec, later)
		}
		if err != nil {
			if s.count > 1 {
				err = fmt.Errorf("job %d of %d: %w", i+1, s.count, err)
			}
			return jobs, f.explain(err)
		}
	}
	return jobs, nil
}

// sendLater uploads a submitted job's inputs that did not travel inline; an --async
// job's once its escrow has committed, as the router takes them no sooner.
func (g *globals) sendLater(ctx context.Context, c *api.Client, async bool, id string, spec api.JobSpec, later map[string][]byte) error {
	if len(later) == 0 {
		return nil
	}
	if async {
		actx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := awaitEscrow(actx, c, id, 250*time.Millisecond)
		cancel()
		if err != nil {
			return err
		}
	}
	return g.uploadInputs(ctx, c, id, spec, later)
}

// printSubmitted reports the jobs submitted: their ids (a job, or a list of them, with
// -o json), and on stderr what was escrowed.
func (g *globals) printSubmitted(s jobSubmitFlags, spec api.JobSpec, jobs []api.Job) error {
	switch {
	case len(jobs) == 0:
		return nil
	case g.json() && s.count == 1:
		return writeJSON(g.stdout, jobs[0])
	case g.json():
		return writeJSON(g.stdout, jobs)
	}
	for _, j := range jobs {
		fmt.Fprintln(g.stdout, j.ID)
	}
	switch {
	case len(jobs) == 1 && s.async:
		fmt.Fprintf(g.stderr, "submitted: %s to be escrowed once its block commits (the job reads queued until then); follow it with `omnisync job wait %s`\n", omni(spec.Budget), jobs[0].ID)
	case len(jobs) == 1:
		fmt.Fprintf(g.stderr, "submitted: %s escrowed; follow it with `omnisync job wait %s`\n", omni(spec.Budget), jobs[0].ID)
	case s.async:
		fmt.Fprintf(g.stderr, "submitted %d jobs: %s each to be escrowed once their block commits (they read queued until then); follow one with `omnisync job wait ID`\n", len(jobs), omni(spec.Budget))
	default:
		fmt.Fprintf(g.stderr, "submitted %d jobs: %s escrowed for each; follow one with `omnisync job wait ID`\n", len(jobs), omni(spec.Budget))
	}
	return nil
}
