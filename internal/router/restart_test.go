package router

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A router stopped mid-job and started again on the same store takes its jobs up: one
// whose node still runs it is watched again (not assigned twice), and its result is
// verified by the new router.
func TestRestartedRouterResumesItsJobs(t *testing.T) {
	chain := newFakeChain()
	nodeKey := newKey(t)
	nodeID := string(keys.AddressOfKey(nodeKey))
	chain.addNode(keys.AddressOfKey(nodeKey), ledger.UomniPerOMNI, 10_000)
	serverTLS, roots := transporttest.TLS(t)
	opts := Options{Key: newKey(t), Chain: chain, TLS: serverTLS, StoreDir: t.TempDir(), WSPort: freePort(t),
		DispatchTimeout: 2 * time.Second, HeartbeatTTL: time.Minute}
	start := func() *Router {
		r, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := start()
	accepted := make(chan string, 1)
	finish := make(chan struct{})
	nc := scriptedNode(t, first, roots, nodeKey, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		accepted <- d.JobID
		go func() {
			<-finish
			chain.mu.Lock()
			chain.jobs[d.JobID].Status, chain.jobs[d.JobID].ResultDigest = ledger.JobComputed, api.DigestOf([]byte("out"))
			chain.mu.Unlock()
			_ = nc.Publish(protocol.ResultSubject(nodeID), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: nodeID, Digest: api.DigestOf([]byte("out")), CommitTx: "C"}))
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(first.online(protocol.RoleNode)) == 1 })
	id := submit(t, first, chain)
	if got := <-accepted; got != id {
		t.Fatalf("dispatched %s, want %s", got, id)
	}
	waitFor(t, "the job running", func() bool { return jobHas(first, id, "running") })
	_ = first.Close() // the router goes away mid-job

	second := start()
	t.Cleanup(func() { _ = second.Close() })
	waitFor(t, "the node back", func() bool { return nc.IsConnected() })
	// The node says it still runs the job, as the node daemon's heartbeat does.
	hb := protocol.Heartbeat{ID: nodeID, Role: protocol.RoleNode, GPUs: 1, Running: []string{id}, Sent: time.Now()}
	if err := nc.Publish(protocol.HeartbeatSubject(nodeID), protocol.Encode(hb)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job resumed", func() bool { return jobHas(second, id, "resumed") })
	// A result sent before the new router listens for it is found later, from the chain,
	// once heartbeats show the node done (HeartbeatTTL/2 here: 30 s); this test is about
	// the report itself.
	waitFor(t, "the new router listening for the node's report", func() bool {
		second.mu.Lock()
		j := second.jobs[id]
		second.mu.Unlock()
		if j == nil {
			return false
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		return j.inbox[nodeID] != nil
	})
	close(finish)
	waitFor(t, "the result, through the new router", func() bool { return jobHas(second, id, "computed") })
	if a := chain.assignments(); len(a) != 1 {
		t.Fatalf("assignments %v: the resumed job was assigned again though its node still ran it", a)
	}
	j, err := second.Job(context.Background(), id)
	if err != nil || j.Txs["create"] == "" || j.Scores == nil {
		t.Fatalf("the new router lost what the old one knew: %+v %v", j, err)
	}
}

// Finished jobs stay for status queries for FinishedRetention, then leave memory and the
// store.
func TestFinishedJobsLeaveMemory(t *testing.T) {
	chain := newFakeChain()
	nodeKey := newKey(t)
	nodeID := string(keys.AddressOfKey(nodeKey))
	chain.addNode(keys.AddressOfKey(nodeKey), ledger.UomniPerOMNI, 10_000)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r, roots := startRouterWith(t, Options{Chain: chain, Now: clock, RightsInterval: 50 * time.Millisecond, FinishedRetention: time.Minute})
	scriptedNode(t, r, roots, nodeKey, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			_ = nc.Publish(protocol.ResultSubject(nodeID), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: nodeID, Error: "run: no"}))
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	id := submit(t, r, chain)
	waitFor(t, "the job released", func() bool { return jobHas(r, id, "refunded") })
	time.Sleep(200 * time.Millisecond)
	if !jobHas(r, id, "refunded") {
		t.Fatal("a finished job left before its retention")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	waitFor(t, "the job forgotten", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.jobs[id] == nil
	})
	// The router drops the job from memory first, then from the store.
	waitFor(t, "the forgotten job gone from the store", func() bool {
		_, err := r.kv.Get(context.Background(), id)
		return err != nil
	})
}

