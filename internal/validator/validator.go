// Package validator is the Proof-of-Computation verifier daemon. It receives verification
// requests from a router, re-derives everything it checks from the chain (the spec
// commitment, the committed result digest and the seed drawn from the block that recorded
// the result), fetches inputs and output from the object store (integrity-checked by
// hash), runs the check its job's level asks for and posts its attestation on chain,
// where the ledger settles or refunds. The levels: freivalds (Freivalds' check of a
// matrix product), challenge (the rows the router hid in the input, and the whole product
// when the job is audited; challenge.go) and audit (a job the chain drew for audit,
// checked as freivalds does, or, for a container, run again; audit.go) and zk (the node's
// Groth16 proof of an int8 MLP, verified against the spec's commitments; zk.go). It also
// audits other validators: when the chain draws a settled job's attestations for audit,
// it reports the passes its own check contradicts (attestaudit.go).
//
// It trusts neither the router nor the node: a request whose spec does not hash to the
// on-chain commitment is refused, and so is a challenge the router revealed falsely.
// What goes wrong on the router's side or its own is never attested against the node.
package validator

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/blockwait"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/txbatch"
	"github.com/omnisync/omnisync/internal/verify"
	"github.com/omnisync/omnisync/internal/zk"
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
	// Containers re-runs the container jobs drawn for audit, as a node runs them (docker);
	// nil means this validator audits tensor jobs only, and a container audit it is asked
	// for is an error, never a failing attestation.
	Containers runtime.Container
	// GPU, when set, computes the products of Freivalds' checks of int8 products
	// (cuda.Device); nil checks on the CPU. gpucheck.go says what it is trusted with.
	GPU verify.Accelerator
	// ZKKeys holds the verifying keys of the deployment's zk setup (the directory its
	// nodes prove with); this validator only reads them, never makes keys. Nil means zk
	// jobs are an error, never a failing attestation.
	ZKKeys *zk.KeyCache
	// Parallel bounds the checks whose CPU-bound part (a product's check, a container's
	// run, a proof's verification) runs at once; default the number of CPUs the process
	// may use. Reading the chain, fetching blobs and waiting for attestations' blocks
	// happen outside it, for any number of checks.
	Parallel int
	// AttestWindow is how long an attestation waits for others to share its tx, and
	// AttestBatchMax how many may: checks that end close together attest in one
	// ledger.MsgAttestJobs. Default txbatch.DefaultWindow and ledger.MaxBatchItems; a
	// negative window sends every attestation alone.
	AttestWindow   time.Duration
	AttestBatchMax int
	Heartbeat      time.Duration
	// Capacity configures the proof-of-capacity checker (capacity.go); it runs only
	// when Capacity.Every > 0.
	Capacity CapacityOptions
	// AuditEvery is how often the daemon reads the chain's open audits of attestations
	// and audits those of jobs it checked (attestaudit.go); default 2 s, negative never.
	AuditEvery time.Duration
	// OutputPatience is how long a committed output that cannot be found is looked for
	// again before the check finds it never uploaded; default DefaultOutputPatience.
	OutputPatience time.Duration
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

	prover         capacityProver     // reaches nodes for capacity challenges; set at Start
	stopCapacity   context.CancelFunc // nil unless the capacity checker runs
	capacityChecks sync.WaitGroup     // the checker's loop and its challenges

	findings   findings           // what its checks found, for audits of attestations
	stopAudits context.CancelFunc // nil unless the audit loop runs
	audits     sync.WaitGroup     // the audit loop
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
		opts.Parallel = goruntime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Capacity.Every > 0 {
		opts.Capacity.setDefaults()
	}
	if opts.AuditEvery == 0 {
		opts.AuditEvery = 2 * time.Second
	}
	if opts.OutputPatience <= 0 {
		opts.OutputPatience = DefaultOutputPatience
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
	if d.opts.Capacity.Every > 0 {
		if d.prover == nil {
			d.prover = natsProver{conn: sess.Conn, id: d.id}
		}
		cctx, stop := context.WithCancel(context.Background())
		d.stopCapacity = stop
		d.capacityChecks.Add(1)
		go func() {
			defer d.capacityChecks.Done()
			d.runCapacity(cctx)
		}()
	}
	if d.opts.AuditEvery > 0 {
		actx, stop := context.WithCancel(context.Background())
		d.stopAudits = stop
		d.audits.Add(1)
		go func() {
			defer d.audits.Done()
			d.runAudits(actx)
		}()
	}
	return nil
}

