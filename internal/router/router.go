// Package router is OmniRouter: job intake, placement with the whitepaper's weighted score,
// dispatch to node daemons over an embedded NATS/JetStream server, and the job lifecycle up
// to verification and settlement on chain.
//
// The chain is the source of truth for money and job status; the router adds what only it
// knows (scores, progress events, attempts) and re-reads the chain whenever asked. Each
// job's lifecycle runs in one goroutine that owns it; Close cancels them and waits.
package router

import (
	"container/list"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/txbatch"
)

// Chain is what the router needs from the settlement layer (chain.Wallet implements it).
type Chain interface {
	Send(ctx context.Context, msg ledger.Msg) (txHash string, err error)
	// SendBatch sends a batch message and returns each item's outcome (nil: applied).
	SendBatch(ctx context.Context, msg ledger.Msg) (txHash string, items []error, err error)
	BroadcastTx(ctx context.Context, tx []byte) (txHash string, height int64, err error)
	Query(ctx context.Context, path string, v any) error
}

// Options configure a router.
type Options struct {
	// Key is the router's chain account (it must be listed in the chain's routers param)
	// and its admin identity on the embedded NATS server.
	Key   ed25519.PrivateKey
	Chain Chain
	// NATS server: WebSocket+TLS listener for nodes and JetStream storage.
	Host     string
	WSPort   int
	TLS      *tls.Config
	StoreDir string
	// Cluster joins the router's NATS server to other routers' (transport.ClusterOptions):
	// they share one replicated JetStream and divide the jobs between them (cluster.go).
	// Nil runs the router alone.
	Cluster *transport.ClusterOptions
	// LeaseTTL is how long a router that stopped renewing its lease (it died, or was cut
	// off from the cluster) keeps its jobs before its peers take them over.
	LeaseTTL time.Duration

	// Weights override the chain's router_weights parameter (zero: use the chain's).
	Weights scheduler.Weights
	// HeartbeatTTL is how long a participant counts as online after its last heartbeat.
	HeartbeatTTL time.Duration
	// HeartbeatRate is how many heartbeats a second the router asks for from all its
	// participants together: it broadcasts a pace (protocol.Pace) that grows with the
	// participants online, up to HeartbeatTTL/3 (pace.go). Default DefaultHeartbeatRate.
	HeartbeatRate int
	// SimulatedFleet is for load simulation only (transport.ServerOptions.SimulatedFleet):
	// it lets one connection publish the heartbeats of many nodes. Nil in the product; no
	// configuration sets it.
	SimulatedFleet  func(pub ed25519.PublicKey) (nodeIDs []string)
	DispatchTimeout time.Duration
	VerifyTimeout   time.Duration
	MaxAttempts     int
	// AssignWindow is how long an assignment waits for others to share its tx, and
	// AssignBatchMax how many may (assign.go). Default DefaultAssignWindow and
	// ledger.MaxBatchItems; a negative window sends every assignment alone.
	AssignWindow   time.Duration
	AssignBatchMax int
	// MaxOutputBytes bounds the one output a node may store for a job it runs.
	MaxOutputBytes int64
	// MaxActiveJobs bounds the jobs this router holds unfinished. Past it a submission is
	// refused before anything is escrowed (429 with Retry-After, which clients send again
	// after), rather than queued to expire.
	MaxActiveJobs int
	// RightsInterval is how often connected participants are checked against the chain;
	// one whose node was deactivated, slashed below the minimum or unstaked, or who left
	// the validator set, is disconnected at the next check. Keep it at most a block.
	RightsInterval time.Duration
	// FinishedRetention is how long a finished job stays in memory and in the job store
	// for status queries; the chain keeps answering for it after that.
	FinishedRetention time.Duration
	// Now is the router's clock (default time.Now): it stamps jobs, judges when a
	// consumer's signed output request expires and when finished jobs are forgotten.
	Now    func() time.Time
	Logger *slog.Logger
	// Metrics is where the router's Prometheus series are registered (metrics.go); nil
	// counts them in a registry nothing serves.
	Metrics prometheus.Registerer
}