// A node that restarts within its heartbeat TTL has lost the job it ran: its heartbeats no
// longer list it, and the router places the job again instead of waiting for it forever.
func TestJobANodeDroppedIsPlacedAgain(t *testing.T) {
	chain := newFakeChain()
	forgetful, steady := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(forgetful), ledger.UomniPerOMNI, 150_000) // scores higher
	chain.addNode(keys.AddressOfKey(steady), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterTTL(t, chain, 400*time.Millisecond)
	nc := scriptedNode(t, r, roots, forgetful, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Accepted: true} })
	keepBeating(t, nc, forgetful) // alive, but its heartbeats list no job
	accepted := acceptingNode(t, r, roots, steady)
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })
	id := submit(t, r, chain)
	expectDispatch(t, accepted, id, "the job a node dropped placed again")
	if !jobHas(r, id, "retry") {
		t.Fatal("the job does not say why it moved")
	}
}

// A router that died between saving a job and hearing that its escrow committed takes the
// job up if the chain has it, and forgets it if the chain never does.
func TestJobSavedBeforeItsEscrowIsConfirmedOrForgotten(t *testing.T) {
	defer func(w time.Duration) { escrowWait = w }(escrowWait)
	escrowWait = 300 * time.Millisecond
	chain := newFakeChain()
	store := t.TempDir()
	first, _ := startRouterWith(t, Options{Chain: chain, StoreDir: store})
	escrowed, _ := consumerJob(t, chain)
	never, _ := consumerJob(t, chain)
	var ids []string
	for _, req := range []api.SubmitJobRequest{escrowed, never} {
		tx, err := ledger.DecodeTx(req.Tx)
		if err != nil {
			t.Fatal(err)
		}
		id := ledger.JobID(tx.Signer, tx.Body.Seq)
		ids = append(ids, id)
		j := newJob(id, tx.Signer, req.Spec, time.Now())
		first.track(j, 0)
		j.set(func(*job) {})
		j.save() // as SubmitJob saves it before broadcasting
	}
	if _, _, err := chain.BroadcastTx(context.Background(), escrowed.Tx); err != nil { // committed while the router was down
		t.Fatal(err)
	}
	_ = first.Close()

	second, _ := startRouterWith(t, Options{Chain: chain, StoreDir: store, Key: first.opts.Key})
	// Its inputs were never stored (the router died first) and its consumer was told the
	// submission failed: it is refunded at once, saying why.
	waitFor(t, "the escrowed job refunded", func() bool { return jobHas(second, ids[0], "refunded") })
	chain.mu.Lock()
	status := chain.jobs[ids[0]].Status
	chain.mu.Unlock()
	if status != ledger.JobCancelled {
		t.Fatalf("the escrowed job is %s on chain, want cancelled (refunded in full)", status)
	}
	waitFor(t, "the other forgotten", func() bool {
		second.mu.Lock()
		defer second.mu.Unlock()
		return second.jobs[ids[1]] == nil
	})
	if _, err := second.kv.Get(context.Background(), ids[1]); err == nil {
		t.Fatal("the never-escrowed job is still in the store")
	}
}

