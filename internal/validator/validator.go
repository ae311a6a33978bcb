// Package validator is the Proof-of-Computation verifier daemon. It receives verification
// requests from a router, re-derives everything it checks from the chain (the spec
// commitment, the committed result digest and the seed drawn from the block that recorded
// the result), fetches inputs and output from the object store (integrity-checked by
// hash), runs the check (Freivalds for matrix products) and posts its attestation on
// chain, where the ledger settles or refunds.
//
// It trusts neither the router nor the node: a request whose spec does not hash to the
// on-chain commitment is refused.
package validator

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/txbatch"
	"github.com/omnisync/omnisync/internal/verify"
)

// Chain is what the validator needs from the settlement layer (chain.Wallet implements it).
type Chain interface {
	Send(ctx context.Context, msg ledger.Msg) (txHash string, err error)
	// SendBatch sends a batch message and returns each item's outcome (nil: applied).
	SendBatch(ctx context.Context, msg ledger.Msg) (txHash string, items []error, err error)
	Query(ctx context.Context, path string, v any) error
}

// Options configure a validator daemon.
type Options struct {
	Key       ed25519.PrivateKey
	RouterURL string
	RootCAs   *x509.CertPool
	Chain     Chain
	// Rounds of Freivalds' check; each errs with probability below 2^-60.
	Rounds int
	// Parallel bounds the checks that run at once (they are CPU-bound); default the
	// number of CPUs the process may use.
	Parallel int
	// AttestWindow is how long an attestation waits for others to share its tx, and
	// AttestBatchMax how many may: checks that end close together attest in one
	// ledger.MsgAttestJobs. Default txbatch.DefaultWindow and ledger.MaxBatchItems; a
	// negative window sends every attestation alone.
	AttestWindow   time.Duration
	AttestBatchMax int
	Heartbeat      time.Duration
	Logger         *slog.Logger
	// Metrics is where the daemon's Prometheus series are registered (metrics.go); nil
	// counts them in a registry nothing serves.
	Metrics prometheus.Registerer
}

// Daemon is a running validator. It checks several jobs at once, up to Options.Parallel:
// one request at a time held a whole network to one attested job per block.
type Daemon struct {
	opts    Options
	id      string
	log     *slog.Logger
	session *transport.Session
	blobs   transport.Blobs

	slots    chan struct{}  // one per check that may run
	checks   sync.WaitGroup // running checks, drained at Close
	mu       sync.Mutex
	inFlight map[string]*check // by job id: a request asked again joins the check under way
	metrics  *validatorMetrics

	attester     *txbatch.Batcher   // collects attestations into batches; runs from Start to Close
	stopAttester context.CancelFunc // nil until Start
	attesterDone chan struct{}      // closed when the attester has stopped
}

// check is one job's verification under way; done closes when verdict is set.
type check struct {
	done    chan struct{}
	verdict protocol.Verdict
}

