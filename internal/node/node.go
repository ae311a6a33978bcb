// Package node is the Omni-Node daemon: it registers its hardware and stake on chain,
// connects out to a router over NATS (WebSocket + TLS, so home NAT is no obstacle),
// heartbeats, and runs the jobs it is dispatched: tensor kernels in its Runtime, container
// jobs in its Containers runtime (docker, or process for trusted consumers) when it has
// one. Outputs go back through the content-addressed object store and their digests are
// committed on chain; a container job's output is the canonical archive of what it left
// in /outputs and its exit code (api.PackOutput), so replicas of it can be compared.
//
// The transport session owns the connection and the heartbeat loop; each accepted job runs
// in its own goroutine that owns that job until its result is reported. Close stops both
// and waits for them.
package node

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/txbatch"
)

// Chain is what the daemon needs from the settlement layer (chain.Wallet implements it).
type Chain interface {
	Send(ctx context.Context, msg ledger.Msg) (txHash string, err error)
	// SendBatch sends a batch message and returns each item's outcome (nil: applied).
	SendBatch(ctx context.Context, msg ledger.Msg) (txHash string, items []error, err error)
	Query(ctx context.Context, path string, v any) error
}

// Options configure a node daemon.
type Options struct {
	Key       ed25519.PrivateKey
	RouterURL string         // wss://host:port, or several separated by commas; Start needs it, Register not
	RootCAs   *x509.CertPool // trust roots for the router's certificate
	Chain     Chain
	Runtime   runtime.Runtime // tensor kernels
	// Containers runs container jobs; nil means the node takes tensor jobs only, and its
	// heartbeats say so, so no router places a container job on it.
	Containers   runtime.Container
	Hardware     ledger.Hardware
	PricePerHour uint64 // uomni per GPU-hour
	Stake        uint64 // uomni to stake at registration if not yet registered
	Heartbeat    time.Duration
	// CommitWindow is how long a result's commitment (or a replica's seal) waits for
	// others to share its tx, and CommitBatchMax how many may: jobs that end close
	// together on a many-GPU node commit in one ledger.MsgCommitResults. Default
	// txbatch.DefaultWindow and ledger.MaxBatchItems; a negative window commits every
	// result alone. Reveals always go alone: the ledger has no batch of them.
	CommitWindow   time.Duration
	CommitBatchMax int
	// Capacity solves the proof-of-capacity challenges validators send (capacity.go);
	// default the native runtime's GPU where it has one, else the CPU
	// (verify.SolveCapacityWhile). A node with a faster runtime plugs it in here, and a
	// test plants a liar.
	Capacity CapacitySolver
	// Now is the node's clock (default time.Now): it stamps heartbeats and judges the
	// router's certificate. A host's clock may be wrong; nothing the network decides
	// rests on it (the router times nodes by its own clock).
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics is where the daemon's Prometheus series are registered (metrics.go); nil
	// counts them in a registry nothing serves.
	Metrics prometheus.Registerer
}