// Seen in the chaos run's router partition: router-2, cut off in the middle of a
// submission, saved the job's record but lost its answer, and refused the job. The
// consumer's next try, through router-3, met router-2's record and was told 409, which
// reads as final, while router-2 would forget the unescrowed record within seconds. A job
// another router holds unescrowed is refused with 429 and a Retry-After instead, so
// clients send it again on their own, and nothing is broadcast meanwhile.
func TestJobAnotherRouterHoldsUnescrowedIsRetriedLater(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	req, _ := consumerJob(t, chain)
	id, consumer := jobIDOf(t, req)
	peer := keys.AddressOfKey(newKey(t))
	held := newJob(id, consumer, req.Spec, time.Now())
	held.owner = peer
	data, _ := held.snapshot()
	ctx := t.Context()
	if _, err := r.kv.Create(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	if err := refusedForNow(t, r, chain, req, api.ErrTooManyRequests, heldRetry); !strings.Contains(err.Error(), peer.Short()) {
		t.Fatalf("a job router %s holds unescrowed: %v, want the refusal to name it", peer.Short(), err)
	}
	if entry, err := r.kv.Get(ctx, id); err != nil || ownerOf(entry.Value()) != peer {
		t.Fatalf("the holder's record was touched: %v", err)
	}
	// The holder forgets its record (confirmEscrow finds no escrow): the same request is taken.
	if err := r.kv.Purge(ctx, id); err != nil {
		t.Fatal(err)
	}
	if j, err := r.SubmitJob(ctx, req); err != nil || j.ID != id {
		t.Fatalf("sent again once the record is gone: %+v, %v", j, err)
	}
}

// Seen in every chaos run, one job of six where a router was killed or cut off: the router
// broadcast a job's escrow and died before storing its inline inputs; its consumer,
// unanswered, sent the same signed job to another router, which answered with the job;
// and the router that took the job over refunded it for want of inputs the consumer had
// sent twice. Sent again, they are stored, and the job is taken up with them and runs.
// (Sent once, and never again, the job is refunded at once: see
// TestJobSavedBeforeItsEscrowIsConfirmedOrForgotten.)
func TestInputsOfAJobSentAgainAreKeptForItsHolder(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	req, _ := consumerJob(t, chain)
	id := heldByADeadRouter(t, r, chain, req, false) // saved before its broadcast, and the escrow committed
	ctx := t.Context()
	// Anyone can send the committed tx again (it is on chain), but only with the bytes the
	// spec commits to: other bytes are refused, and nothing is stored.
	forged := req
	forged.InputData = map[string][]byte{}
	for name, b := range req.InputData {
		forged.InputData[name] = append([]byte{b[0] ^ 1}, b[1:]...)
	}
	var fe *api.FieldError
	if _, err := r.SubmitJob(ctx, forged); !errors.As(err, &fe) {
		t.Fatalf("sent again with other inputs: %v, want a field error", err)
	}
	for _, in := range req.Spec.Inputs {
		if r.stored(t, in.Digest) {
			t.Fatalf("input %s stored from a forged resubmission", in.Name)
		}
	}
	if j, err := r.SubmitJob(ctx, req); err != nil || j.ID != id {
		t.Fatalf("the job sent again: %+v, %v; want it answered with itself", j, err)
	}
	for _, in := range req.Spec.Inputs {
		if !r.stored(t, in.Digest) {
			t.Fatalf("input %s of the job sent again is not stored", in.Name)
		}
	}
	takenUpWithItsInputs(t, r, id)
	// Run, not refunded at once: with no node online here it is refunded for that.
	waitFor(t, "the job run", func() bool { return jobHas(r, id, "resumed") })
}

// A router that stored a job's inputs and died before it saved so leaves a record that
// waits for them: the router that takes the job up finds them in the store, rather than
// wait for uploads to the job's deadline.
func TestInputsStoredButNotSavedAreFoundWhenTheJobIsTakenUp(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	req, data := consumerJob(t, chain)
	id := heldByADeadRouter(t, r, chain, req, true)
	for _, in := range req.Spec.Inputs {
		if err := r.blobs.PutHashed(t.Context(), in.Digest, data[in.Name]); err != nil {
			t.Fatal(err)
		}
	}
	takenUpWithItsInputs(t, r, id)
}

// heldByADeadRouter commits req's escrow and saves its job as a router that holds no lease
// (it died) saved it: before its broadcast, or, escrowed, once it had heard of its block.
// It returns the job's id.
func heldByADeadRouter(t *testing.T, r *Router, chain *fakeChain, req api.SubmitJobRequest, escrowed bool) string {
	t.Helper()
	id, consumer := jobIDOf(t, req)
	if _, _, err := chain.BroadcastTx(t.Context(), req.Tx); err != nil {
		t.Fatal(err)
	}
	held := newJob(id, consumer, req.Spec, time.Now())
	held.owner, held.escrowed = keys.AddressOfKey(newKey(t)), escrowed
	record, _ := held.snapshot()
	if _, err := r.kv.Create(t.Context(), id, record); err != nil {
		t.Fatal(err)
	}
	return id
}

// takenUpWithItsInputs has r take up the jobs of routers that hold no lease, and waits
// until job id is among them with every input stored.
func takenUpWithItsInputs(t *testing.T, r *Router, id string) {
	t.Helper()
	if err := r.adoptJobs(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job taken up with its inputs", func() bool {
		r.mu.Lock()
		j := r.jobs[id]
		r.mu.Unlock()
		if j == nil {
			return false
		}
		select {
		case <-j.ready:
			return true
		default:
			return false
		}
	})
}