// Close stops the daemon: it stops taking requests, lets the checks under way attest and
// answer, then stops the attester.
func (d *Daemon) Close() error {
	if d.stopCapacity != nil {
		d.stopCapacity()
		d.capacityChecks.Wait()
	}
	if d.stopAudits != nil {
		d.stopAudits()
		d.audits.Wait()
	}
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

// Verify checks one committed job at its verification level and attests the verdict on
// chain, in one tx with the other attestations decided within AttestWindow. An error
// means no attestation was made (the request was bad, the router or this validator was
// at fault, the chain refused this job's item or was unreachable); a wrong result is not
// an error but a failing verdict.
//
// Its finding is kept for an audit of the job's attestations (attestaudit.go), even when
// the job was settled by the others before this check ended and nothing is attested.
func (d *Daemon) Verify(ctx context.Context, req protocol.VerifyRequest) (protocol.Verdict, error) {
	c, f, err := d.check(ctx, req)
	if err != nil {
		return protocol.Verdict{}, err
	}
	d.remember(c.job, f)
	if c.job.Status != ledger.JobComputed {
		return protocol.Verdict{}, fmt.Errorf("job %s was %s before this check: its finding is kept for the audit of its attestations, not attested", c.job.ID, c.job.Status)
	}
	return d.attest(ctx, c.job, f)
}

// check reads the job and checks its result as its level says.
func (d *Daemon) check(ctx context.Context, req protocol.VerifyRequest) (jobCheck, finding, error) {
	c, err := d.jobToCheck(ctx, req)
	if err != nil {
		return c, finding{}, err
	}
	var f finding
	switch c.job.Verification {
	case ledger.VerifyChallenge:
		f, err = d.checkChallenge(ctx, c)
	case ledger.VerifyAudit:
		f, err = d.audit(ctx, c)
	case ledger.VerifyZK:
		f, err = d.checkZK(ctx, c)
	default:
		f, err = d.checkFreivalds(ctx, c)
	}
	return c, f, err
}

// busy takes one of the Parallel slots for a check's CPU-bound part: a validator that
// held one while it fetched blobs checked a few jobs at a time whatever its cores (with a
// store slow under load, 150 ms of fetching to a microsecond of checking).
func (d *Daemon) busy(ctx context.Context) (release func(), err error) {
	select {
	case d.slots <- struct{}{}:
		return func() { <-d.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// jobCheck is one job under check: the request, the job as the chain records it, the
// seed drawn for it and the blob client that reads through the request's router.
type jobCheck struct {
	req      protocol.VerifyRequest
	job      ledger.Job
	seed     [32]byte
	blobs    transport.Blobs
	patience time.Duration // Options.OutputPatience
	log      *slog.Logger
}

// finding is a check's verdict on the node's result, as its attestation states it. Ops
// is the tensor work the node is billed for, computed here from inputs the spec commits
// to rather than taken from the node's report of its GPU time; Millis is the time a
// container took when this validator ran it again; transcript is a passing Freivalds
// check's (verify.Verdict.Transcript), which the attestation states bound to this
// validator.
type finding struct {
	pass       bool
	reason     string
	ops        uint64
	millis     uint64
	transcript string
}

func fromVerdict(v verify.Verdict) finding {
	return finding{pass: v.OK, reason: v.Reason, ops: v.Ops, transcript: v.Transcript}
}

// jobToCheck reads the job from the chain and refuses a request it cannot be checked for:
// a job not awaiting verification, a spec the consumer did not commit to, no seed. A job
// the others settled while this request was on its way is still checked when its
// attestations were drawn for audit: the finding serves the audit (Verify).
func (d *Daemon) jobToCheck(ctx context.Context, req protocol.VerifyRequest) (jobCheck, error) {
	job, err := d.committedJob(ctx, req.JobID)
	if err != nil {
		return jobCheck{}, err
	}
	if job.Status != ledger.JobComputed && !(job.Status == ledger.JobSettled && job.AttestationsAudited) {
		return jobCheck{}, fmt.Errorf("job %s is %s, not awaiting verification", job.ID, job.Status)
	}
	if got := req.Spec.Hash(); got != job.SpecHash {
		return jobCheck{}, fmt.Errorf("spec hashes to %s but the consumer committed %s", got, job.SpecHash)
	}
	seedBytes, err := hex.DecodeString(job.Seed)
	if err != nil || len(seedBytes) != 32 {
		return jobCheck{}, fmt.Errorf("job %s has no usable seed", job.ID)
	}
	c := jobCheck{req: req, job: job, blobs: d.blobs.Via(req.Router), patience: d.opts.OutputPatience, log: d.log}
	copy(c.seed[:], seedBytes)
	return c, nil
}

// inputs is the job's inputs by the digests its spec commits to: those the request
// carries that match them, the rest fetched.
func (c jobCheck) inputs(ctx context.Context) ([][]byte, error) {
	return protocol.JobInputs(ctx, c.req.Spec, c.req.Inputs, c.blobs.Get, func(name string, err error) {
		c.log.Warn("verification request carried a wrong input; fetching it", "job", c.req.JobID, "input", name, "err", err)
	})
}

// DefaultOutputPatience is Options.OutputPatience's default. A router's cluster copies a
// blob to its servers in their own time, and the server a validator asks may not yet
// hold the output a node stored through another a moment before: not finding it at once
// is no evidence that it was never uploaded.
const DefaultOutputPatience = 3 * time.Second

// outputRetry is how often a missing output is looked for again.
const outputRetry = 250 * time.Millisecond

// output fetches the node's committed output, asking again while it is not found, for
// up to c.patience; neverUploaded reads its error.
func (c jobCheck) output(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(c.patience)
	for {
		out, err := c.blobs.Get(ctx, c.job.ResultDigest)
		if !errors.Is(err, transport.ErrNotFound) || !time.Now().Add(outputRetry).Before(deadline) {
			return out, err
		}
		t := time.NewTimer(outputRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// neverUploaded words a failed fetch of the committed output. The store files an upload
// only after checking its bytes against the digest, so a committed digest that names
// nothing was never uploaded: the node's fault, a failing finding. A mismatch, by
// contrast, is the store's own fault and never evidence against the node: an error, and
// nothing is attested.
func neverUploaded(err error) (finding, error) {
	if errors.Is(err, transport.ErrNotFound) {
		return finding{reason: "committed output was never uploaded: " + err.Error()}, nil
	}
	return finding{}, fmt.Errorf("fetch output: %w", err)
}

// checkFreivalds checks a tensor job's whole output with Freivalds' algorithm
// (verify.CheckKernel, on the GPU where there is one: checkKernel), seeded by the block that
// recorded the result.
func (d *Daemon) checkFreivalds(ctx context.Context, c jobCheck) (finding, error) {
	inputs, err := c.inputs(ctx)
	if err != nil {
		return finding{}, err
	}
	output, err := c.output(ctx)
	if err != nil {
		return neverUploaded(err)
	}
	release, err := d.busy(ctx)
	if err != nil {
		return finding{}, err
	}
	defer release()
	v, err := d.checkKernel(c.req.Spec.Workload.Kernel, inputs, output, c.seed)
	if err != nil {
		return finding{}, fmt.Errorf("check: %w", err)
	}
	return fromVerdict(v), nil
}

// attest sends the finding on the committed result as this validator's attestation.
func (d *Daemon) attest(ctx context.Context, job ledger.Job, f finding) (protocol.Verdict, error) {
	m := &ledger.MsgAttest{JobID: job.ID, ResultDigest: job.ResultDigest, Pass: f.pass, Reason: truncate(f.reason, 256), Ops: f.ops, Millis: f.millis}
	if f.pass && f.transcript != "" {
		m.Transcript = verify.AttestTranscript(f.transcript, d.id)
	}
	tx, err := d.attester.Send(ctx, ledger.Msg{Attest: m})
	if err != nil {
		return protocol.Verdict{}, fmt.Errorf("attest: %w", err)
	}
	d.log.Info("attested", "job", job.ID, "level", job.Verification, "pass", f.pass, "reason", f.reason, "ops", f.ops, "millis", f.millis)
	return protocol.Verdict{JobID: job.ID, Pass: f.pass, Reason: f.reason, AttestTx: tx}, nil
}

// resultWait bounds how long Verify waits for the chain node it reads to show a result
// that another chain node has already committed (it may be a block behind).
const resultWait = 5 * time.Second

// resultPoll is how often a chain that cannot tell its blocks (blockwait.Watch) is read again
// while the result is not there.
const resultPoll = 100 * time.Millisecond

// committedJob reads the job, waiting up to resultWait while it still shows as created or
// assigned: it reads it again at each new block, the only change that can show it. A job
// that shows its result at once, as nearly every one does, costs one read and nothing for
// the wait.
func (d *Daemon) committedJob(ctx context.Context, id string) (ledger.Job, error) {
	job, err := d.readJob(ctx, id)
	if err != nil || !awaitingResult(job) {
		return job, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the wait for blocks
	deadline := time.NewTimer(resultWait)
	defer deadline.Stop()
	blocks := blockwait.Next(ctx, d.opts.Chain)
	for late := false; !late; {
		var poll <-chan time.Time
		if blocks == nil {
			poll = time.After(resultPoll)
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-blocks:
		case <-poll:
		case <-deadline.C:
			late = true
		}
		if job, err = d.readJob(ctx, id); err != nil || !awaitingResult(job) {
			return job, err
		}
	}
	return job, nil // still without its result at the end of resultWait
}

func (d *Daemon) readJob(ctx context.Context, id string) (ledger.Job, error) {
	var job ledger.Job
	if err := d.opts.Chain.Query(ctx, "job/"+id, &job); err != nil {
		return job, fmt.Errorf("look up job: %w", err)
	}
	return job, nil
}

// awaitingResult says the record read does not show the job's result yet.
func awaitingResult(job ledger.Job) bool {
	return job.Status == ledger.JobCreated || job.Status == ledger.JobAssigned
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