func (o *Options) validate() error {
	switch {
	case len(o.Key) != ed25519.PrivateKeySize:
		return errors.New("node: a wallet key is required")
	case o.Chain == nil || o.Runtime == nil:
		return errors.New("node: chain and runtime are required")
	case o.Hardware.GPUs == 0:
		return errors.New("node: hardware must declare at least one gpu")
	case o.PricePerHour == 0:
		return errors.New("node: price per hour must be positive")
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Capacity == nil {
		o.Capacity = defaultCapacitySolver
		if native, ok := o.Runtime.(runtime.Native); ok && native.GPU != nil {
			o.Capacity = gpuCapacitySolver(native.GPU)
		}
	}
	return nil
}

// Daemon is a running node.
type Daemon struct {
	opts Options
	id   string
	log  *slog.Logger

	session *transport.Session
	conn    *nats.Conn
	blobs   transport.Blobs

	mu      sync.Mutex
	running map[string]runningJob // by job id
	wg      sync.WaitGroup        // running jobs
	metrics *nodeMetrics

	committer     *txbatch.Batcher   // collects result commitments into batches; runs from Start to Close
	stopCommitter context.CancelFunc // nil until Start
	committerDone chan struct{}      // closed when the committer has stopped

	capacity capacityState // proof-of-capacity challenges (capacity.go)

	judging  atomic.Bool // a refusal is being checked against the chain (standing.go)
	stopOnce sync.Once
	stopped  chan struct{} // closed when the node stops on its own
	stopErr  error         // why; under mu
}

// runningJob is one accepted job: it holds its slots (one per GPU it asked for, at least
// one) until it has reported.
type runningJob struct {
	cancel context.CancelFunc
	slots  int
}

// New validates options; Start does the work.
func New(opts Options) (*Daemon, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	id := string(keys.AddressOfKey(opts.Key))
	d := &Daemon{opts: opts, id: id, log: opts.Logger.With("node", keys.Address(id).Short()), running: map[string]runningJob{}, stopped: make(chan struct{}), capacity: capacityState{solved: map[string]solvedChallenge{}, refused: map[string]time.Time{}},
		committer: txbatch.New(opts.Chain, opts.CommitWindow, opts.CommitBatchMax), committerDone: make(chan struct{})}
	if err := d.registerMetrics(opts.Metrics); err != nil {
		return nil, err
	}
	return d, nil
}

// ID is the node's id: its wallet address.
func (d *Daemon) ID() string { return d.id }

// Hardware is what the node declares at registration (detected or configured).
func (d *Daemon) Hardware() ledger.Hardware { return d.opts.Hardware }

// Containers names the node's container runtime and whether it sandboxes jobs; "" when
// it runs tensor kernels only.
func (d *Daemon) Containers() (name string, sandboxed bool) {
	if c := d.opts.Containers; c != nil {
		return c.Name(), c.Sandboxed()
	}
	return "", false
}

// Register stakes and registers the node on chain unless it already is. It returns the
// registration tx hash, or "" when the node was registered before.
func (d *Daemon) Register(ctx context.Context) (string, error) {
	var n ledger.Node
	err := d.opts.Chain.Query(ctx, "node/"+d.id, &n)
	if err == nil {
		return "", nil
	}
	if !errors.Is(err, ledger.ErrNotFound) {
		return "", fmt.Errorf("look up node registration: %w", err)
	}
	tx, err := d.opts.Chain.Send(ctx, ledger.Msg{RegisterNode: &ledger.MsgRegisterNode{
		Stake: d.opts.Stake, PricePerHour: d.opts.PricePerHour, Hardware: d.opts.Hardware,
	}})
	if err != nil {
		return "", fmt.Errorf("register node: %w", err)
	}
	d.log.Info("registered on chain", "stake_omni", ledger.FormatOMNI(d.opts.Stake), "tx", tx)
	return tx, nil
}

// Start registers if needed, connects to the router and begins serving jobs.
func (d *Daemon) Start(ctx context.Context) error {
	if d.opts.RouterURL == "" {
		return errors.New("node: a router url is required to serve jobs (wss://HOST:PORT)")
	}
	if _, err := d.Register(ctx); err != nil {
		return err
	}
	// The committer outlives the session: Close lets the running jobs commit and report
	// before it stops the committer.
	cctx, stop := context.WithCancel(context.Background())
	d.stopCommitter = stop
	go func() {
		defer close(d.committerDone)
		d.committer.Run(cctx)
	}()
	sess, err := transport.StartSession(ctx, transport.SessionOptions{
		Dial: transport.DialOptions{
			URL: d.opts.RouterURL, Key: d.opts.Key, RootCAs: d.opts.RootCAs, Name: "node-" + d.id, Now: d.opts.Now,
			OnError: d.onConnError,
			Logger:  d.opts.Logger,
		},
		Inbox: protocol.DispatchSubject(d.id), Handle: d.onDispatch,
		Heartbeat: d.opts.Heartbeat, Beat: d.heartbeat,
		Drain: d.wg.Wait, // running jobs end with the session's context; let them report
	})
	if err != nil {
		d.stopCommitting()
		return err
	}
	d.mu.Lock()
	d.session, d.conn = sess, sess.Conn
	d.mu.Unlock()
	d.blobs = transport.Blobs{Conn: sess.Conn, ID: d.id, Bucket: protocol.BlobBucket}
	_, err = sess.Conn.Subscribe(protocol.PaceSubject, d.onPace)
	if err == nil {
		err = d.serveCapacity(cctx, sess.Conn) // challenges end when the committer does, at Close
	}
	if err == nil {
		err = sess.Conn.Flush()
	}
	if err != nil {
		sess.Close()
		d.stopCommitting()
		return fmt.Errorf("node: subscribe to the router's pace: %w", err)
	}
	containers := "none"
	if d.opts.Containers != nil {
		containers = d.opts.Containers.Name()
	}
	d.log.Info("serving jobs", "router", d.opts.RouterURL, "runtime", d.opts.Runtime.Name(), "containers", containers)
	return nil
}

// Close stops accepting work, cancels running jobs, lets them report, and disconnects.
func (d *Daemon) Close() error {
	if d.session != nil {
		d.session.Close()
	}
	d.stopCommitting()
	d.capacity.wg.Wait()
	return nil
}

// stopCommitting ends the committer and waits for the batches it sent.
func (d *Daemon) stopCommitting() {
	if d.stopCommitter != nil {
		d.stopCommitter()
		<-d.committerDone
		d.stopCommitter = nil
	}
}

func (d *Daemon) heartbeat() (string, []byte) {
	d.mu.Lock()
	running := make([]string, 0, len(d.running))
	for id := range d.running {
		running = append(running, id)
	}
	held := d.heldLocked()
	d.mu.Unlock()
	gpus := int(d.opts.Hardware.GPUs)
	hb := protocol.Heartbeat{
		ID: d.id, Role: protocol.RoleNode, GPUs: gpus, FreeGPUs: gpus - held,
		Running: running, UtilizationPct: 100 * held / gpus, Sent: d.opts.Now().UTC(),
	}
	if c := d.opts.Containers; c != nil {
		hb.Containers, hb.Unsandboxed = c.Name(), !c.Sandboxed()
	}
	return protocol.HeartbeatSubject(d.id), protocol.Encode(hb)
}

// maxHeartbeat bounds the interval a router's pace may set: a node heartbeats at least
// this often whatever it is told.
const maxHeartbeat = time.Minute

// heartbeatInterval is how often a node whose own interval is own heartbeats when the
// router's pace is pace: the slower of the two, at most maxHeartbeat. Changes of state are
// sent at once (beatNow), so a slow pace delays only the news that nothing changed.
func heartbeatInterval(own, pace time.Duration) time.Duration {
	return min(max(own, pace), max(own, maxHeartbeat))
}

// onPace takes up the router's pace (protocol.Pace).
func (d *Daemon) onPace(m *nats.Msg) {
	p, err := protocol.Decode[protocol.Pace](m.Data)
	if err != nil {
		d.log.Debug("bad pace", "err", err)
		return
	}
	d.mu.Lock()
	sess := d.session
	d.mu.Unlock()
	if sess != nil {
		sess.SetHeartbeat(heartbeatInterval(d.opts.Heartbeat, p.Interval()))
	}
}

// beatNow heartbeats at once: the node's free GPUs or running jobs changed.
func (d *Daemon) beatNow() {
	d.mu.Lock()
	sess := d.session
	d.mu.Unlock()
	if sess != nil {
		sess.BeatNow()
	}
}

// heldLocked counts the slots the running jobs hold; d.mu must be held.
func (d *Daemon) heldLocked() int {
	n := 0
	for _, rj := range d.running {
		n += rj.slots
	}
	return n
}

func (d *Daemon) onDispatch(ctx context.Context, m *nats.Msg) {
	reply := func(a protocol.Ack) {
		d.metrics.answered(a)
		if err := m.Respond(protocol.Encode(a)); err != nil {
			d.log.Warn("reply to dispatch", "err", err)
		}
	}
	req, err := protocol.Decode[protocol.Dispatch](m.Data)
	if err != nil {
		reply(protocol.Ack{Error: err.Error()})
		return
	}
	if req.Cancel {
		d.mu.Lock()
		rj, ok := d.running[req.JobID]
		d.mu.Unlock()
		if ok {
			d.log.Info("job cancelled by the router", "job", req.JobID)
			rj.cancel()
		}
		reply(protocol.Ack{Accepted: true})
		return
	}
	if req.Spec.Workload.Kind == api.WorkloadContainer && d.opts.Containers == nil {
		reply(protocol.Ack{Error: fmt.Sprintf("%v: this node runs no container jobs", runtime.ErrUnsupported)})
		return
	}
	slots := req.Spec.Resources.Slots()
	d.mu.Lock()
	_, dup := d.running[req.JobID]
	full := d.heldLocked()+slots > int(d.opts.Hardware.GPUs)
	var jobCtx context.Context
	var cancel context.CancelFunc
	if !dup && !full {
		jobCtx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second)
		d.running[req.JobID] = runningJob{cancel: cancel, slots: slots}
	}
	d.mu.Unlock()
	switch {
	case dup:
		reply(protocol.Ack{Accepted: true}) // a retried dispatch of a job already running
		return
	case full:
		reply(protocol.Ack{Error: protocol.DeclineNoFreeGPU})
		return
	}
	reply(protocol.Ack{Accepted: true})
	d.beatNow()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		began := time.Now()
		res := d.runJob(jobCtx, req)
		d.metrics.finished(jobCtx, res, time.Since(began))
		if err := d.conn.Publish(protocol.ResultSubject(d.id), protocol.Encode(res)); err != nil {
			d.log.Warn("report result", "job", req.JobID, "err", err)
		}
		cancel()
		d.mu.Lock()
		delete(d.running, req.JobID)
		d.mu.Unlock()
		d.beatNow()
		if res.Error == "" && req.Spec.Verification == api.VerifyRedundant {
			// The slot is free; the reveal only waits on the chain.
			rctx, rcancel := context.WithTimeout(ctx, time.Duration(req.TimeoutSeconds)*time.Second)
			d.reveal(rctx, req.JobID, res.Digest)
			rcancel()
		}
	}()
}