// The chaos run's partition again: router-2's own save of a refused submission had landed
// after all, and, back in its cluster, it took the record up to look for the escrow. The
// consumer's next try was refused meanwhile as "already submitted", which reads as final.
// It is 429 with a Retry-After now, and nothing is broadcast.
func TestJobWhoseEscrowIsLookedForIsRetriedLater(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	req, _ := consumerJob(t, chain)
	id, consumer := jobIDOf(t, req)
	j := newJob(id, consumer, req.Spec, time.Now())
	r.track(j, 0)
	j.set(func(*job) {})
	j.save() // as SubmitJob saves it before broadcasting
	r.wg.Add(1)
	go r.confirmEscrow(j) // as adoptJobs takes it up; escrowWait is ten seconds
	waitFor(t, "the router looking for the escrow", j.escrowUnsure)
	refusedForNow(t, r, chain, req, api.ErrTooManyRequests, escrowWait)
}

// Seen in the chaos run's partition: router-2, cut off past its lease, still took
// submissions through its REST API, each waiting out store timeouts, and one taken just
// as it rejoined, before it renewed its lease, was taken over by a peer and refunded.
// A router fenced off its jobs takes none: 503 with a Retry-After, nothing broadcast.
func TestFencedRouterTakesNoJobs(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	r.fenced.Store(true) // as keepLease sets it after 2/3 of LeaseTTL without a renewal
	req, _ := consumerJob(t, chain)
	refusedForNow(t, r, chain, req, api.ErrUnavailable, r.opts.LeaseTTL)
	r.fenced.Store(false) // renewed
	if _, err := r.SubmitJob(t.Context(), req); err != nil {
		t.Fatalf("once renewed: %v", err)
	}
}

// Seen in CI's chaos run: as router-1 died, the chain node the others read took longer
// than chainReadTimeout to answer an account read, and the 503 said nothing of when to
// try again, so the load gave up its consumer's last jobs. It carries a Retry-After now,
// and nothing is broadcast.
func TestSubmissionTheChainDidNotAnswerIsRetriedLater(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	req, _ := consumerJob(t, chain)
	chain.mu.Lock()
	chain.accountsDown = true
	chain.mu.Unlock()
	refusedForNow(t, r, chain, req, api.ErrUnavailable, chainRetry)
	chain.mu.Lock()
	chain.accountsDown = false
	chain.mu.Unlock()
	if _, err := r.SubmitJob(t.Context(), req); err != nil {
		t.Fatalf("sent again once the chain answers: %v", err)
	}
}

// The same run, a job sent again: its escrow committed as router-1 died, and the router
// it was sent to read the job but not the chain's height, to tell how the job stands.
// The job is escrowed and nothing more is: the 503 says when to ask again.
func TestJobSentAgainWhoseStatusTheChainDidNotTellIsRetriedLater(t *testing.T) {
	chain := &heightlessChain{fakeChain: newFakeChain()}
	r, _ := startRouterWith(t, Options{Chain: chain})
	req, _ := consumerJob(t, chain.fakeChain)
	id := heldByADeadRouter(t, r, chain.fakeChain, req, false)
	chain.down.Store(true)
	_, err := r.SubmitJob(t.Context(), req)
	if after, ok := api.RetryDelay(err); !errors.Is(err, api.ErrUnavailable) || !ok || after > chainRetry {
		t.Fatalf("sent again while the chain's height is not read: %v (retry after %v, %v); want 503 with a Retry-After", err, after, ok)
	}
	chain.down.Store(false)
	if j, err := r.SubmitJob(t.Context(), req); err != nil || j.ID != id {
		t.Fatalf("sent again once the chain answers: %+v, %v", j, err)
	}
}

