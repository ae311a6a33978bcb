package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// LoadResult is what happened to every job of a load run.
type LoadResult struct {
	Submitted int
	// IDs lists every job followed. A job whose first router never answered and whose
	// second found it held already is not among them: the first may have escrowed it or
	// not, and only the chain's sequence tells (see deploy/tool's load).
	IDs       []string
	ByStatus  map[string]int
	Unsettled []string        // "job: status (error)" for every job that did not settle
	Latencies []time.Duration // submit → settled, sorted
	Took      time.Duration
	// Start is when the run began, LastSubmit when its last job was submitted, and
	// SettledAt when each settled job settled (its settled event), in no order: what
	// SteadyPerSecond reads.
	Start, LastSubmit time.Time
	SettledAt         []time.Time
}

// FundConsumers makes n fresh consumer keys and gives each omniEach OMNI from the devnet's
// consumer (the transfers share blocks: the signer pipelines).
func (d *Devnet) FundConsumers(ctx context.Context, n int, omniEach uint64) ([]ed25519.PrivateKey, error) {
	w := chain.NewWallet(d.Chain(), d.Keys.Consumer, ChainID)
	out := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range out {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		out[i] = k
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.Send(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(k), Amount: omniEach * omni}}); err != nil {
				errs[i] = fmt.Errorf("fund consumer %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// RunLoad has every consumer submit perConsumer n×n matmul jobs back to back through REST,
// each with the given timeout, signing each with a sequence it counts itself, then follow
// its own jobs until each settles or ends otherwise. Latency is submit to the job's
// settled event (the moment the router saw the settlement commit), or to the moment the
// consumer saw it settled (FollowToEnd) should the job show no such event: a consumer
// follows its jobs one after another, and one that settled while an earlier one was
// followed is not charged the wait. A job still open when ctx ends is reported as open.
func (d *Devnet) RunLoad(ctx context.Context, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	return RunLoad(ctx, LoadClient(d.RESTURL()), ChainID, consumers, perConsumer, n, timeout)
}

// RunLoadAsync is RunLoad with Async submissions: the router answers each once the
// mempool has admitted its escrow, and the consumer submits its next job (the next
// sequence) at once, rather than once the escrow's block has committed.
func (d *Devnet) RunLoadAsync(ctx context.Context, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	c := LoadClient(d.RESTURL())
	return runLoad(ctx, c, c, ChainID, consumers, perConsumer, n, timeout, loadAsync, 0)
}

// RunLoadPaced is RunLoadAsync at a steady rate: together the consumers submit rate jobs
// a second, evenly spread, each consumer one every len(consumers)/rate seconds, rather
// than all at once. Its latencies are a job's at that load, not its wait behind a burst;
// a rate the network cannot sustain shows as latencies that grow through the run.
func (d *Devnet) RunLoadPaced(ctx context.Context, consumers []ed25519.PrivateKey, perConsumer, n int, rate float64, timeout time.Duration) (LoadResult, error) {
	if rate <= 0 {
		return LoadResult{}, fmt.Errorf("rate %v: want a positive number of jobs a second", rate)
	}
	c := LoadClient(d.RESTURL())
	every := time.Duration(float64(len(consumers)) / rate * float64(time.Second))
	return runLoad(ctx, c, c, ChainID, consumers, perConsumer, n, timeout, loadAsync, every)
}

// LoadClient is a REST client for a load of many consumers run in one process, such as
// these: api.NewClient's, whose connection pool keeps 128 idle connections to a router,
// as many as one program of its own needs, but that these consumers' hundreds of
// submissions and event streams at once would share, so that most of their requests
// opened and closed a TCP connection, on both sides, where each consumer of a real
// network keeps its own. This pool keeps as many as the load leaves idle.
func LoadClient(baseURL string) *api.Client {
	c := api.NewClient(baseURL)
	t := c.HTTP.Transport.(*http.Transport).Clone()  // api's settings, its buffers among them
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, 1<<16 // no limit but the load's
	c.HTTP = &http.Client{Transport: t}
	return c
}

// RunLoad is Devnet.RunLoad against any router's REST API on chain chainID.
func RunLoad(ctx context.Context, c *api.Client, chainID string, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	return RunLoadVia(ctx, c, c, chainID, consumers, perConsumer, n, timeout)
}

// RunLoadVia is RunLoad submitting through one router's REST API and following the jobs
// through another's: any router of a cluster answers for any job, also while the one
// that took it is down. A submission the first router never answers, or answers 503
// (cut off), is sent to the other, as are the rest of that consumer's: the other answers
// with the job if the first escrowed it. One the first router held but had not escrowed
// when the other refused it is not counted here (should it be escrowed after all, its
// sequence was used: the caller can follow it).
func RunLoadVia(ctx context.Context, c, follow *api.Client, chainID string, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	return runLoad(ctx, c, follow, chainID, consumers, perConsumer, n, timeout, loadInFlight, 0)
}

// RunLoadViaAsync is RunLoadVia with Async submissions (see RunLoadAsync).
func RunLoadViaAsync(ctx context.Context, c, follow *api.Client, chainID string, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	return runLoad(ctx, c, follow, chainID, consumers, perConsumer, n, timeout, loadAsync, 0)
}

// RunLoadWaiting has every consumer submit perConsumer n×n matmul jobs, each only once
// the previous one has ended: a closed loop, so the rate is what the network sustains and
// the latency is a job's own, not time spent behind the consumer's other jobs.
func RunLoadWaiting(ctx context.Context, c *api.Client, chainID string, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration) (LoadResult, error) {
	return runLoad(ctx, c, c, chainID, consumers, perConsumer, n, timeout, loadWaiting, 0)
}

// loadMode is how a consumer of runLoad submits its jobs.
type loadMode int

const (
	loadInFlight loadMode = iota // back to back, each answered once its escrow commits
	loadWaiting                  // each once the one before has ended
	loadAsync                    // back to back, each answered once its escrow is admitted
)

// runLoad runs a load of the given mode; every > 0 has each consumer submit its jobs that
// far apart, the consumers' starts spread evenly over the first interval.
func runLoad(ctx context.Context, c, follow *api.Client, chainID string, consumers []ed25519.PrivateKey, perConsumer, n int, timeout time.Duration, mode loadMode, every time.Duration) (LoadResult, error) {
	var mu sync.Mutex
	res := LoadResult{ByStatus: map[string]int{}}
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	res.Start = start
	for ci, key := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			type sub struct {
				id string
				at time.Time
			}
			var subs []sub
			followed := 0 // subs already followed to their end
			followNext := func() {
				s := subs[followed]
				followed++
				j, ferr := FollowToEnd(ctx, follow, s.id)
				mu.Lock()
				defer mu.Unlock()
				res.Submitted++
				res.IDs = append(res.IDs, s.id)
				switch {
				case ferr != nil:
					res.ByStatus["open"]++
					res.Unsettled = append(res.Unsettled, fmt.Sprintf("%s: still %s when the run ended", s.id, j.Status))
				case j.Status == api.StatusSettled:
					res.ByStatus[j.Status]++
					took := settledAfter(j, s.at)
					res.Latencies = append(res.Latencies, took)
					res.SettledAt = append(res.SettledAt, s.at.Add(took))
				default:
					res.ByStatus[j.Status]++
					res.Unsettled = append(res.Unsettled, fmt.Sprintf("%s: %s (%s)", s.id, j.Status, j.Error))
				}
			}
			submit := c
			err := func() error {
				acc, err := c.Account(ctx, string(keys.AddressOfKey(key)))
				if err != nil {
					return err
				}
				for j := range perConsumer {
					if every > 0 {
						due := start.Add(every*time.Duration(j) + every*time.Duration(ci)/time.Duration(len(consumers)))
						select {
						case <-ctx.Done():
							return ctx.Err()
						case <-time.After(time.Until(due)):
						}
					}
					spec, data, err := MatMulSpec(n, uint64(ci*100_000+j))
					if err != nil {
						return err
					}
					spec.TimeoutSeconds = uint64(timeout / time.Second)
					tx, err := ledger.SignTx(key, chainID, acc.Seq+uint64(j), ledger.Msg{CreateJob: &ledger.MsgCreateJob{
						SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
						Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
					}})
					if err != nil {
						return err
					}
					at := time.Now()
					req := api.SubmitJobRequest{Spec: spec, InputData: data, Tx: tx, Async: mode == loadAsync}
					job, err := submitBusy(ctx, submit, req, submit == follow)
					var answered *api.ResponseError
					if err != nil && submit != follow && (!errors.As(err, &answered) || errors.Is(err, api.ErrUnavailable)) {
						// No answer (the router may have died mid-request), or 503 (it is cut off
						// from its cluster or its chain node). Send the same signed job to the
						// other router, and the rest too: once the first one's escrow of it has
						// committed, the other answers with the job; a conflict there means the
						// first one took it and lost it before its escrow (the caller finds it
						// by its sequence should it be escrowed after all: one never escrowed
						// is forgotten, and following it would wait to the end of the run).
						submit = follow
						if job, err = submitBusy(ctx, submit, req, true); errors.Is(err, api.ErrConflict) {
							continue
						}
					}
					if err != nil {
						return fmt.Errorf("consumer %d job %d: %w", ci, j, err)
					}
					subs = append(subs, sub{job.ID, at})
					mu.Lock()
					if at.After(res.LastSubmit) {
						res.LastSubmit = at
					}
					mu.Unlock()
					if mode == loadWaiting {
						followNext()
					}
				}
				return nil
			}()
			for followed < len(subs) {
				followNext()
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(res.Latencies, func(a, b int) bool { return res.Latencies[a] < res.Latencies[b] })
	res.Took = time.Since(start)
	return res, errors.Join(errs...)
}

// settledAfter is how long after at job j settled: to its settled event, or to now.
func settledAfter(j api.Job, at time.Time) time.Duration {
	for _, e := range slices.Backward(j.Events) {
		if e.Stage == api.StatusSettled && e.Time.After(at) {
			return e.Time.Sub(at)
		}
	}
	return time.Since(at)
}

// submitBusy submits req, and again after the wait the router asks for while it answers
// that nothing was escrowed and it may take the job later: 429 (it holds as many
// unfinished jobs as it takes, or another router holds the job unescrowed for a few
// seconds more) until ctx ends, as a patient consumer would wait for room, and 503 with a
// Retry-After (its job store elects a new leader, say) up to unavailableRetries times when
// patient, that is when there is no other router to send the job to.
func submitBusy(ctx context.Context, c *api.Client, req api.SubmitJobRequest, patient bool) (api.Job, error) {
	for unavailable := 0; ; {
		job, err := c.SubmitJob(ctx, req)
		var re *api.ResponseError
		if !errors.As(err, &re) {
			return job, err
		}
		switch {
		case errors.Is(err, api.ErrTooManyRequests):
		case patient && errors.Is(err, api.ErrUnavailable) && re.RetryAfter > 0 && unavailable < unavailableRetries:
			unavailable++
		default:
			return job, err
		}
		select {
		case <-ctx.Done():
			return job, err
		case <-time.After(max(re.RetryAfter, 100*time.Millisecond)):
		}
	}
}

// unavailableRetries is how many times submitBusy sends a job again that a router
// refused with 503 and a Retry-After.
const unavailableRetries = 5

// Percentile is the submit→settled latency below which a fraction q of the settled jobs
// fall (q in [0,1]); zero when none settled.
func (r LoadResult) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

// SettledPerSecond is the settled jobs over the run's wall time: from the first
// submission to the last job's end, so it counts the run's start, before the first jobs
// settle, and its drain, after the last submission, and a paced run reads below the rate
// it kept up with (20,480 jobs paced at 1,000 a second, each settling in about a second,
// read 880 on a 2-core VM).
func (r LoadResult) SettledPerSecond() float64 {
	return float64(r.ByStatus[api.StatusSettled]) / r.Took.Seconds()
}

// SteadyPerSecond is the rate jobs settled at while the load was steady: the jobs that
// settled from warmup after the start until the last submission, over that window, which
// leaves out the start and the drain that SettledPerSecond counts. A run that falls
// behind its rate shows it here as in its latencies. Zero when the window is under a
// second.
func (r LoadResult) SteadyPerSecond(warmup time.Duration) float64 {
	from := r.Start.Add(warmup)
	window := r.LastSubmit.Sub(from)
	if window < time.Second {
		return 0
	}
	n := 0
	for _, at := range r.SettledAt {
		if !at.Before(from) && !at.After(r.LastSubmit) {
			n++
		}
	}
	return float64(n) / window.Seconds()
}

// FollowToEnd follows a job until it has ended: settled, failed, cancelled or expired. It
// listens to the job's event stream (Client.WaitJob), which the router pushes from its
// own events, as a consumer waiting on many jobs should rather than poll each; when the
// stream ends in an error it polls every 100 ms and listens again. A router that does
// not answer (restarting, say) is asked again until ctx ends.
func FollowToEnd(ctx context.Context, c *api.Client, id string) (api.Job, error) {
	var last api.Job
	for {
		if j, err := c.WaitJob(ctx, id, nil); err == nil {
			return j, nil
		}
		j, err := c.Job(ctx, id)
		if err == nil {
			last = j
			switch j.Status {
			case api.StatusSettled, api.StatusFailed, api.StatusCancelled, api.StatusExpired:
				return j, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