// revealPoll is how often a node that sealed a redundant job's result looks whether every
// replica has sealed, which opens the reveals.
const revealPoll = 200 * time.Millisecond

// reveal opens this node's sealed result once every replica has sealed (ledger.RevealsOpen),
// so that the chain can compare the digests; until then the digest stays with the node, and
// no replica can copy another's. It gives up when the job is decided or ctx ends.
func (d *Daemon) reveal(ctx context.Context, jobID, digest string) {
	t := time.NewTicker(revealPoll)
	defer t.Stop()
	for {
		var cj ledger.Job
		if err := d.opts.Chain.Query(ctx, "job/"+jobID, &cj); err == nil {
			if !cj.Open() {
				return
			}
			if ledger.RevealsOpen(cj) {
				tx, err := d.opts.Chain.Send(ctx, ledger.Msg{RevealResult: &ledger.MsgRevealResult{JobID: jobID, ResultDigest: digest}})
				if err != nil {
					d.log.Warn("reveal result", "job", jobID, "err", err)
					return
				}
				d.log.Info("result revealed", "job", jobID, "digest", digest, "tx", tx)
				return
			}
		}
		select {
		case <-ctx.Done():
			d.log.Warn("result never revealed: not every replica sealed before the deadline", "job", jobID)
			return
		case <-t.C:
		}
	}
}