func (o *Options) setDefaults() error {
	if len(o.Key) != ed25519.PrivateKeySize || o.Chain == nil {
		return errors.New("router: key and chain are required")
	}
	// Zero weights: read them from the chain's parameters (at most placementViewTTL old), so a
	// governance change takes effect without a restart.
	if o.Weights != (scheduler.Weights{}) {
		if err := o.Weights.Validate(); err != nil {
			return fmt.Errorf("router: %w", err)
		}
	}
	if o.HeartbeatTTL <= 0 {
		o.HeartbeatTTL = 10 * time.Second
	}
	if o.HeartbeatRate <= 0 {
		o.HeartbeatRate = DefaultHeartbeatRate
	}
	if o.DispatchTimeout <= 0 {
		o.DispatchTimeout = 5 * time.Second
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 60 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.AssignWindow == 0 {
		o.AssignWindow = DefaultAssignWindow
	}
	if o.AssignBatchMax <= 0 || o.AssignBatchMax > ledger.MaxBatchItems {
		o.AssignBatchMax = ledger.MaxBatchItems
	}
	if o.MaxOutputBytes <= 0 {
		o.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if o.MaxActiveJobs <= 0 {
		o.MaxActiveJobs = DefaultMaxActiveJobs
	}
	if o.RightsInterval <= 0 {
		o.RightsInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FinishedRetention <= 0 {
		o.FinishedRetention = DefaultFinishedRetention
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseTTL < 300*time.Millisecond {
		return fmt.Errorf("router: lease ttl %s is too short to renew (at least 300ms)", o.LeaseTTL)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// DefaultMaxOutputBytes is the largest output a node may store for one job unless
// Options say otherwise.
const DefaultMaxOutputBytes = 256 << 20

// DefaultMaxActiveJobs is how many unfinished jobs a router takes unless Options say
// otherwise: about what the devnet settles within its jobs' default timeout.
const DefaultMaxActiveJobs = 1024

// Router is a running OmniRouter.
type Router struct {
	opts   Options
	id     keys.Address
	log    *slog.Logger
	nats   *transport.Server
	conn   *nats.Conn
	js     jetstream.JetStream
	kv     jetstream.KeyValue // job records (state.go)
	blobs  *transport.Bucket  // inputs and outputs (protocol.BlobBucket), opened once
	grants *transport.Grants  // who may read and write which blob, per job step
	// jobReads answers status polls from one read of each job per block; nil when the
	// chain cannot tell its height (HeightReader).
	jobReads *jobReads

	// consumerOf remembers whose each job record in the store is, which never changes, so
	// that listing a consumer's jobs decodes only its own records after the first listing
	// (views.go storedJobsOf). Guarded by listMu.
	listMu     sync.Mutex
	consumerOf map[string]keys.Address

	leases    jetstream.KeyValue // live routers (cluster.go)
	instance  string             // this process's lease
	leaseRev  uint64             // written by keepLease only
	duplicate atomic.Bool        // another process runs this router's key
	fenced    atomic.Bool        // the lease is not being renewed: the router left its jobs
	// inlineHeld is the bytes of the inputs kept in memory for unfinished jobs (inline.go).
	inlineHeld atomic.Int64

	mu       sync.Mutex
	seen     map[string]protocol.Heartbeat // participant id -> last heartbeat
	when     map[string]time.Time          // participant id -> when it arrived
	beats    map[string]uint64             // participant id -> heartbeats received
	jobs     map[string]*job
	taking   map[string]bool         // ids claimed by a submission and not yet among jobs (SubmitJob)
	active   int                     // of jobs, those counted as unfinished (job.counted)
	pending  map[keys.Address]uint64 // by consumer: budgets of Async escrows waiting for their block (pendLocked)
	reserved map[string]int          // node id -> GPUs held by this router's attempts on it
	peerHeld map[string]int          // node id -> GPUs held by other routers' attempts (their leases)
	declined map[string]time.Time    // node id -> its last heartbeat when it declined for want of a GPU
	waiting  list.List               // of *waiter: jobs waiting for a GPU, oldest first (capacity.go)

	metrics *routerMetrics

	px *placementIndex // the online registered nodes, indexed (placement.go); nil before the first placement

	viewMu sync.Mutex // one chain read at a time refreshes view
	// viewStale is set when a node the view does not know heartbeats: it registered
	// since the view was read, and the next placement reads the chain again.
	viewStale atomic.Bool
	view      placementSnapshot
	// nodesHeight is the chain height view.nodes stand at, nodeAt each node's place in
	// them (chainNodesLocked); both guarded by viewMu.
	nodesHeight int64
	nodeAt      map[keys.Address]int
	rights      activeNodes // the housekeeping's alone (checkRights)

	assigner *txbatch.Batcher // collects assignments into batches (assign.go); runs on ctx

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New validates options; Start brings the router up.
func New(opts Options) (*Router, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r := &Router{
		opts: opts, id: keys.AddressOfKey(opts.Key), log: opts.Logger.With("component", "router"),
		seen: map[string]protocol.Heartbeat{}, when: map[string]time.Time{}, beats: map[string]uint64{}, jobs: map[string]*job{}, taking: map[string]bool{},
		reserved: map[string]int{}, pending: map[keys.Address]uint64{}, peerHeld: map[string]int{}, declined: map[string]time.Time{}, grants: transport.NewGrants(),
		assigner: txbatch.New(opts.Chain, opts.AssignWindow, opts.AssignBatchMax),
	}
	if h, ok := opts.Chain.(HeightReader); ok {
		r.jobReads = newJobReads(opts.Chain, h)
	}
	if err := r.registerMetrics(opts.Metrics); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	return r, nil
}

// Start runs the embedded NATS server and subscribes to heartbeats and results.
func (r *Router) Start(ctx context.Context) error {
	srv, err := transport.NewServer(transport.ServerOptions{
		Name: string(r.id), Host: r.opts.Host, WSPort: r.opts.WSPort, TLS: r.opts.TLS, StoreDir: r.opts.StoreDir,
		Admin: r.opts.Key.Public().(ed25519.PublicKey), Authorize: r.authorize,
		IDOf:    func(pub ed25519.PublicKey) string { return string(keys.AddressOf(pub)) },
		Buckets: []string{protocol.BlobBucket}, Access: r.grants, Cluster: r.opts.Cluster, Logger: r.opts.Logger,
		SimulatedFleet: r.opts.SimulatedFleet,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	conn, err := srv.ConnectInProcess(ctx, r.opts.Key, "router")
	if err != nil {
		_ = srv.Close()
		return err
	}
	js, err := jetstream.New(conn)
	if err != nil {
		conn.Close()
		_ = srv.Close()
		return err
	}
	r.nats, r.conn, r.js, r.blobs = srv, conn, js, srv.Bucket(js, protocol.BlobBucket) // remembers with the blob service what either stored or read
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.assigner.Run(r.ctx)
	}()
	if err := r.openJobs(ctx); err != nil {
		_ = r.Close()
		return err
	}
	if err := r.openLeases(ctx); err != nil {
		_ = r.Close()
		return err
	}
	for subject, handler := range map[string]nats.MsgHandler{
		protocol.AllHeartbeats: r.onHeartbeat,
		protocol.AllResults:    r.onResult,
		protocol.AllLogs:       r.onLog,
	} {
		if _, err := conn.Subscribe(subject, handler); err != nil {
			_ = r.Close()
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
	}
	if err := conn.Flush(); err != nil {
		_ = r.Close()
		return err
	}
	if err := r.adoptJobs(ctx); errors.Is(err, errUnread) {
		r.log.Warn("some saved jobs are not readable yet; taking them up at the next lease renewal", "err", err)
	} else if err != nil {
		_ = r.Close()
		return err
	}
	r.wg.Add(2)
	go r.housekeeping(r.ctx)
	go r.keepLease(r.ctx)
	r.log.Info("router listening", "nodes_url", srv.WebSocketURL())
	return nil
}

// NodesURL is where nodes and validators connect (wss://…).
func (r *Router) NodesURL() string { return r.nats.WebSocketURL() }

// Close saves what its jobs changed since their last save, stops every job lifecycle,
// then the NATS server.
func (r *Router) Close() error {
	r.savePending()
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	if r.conn != nil {
		r.conn.Close()
	}
	if r.nats != nil {
		return r.nats.Close()
	}
	return nil
}

// authorize admits a NATS connection from a key registered on chain as a node or a
// validator; its id is its address.
func (r *Router) authorize(pub ed25519.PublicKey) (string, bool) {
	addr := keys.AddressOf(pub)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n ledger.Node
	if err := r.opts.Chain.Query(ctx, "node/"+string(addr), &n); err == nil {
		return string(addr), n.Status == ledger.NodeActive
	}
	var vals []ledger.Validator
	if err := r.opts.Chain.Query(ctx, "validators", &vals); err == nil {
		for _, v := range vals {
			if v.Address == addr {
				return string(addr), true
			}
		}
	}
	r.log.Warn("rejected connection from unregistered key", "address", addr)
	return "", false
}

// housekeeping, every RightsInterval, reads the chain's nodes once: it disconnects each
// participant the chain no longer admits (rights are otherwise fixed when a connection is
// made) and brings the placement index up to the chain and the clock, so that no
// placement waits to build it. It also forgets jobs that finished long enough ago, and
// tells the participants how often to heartbeat.
func (r *Router) housekeeping(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.RightsInterval)
	defer t.Stop()
	var pace paceState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			qctx, cancel := context.WithTimeout(ctx, r.opts.RightsInterval)
			if view, err := r.placementView(qctx); err != nil {
				r.log.Debug("rights check skipped", "err", err)
			} else {
				r.checkRights(qctx, view)
				r.refreshIndex(view)
			}
			cancel()
			r.forgetFinished()
			r.broadcastPace(&pace, time.Now())
		}
	}
}

// refreshIndex brings the placement index up to view.
func (r *Router) refreshIndex(view placementSnapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.indexLocked(view, false); err != nil {
		r.log.Debug("placement index not refreshed", "err", err)
	}
}

// checkRights reads the chain's validators and disconnects every connected participant
// that is neither an active node (of view's nodes, the chain's) nor a validator.
func (r *Router) checkRights(qctx context.Context, view placementSnapshot) {
	var vals []ledger.Validator
	if err := r.opts.Chain.Query(qctx, "validators", &vals); err != nil {
		r.log.Debug("rights check skipped", "err", err)
		return
	}
	active := r.rights.of(view)
	validators := make(map[string]bool, len(vals))
	for _, v := range vals {
		validators[string(v.Address)] = true
	}
	// The view may predate a participant that registered and connected since: its
	// word alone never withdraws a standing, the chain's current one (read as at connect)
	// must agree. Withdrawals are rare, so the second read is too.
	keep := func(id string, pub ed25519.PublicKey) bool {
		if active[id] || validators[id] {
			return true
		}
		_, ok := r.authorize(pub)
		return ok
	}
	for _, id := range r.nats.Reauthorize(keep) {
		r.log.Warn("participant disconnected: the chain withdrew its standing", "id", keys.Address(id).Short())
	}
}

// activeNodes is which of a placement view's nodes the chain holds active, kept from one
// rights check to the next: rebuilding it from every node each RightsInterval allocated a
// map of 100,000 keys a second with as many live nodes. A view one generation on from the
// last carries the nodes it changed, and only they are looked at again.
type activeNodes struct {
	gen    uint64
	active map[string]bool
}

// of returns which nodes of view are active; the map is the cache's own, read only until
// the next call.
func (a *activeNodes) of(view placementSnapshot) map[string]bool {
	switch {
	case a.active != nil && view.gen == a.gen:
	case a.active != nil && view.changed != nil && view.base == a.gen:
		for _, n := range view.changed {
			a.active[string(n.Address)] = n.Status == ledger.NodeActive
		}
	default:
		a.active = make(map[string]bool, len(view.nodes))
		for _, n := range view.nodes {
			a.active[string(n.Address)] = n.Status == ledger.NodeActive
		}
	}
	a.gen = view.gen
	return a.active
}

func (r *Router) onHeartbeat(m *nats.Msg) {
	hb, err := protocol.Decode[protocol.Heartbeat](m.Data)
	if err != nil {
		r.log.Debug("bad heartbeat", "err", err)
		return
	}
	if sender, ok := protocol.SenderOf(m.Subject); !ok || sender != hb.ID {
		r.log.Warn("heartbeat claims another identity", "subject", m.Subject, "claims", hb.ID)
		return
	}
	r.mu.Lock()
	r.seen[hb.ID], r.when[hb.ID] = hb, time.Now()
	r.beats[hb.ID]++
	r.heardLocked(hb.ID)
	r.mu.Unlock()
	if hb.Role == protocol.RoleNode {
		r.metrics.heartbeatIndexed(hb.Sent)
	}
}

// onlineAs returns id's last heartbeat when it was heard from within the TTL as role:
// one look-up, where online reads every participant (100,000 nodes, at network scale,
// for each job waiting on one node or verifying with a committee of a few).
func (r *Router) onlineAs(id, role string) (protocol.Heartbeat, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hb, ok := r.seen[id]
	return hb, ok && hb.Role == role && time.Since(r.when[id]) <= r.opts.HeartbeatTTL
}

// onlineCounts counts the participants heard from within the TTL, by role, in one pass
// and without the map of them that online builds.
func (r *Router) onlineCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[string]int{}
	for id, hb := range r.seen {
		if time.Since(r.when[id]) <= r.opts.HeartbeatTTL {
			counts[hb.Role]++
		}
	}
	return counts
}

// online returns the participants of a role heard from within the TTL.
func (r *Router) online(role string) map[string]protocol.Heartbeat {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]protocol.Heartbeat{}
	for id, hb := range r.seen {
		if hb.Role == role && time.Since(r.when[id]) <= r.opts.HeartbeatTTL {
			out[id] = hb
		}
	}
	return out
}

func (r *Router) onResult(m *nats.Msg) {
	res, err := protocol.Decode[protocol.Result](m.Data)
	j := r.jobOfReport(m.Subject, "result", res.JobID, res.NodeID, err)
	if j != nil && !j.deliver(res) {
		r.log.Debug("result no attempt awaits", "job", res.JobID, "node", res.NodeID)
	}
}

// jobOfReport is the job a node's report (a result, a log chunk) is about: nil when the
// report did not decode, names a node other than its sender, or is about a job this
// router does not run (another router's, or one this router has left).
func (r *Router) jobOfReport(subject, what, jobID, nodeID string, decodeErr error) *job {
	if decodeErr != nil {
		r.log.Debug("bad "+what, "err", decodeErr)
		return nil
	}
	if sender, ok := protocol.SenderOf(subject); !ok || sender != nodeID {
		r.log.Warn(what+" claims another identity", "subject", subject, "claims", nodeID)
		return nil
	}
	r.mu.Lock()
	j := r.jobs[jobID]
	r.mu.Unlock()
	if j == nil {
		r.log.Debug(what+" for a job this router does not run", "job", jobID, "node", nodeID)
	}
	return j
}