// New validates options.
func New(opts Options) (*Daemon, error) {
	if len(opts.Key) != ed25519.PrivateKeySize || opts.Chain == nil || opts.RouterURL == "" {
		return nil, errors.New("validator: key, chain and router url are required")
	}
	if opts.Rounds <= 0 {
		opts.Rounds = verify.DefaultRounds
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 2 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	id := string(keys.AddressOfKey(opts.Key))
	d := &Daemon{opts: opts, id: id, log: opts.Logger.With("validator", keys.Address(id).Short()),
		slots: make(chan struct{}, opts.Parallel), inFlight: map[string]*check{},
		attester: txbatch.New(opts.Chain, opts.AttestWindow, opts.AttestBatchMax), attesterDone: make(chan struct{})}
	if err := d.registerMetrics(opts.Metrics); err != nil {
		return nil, err
	}
	return d, nil
}

// ID is the validator's account address.
func (d *Daemon) ID() string { return d.id }

// Start connects to the router and serves verification requests.
func (d *Daemon) Start(ctx context.Context) error {
	// The attester outlives the session: Close drains the checks, which wait for their
	// attestations, before it stops the attester.
	actx, stop := context.WithCancel(context.Background())
	d.stopAttester = stop
	go func() {
		defer close(d.attesterDone)
		d.attester.Run(actx)
	}()
	sess, err := transport.StartSession(ctx, transport.SessionOptions{
		Dial: transport.DialOptions{
			URL: d.opts.RouterURL, Key: d.opts.Key, RootCAs: d.opts.RootCAs, Name: "validator-" + d.id,
			OnError: func(err error) { d.log.Warn("router connection", "err", err) },
			Logger:  d.opts.Logger,
		},
		Inbox:     protocol.VerifySubject(d.id),
		Handle:    d.serve,
		Drain:     d.checks.Wait,
		Heartbeat: d.opts.Heartbeat,
		Beat: func() (string, []byte) {
			return protocol.HeartbeatSubject(d.id), protocol.Encode(protocol.Heartbeat{ID: d.id, Role: protocol.RoleValidator, Sent: time.Now().UTC()})
		},
	})
	if err != nil {
		d.stop()
		return err
	}
	d.session = sess
	d.blobs = transport.Blobs{Conn: sess.Conn, ID: d.id, Bucket: protocol.BlobBucket}
	return nil
}

// Close stops the daemon: it stops taking requests, lets the checks under way attest and
// answer, then stops the attester.
func (d *Daemon) Close() error {
	if d.session != nil {
		d.session.Close()
	}
	d.stop()
	return nil
}

// stop ends the attester and waits for the batches it sent.
func (d *Daemon) stop() {
	if d.stopAttester != nil {
		d.stopAttester()
		<-d.attesterDone
		d.stopAttester = nil
	}
}

// serve answers a verify request on its own goroutine, so the session's next request is
// not held behind this one's check.
func (d *Daemon) serve(ctx context.Context, m *nats.Msg) {
	d.checks.Add(1)
	go func() {
		defer d.checks.Done()
		if err := m.Respond(protocol.Encode(d.handle(ctx, m.Data))); err != nil {
			d.log.Warn("reply to verify request", "err", err)
		}
	}()
}

// handle checks the requested job once, however often it is asked while the check runs:
// a request repeated (the router asks again when answers are slow) gets the same verdict
// rather than a second attestation the chain would refuse.
func (d *Daemon) handle(ctx context.Context, data []byte) protocol.Verdict {
	req, err := protocol.Decode[protocol.VerifyRequest](data)
	if err != nil {
		return protocol.Verdict{JobID: "?", Error: err.Error()}
	}
	d.mu.Lock()
	c, joined := d.inFlight[req.JobID]
	if !joined {
		c = &check{done: make(chan struct{})}
		d.inFlight[req.JobID] = c
	}
	d.mu.Unlock()
	if joined {
		select {
		case <-c.done:
			return c.verdict
		case <-ctx.Done():
			return protocol.Verdict{JobID: req.JobID, Error: ctx.Err().Error()}
		}
	}
	defer func() {
		d.mu.Lock()
		delete(d.inFlight, req.JobID)
		d.mu.Unlock()
		close(c.done)
	}()
	select {
	case d.slots <- struct{}{}:
		defer func() { <-d.slots }()
	case <-ctx.Done():
		c.verdict = protocol.Verdict{JobID: req.JobID, Error: ctx.Err().Error()}
		return c.verdict
	}
	c.verdict = d.verifyRequest(ctx, req)
	return c.verdict
}

// verifyRequest verifies one decoded request and words the outcome as a Verdict.
func (d *Daemon) verifyRequest(ctx context.Context, req protocol.VerifyRequest) protocol.Verdict {
	began := time.Now()
	v, err := d.Verify(ctx, req)
	d.metrics.checked(v, err, time.Since(began))
	if err != nil {
		d.log.Warn("verification not attested", "job", req.JobID, "err", err)
		return protocol.Verdict{JobID: req.JobID, Error: err.Error()}
	}
	return v
}

// Verify checks one committed job and attests the verdict on chain, in one tx with the
// other attestations decided within AttestWindow. An error means no attestation was made
// (the request was bad, the chain refused this job's item or was unreachable); a wrong
// result is not an error but a failing verdict.
func (d *Daemon) Verify(ctx context.Context, req protocol.VerifyRequest) (protocol.Verdict, error) {
	job, err := d.committedJob(ctx, req.JobID)
	if err != nil {
		return protocol.Verdict{}, err
	}
	if job.Status != ledger.JobComputed {
		return protocol.Verdict{}, fmt.Errorf("job %s is %s, not awaiting verification", job.ID, job.Status)
	}
	if got := req.Spec.Hash(); got != job.SpecHash {
		return protocol.Verdict{}, fmt.Errorf("spec hashes to %s but the consumer committed %s", got, job.SpecHash)
	}
	seedBytes, err := hex.DecodeString(job.Seed)
	if err != nil || len(seedBytes) != 32 {
		return protocol.Verdict{}, fmt.Errorf("job %s has no usable seed", job.ID)
	}
	var seed [32]byte
	copy(seed[:], seedBytes)

	pass, reason, ops := true, "", uint64(0)
	blobs := d.blobs.Via(req.Router)
	inputs := make([][]byte, len(req.Spec.Inputs))
	for i, in := range req.Spec.Inputs {
		if inputs[i], err = blobs.Get(ctx, in.Digest); err != nil {
			return protocol.Verdict{}, fmt.Errorf("fetch input %s: %w", in.Name, err)
		}
	}
	output, err := blobs.Get(ctx, job.ResultDigest)
	switch {
	case errors.Is(err, transport.ErrNotFound):
		// The store files an upload only after checking its bytes against the digest, so
		// a committed digest that names nothing was never uploaded: the node's fault.
		// A mismatch, by contrast, is the store's own fault and never evidence against
		// the node: it falls through to the error below and nothing is attested.
		pass, reason = false, "committed output was never uploaded: "+err.Error()
	case err != nil:
		return protocol.Verdict{}, fmt.Errorf("fetch output: %w", err)
	default:
		verdict, err := verify.CheckKernel(req.Spec.Workload.Kernel, inputs, output, seed, d.opts.Rounds)
		if err != nil {
			return protocol.Verdict{}, fmt.Errorf("check: %w", err)
		}
		pass, reason, ops = verdict.OK, verdict.Reason, verdict.Ops
	}
	// The operation count is the work the node is billed for, computed here from inputs
	// the spec commits to rather than taken from the node's report of its GPU time.
	tx, err := d.attester.Send(ctx, ledger.Msg{Attest: &ledger.MsgAttest{
		JobID: job.ID, ResultDigest: job.ResultDigest, Pass: pass, Reason: truncate(reason, 256), Ops: ops,
	}})
	if err != nil {
		return protocol.Verdict{}, fmt.Errorf("attest: %w", err)
	}
	d.log.Info("attested", "job", job.ID, "pass", pass, "reason", reason, "ops", ops)
	return protocol.Verdict{JobID: job.ID, Pass: pass, Reason: reason, AttestTx: tx}, nil
}

// resultWait bounds how long Verify waits for the chain node it reads to show a result
// that another chain node has already committed (it may be a block behind).
const resultWait = 5 * time.Second

// committedJob reads the job, waiting up to resultWait while it still shows as created or
// assigned.
func (d *Daemon) committedJob(ctx context.Context, id string) (ledger.Job, error) {
	deadline := time.Now().Add(resultWait)
	for {
		var job ledger.Job
		if err := d.opts.Chain.Query(ctx, "job/"+id, &job); err != nil {
			return job, fmt.Errorf("look up job: %w", err)
		}
		if (job.Status != ledger.JobCreated && job.Status != ledger.JobAssigned) || time.Now().After(deadline) {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