// runJob fetches the inputs the dispatch does not carry, runs the workload, stores the output and commits its digest.
func (d *Daemon) runJob(ctx context.Context, req protocol.Dispatch) protocol.Result {
	res := protocol.Result{JobID: req.JobID, NodeID: d.id}
	fail := func(stage string, err error) protocol.Result {
		if errors.Is(err, context.Canceled) {
			d.log.Info("job stopped", "job", req.JobID, "stage", stage, "why", "cancelled (by the router, or the node is stopping)")
		} else {
			d.log.Warn("job failed", "job", req.JobID, "stage", stage, "err", err)
		}
		res.Error = stage + ": " + err.Error()
		return res
	}
	blobs := d.blobs.Via(req.Router)
	inputs, err := protocol.JobInputs(ctx, req.Spec, req.Inputs, blobs.Get, func(name string, err error) {
		d.log.Warn("dispatch carried a wrong input; fetching it", "job", req.JobID, "input", name, "err", err)
	})
	if err != nil {
		return fail("inputs", err)
	}
	var out runtime.Result
	switch req.Spec.Workload.Kind {
	case api.WorkloadTensor:
		out, err = d.opts.Runtime.Run(ctx, runtime.Task{JobID: req.JobID, Kernel: req.Spec.Workload.Kernel, Inputs: inputs, ZK: req.Spec.ZK})
	case api.WorkloadContainer:
		var exit int
		out, exit, err = d.runContainer(ctx, req, inputs)
		if err == nil {
			res.ExitCode = &exit
		}
	default:
		err = fmt.Errorf("%w: workload kind %q", runtime.ErrUnsupported, req.Spec.Workload.Kind)
	}
	if err != nil {
		return fail("run", err)
	}
	digest, err := blobs.Put(ctx, req.JobID, out.Output)
	if err != nil {
		return fail("store output", err)
	}
	commit := &ledger.MsgCommitResult{JobID: req.JobID, ResultDigest: digest, GPUMillis: out.GPUMillis}
	if req.Spec.Verification == api.VerifyRedundant {
		// A replica commits a seal of its digest, bound to its own address: the digest
		// would let a lazy replica commit the same without computing (see reveal).
		commit.ResultDigest, commit.Seal = "", ledger.ResultSeal(req.JobID, keys.Address(d.id), digest)
	}
	tx, err := d.committer.Send(ctx, ledger.Msg{CommitResult: commit})
	if err != nil {
		return fail("commit result", err)
	}
	if out.Device != "" {
		d.log.Info("job computed", "job", req.JobID, "digest", digest, "gpu_ms", out.GPUMillis, "device", out.Device)
	} else {
		d.log.Info("job computed", "job", req.JobID, "digest", digest, "gpu_ms", out.GPUMillis)
	}
	res.Digest, res.GPUMillis, res.CommitTx = digest, out.GPUMillis, tx
	return res
}

// runContainer runs a container job in the node's container runtime and packs what it
// left into the job's output archive. It is billed by wall time on every slot it held.
func (d *Daemon) runContainer(ctx context.Context, req protocol.Dispatch, inputs [][]byte) (runtime.Result, int, error) {
	// The consumer is read from the chain, where its signature put it, not taken from the
	// router: the process runtime runs only the consumers its operator trusts.
	var cj ledger.Job
	if err := d.opts.Chain.Query(ctx, "job/"+req.JobID, &cj); err != nil {
		return runtime.Result{}, 0, fmt.Errorf("read the job's consumer from the chain: %w", err)
	}
	task := runtime.NewContainerTask(req.JobID, string(cj.Consumer), req.Spec, time.Duration(req.TimeoutSeconds)*time.Second, inputs)
	logs := d.newLogStream(req.JobID)
	task.Logs = logs
	out, exit, err := runtime.RunContainerJob(ctx, d.opts.Containers, task)
	logs.Close()
	return out, exit, err
}