// heightlessChain is a fakeChain that tells its height (HeightReader), as chain.Wallet
// does, except while down, when the read fails as a chain node's that does not answer.
type heightlessChain struct {
	*fakeChain
	down atomic.Bool
}

func (c *heightlessChain) Height(context.Context) (int64, error) {
	if c.down.Load() {
		return 0, errors.New("abci info: post failed: context deadline exceeded")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(c.creates) + 1, nil
}

// jobIDOf is the id of the job req's signed tx escrows, and its consumer.
func jobIDOf(t *testing.T, req api.SubmitJobRequest) (string, keys.Address) {
	t.Helper()
	tx, err := ledger.DecodeTx(req.Tx)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.JobID(tx.Signer, tx.Body.Seq), tx.Signer
}

// refusedForNow submits req and wants it refused with want and a Retry-After of at most
// limit, and its escrow not broadcast; it returns the refusal.
func refusedForNow(t *testing.T, r *Router, chain *fakeChain, req api.SubmitJobRequest, want error, limit time.Duration) error {
	t.Helper()
	_, err := r.SubmitJob(t.Context(), req)
	if !errors.Is(err, want) {
		t.Fatalf("submitted: %v, want %v", err, want)
	}
	if after, ok := api.RetryDelay(err); !ok || after <= 0 || after > limit {
		t.Fatalf("retry after %v (%v), want a wait within %v", after, ok, limit)
	}
	id, _ := jobIDOf(t, req)
	chain.mu.Lock()
	_, escrowed := chain.jobs[id]
	chain.mu.Unlock()
	if escrowed {
		t.Fatal("the refused job's escrow was broadcast")
	}
	return err
}

// A broadcast the chain never answers may still commit: the consumer is told the
// submission failed, so the escrow that did commit is refunded at once, with the reason,
// rather than held to the job's deadline.
func TestEscrowWhoseBroadcastWentUnansweredIsRefunded(t *testing.T) {
	defer func(w time.Duration) { escrowWait = w }(escrowWait)
	escrowWait = time.Second
	chain := newFakeChain()
	chain.loseCreateAnswer = true
	r, _ := startRouter(t, chain)
	req, _ := consumerJob(t, chain)
	tx, err := ledger.DecodeTx(req.Tx)
	if err != nil {
		t.Fatal(err)
	}
	id := ledger.JobID(tx.Signer, tx.Body.Seq)
	if _, err := r.SubmitJob(context.Background(), req); !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), id) {
		t.Fatalf("submit: %v; want unavailable, naming the job", err)
	}
	waitFor(t, "the escrow that committed refunded", func() bool {
		chain.mu.Lock()
		defer chain.mu.Unlock()
		return chain.jobs[id].Status == ledger.JobCancelled
	})
	if !jobHas(r, id, "refunded") {
		t.Fatal("the router did not record why it refunded the job")
	}
}

// A job's changes close together take one write of its record, within saveDelay; save
// writes at once what is not saved yet, and nothing when all is.
func TestJobChangesCloseTogetherAreSavedOnce(t *testing.T) {
	j, saved := savingJob()
	writes := saved.writes
	j.set(func(j *job) { j.node = "n1" })
	j.record("placed", "", "", "on n1")
	j.record("assigned", "assign", "T1", "recorded on chain")
	if n := writes(); n != 0 {
		t.Fatalf("%d writes at once; want the changes held for saveDelay", n)
	}
	waitFor(t, "the changes saved", func() bool { return writes() == 1 })
	time.Sleep(saveDelay + saveDelay/2)
	if n := writes(); n != 1 {
		t.Fatalf("%d writes for three changes close together, want 1", n)
	}
	back, err := saved.decode(0)
	if err != nil || back.node != "n1" || len(back.events) != 2 || back.txs["assign"] != "T1" {
		t.Fatalf("the write lacks a change: %+v %v", back, err)
	}

	j.record("running", "", "", "accepted")
	j.save()
	if n := writes(); n != 2 {
		t.Fatalf("%d writes after save, want 2: save writes at once", n)
	}
	j.save()
	time.Sleep(saveDelay + saveDelay/2)
	if n := writes(); n != 2 {
		t.Fatalf("%d writes, want 2: nothing changed since the last", n)
	}
}
