package router

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// More jobs than GPUs: the router queues them on its own reservations instead of booking
// the one GPU several times, and none is given up on while the node is merely busy.
func TestJobsWaitForAFreeGPUInsteadOfFailing(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	id := string(keys.AddressOfKey(key))
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	var mu sync.Mutex
	running, declined := 0, 0
	accepted := map[string]int{}
	scriptedNode(t, r, roots, key, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		mu.Lock()
		defer mu.Unlock()
		if running >= 1 {
			declined++
			return protocol.Ack{Error: protocol.DeclineNoFreeGPU}
		}
		running++
		accepted[d.JobID]++
		go func() {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			reportComputed(chain, nc, id, d.JobID)
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })

	var ids []string
	for range 4 {
		ids = append(ids, submit(t, r, chain))
	}
	for _, jid := range ids {
		waitFor(t, "job "+jid+" computed", func() bool { return jobHas(r, jid, "computed") })
	}
	mu.Lock()
	defer mu.Unlock()
	if declined != 0 {
		t.Fatalf("the router booked a busy GPU %d times", declined)
	}
	for _, jid := range ids {
		if accepted[jid] != 1 {
			t.Fatalf("job %s dispatched %d times", jid, accepted[jid])
		}
	}
	if !jobHas(r, ids[len(ids)-1], "queued") {
		t.Fatal("the last job never said it was waiting for a gpu")
	}
}

// Jobs waiting for the one GPU are woken one at a time as it frees, not all at every
// release: a thundering herd made every release cost a failed placement per
// waiting job (here 12 jobs, about 66).
func TestAReleasedGPUWakesOneWaitingJob(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	id := string(keys.AddressOfKey(key))
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	reg := metrics.NewRegistry()
	r, roots := startRouterWith(t, Options{Chain: chain, HeartbeatTTL: time.Minute, Metrics: reg})
	scriptedNode(t, r, roots, key, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			time.Sleep(20 * time.Millisecond)
			reportComputed(chain, nc, id, d.JobID)
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	const jobs = 12
	var ids []string
	for range jobs {
		ids = append(ids, submit(t, r, chain))
	}
	start := time.Now()
	for _, jid := range ids {
		waitFor(t, "job "+jid+" computed", func() bool { return jobHas(r, jid, "computed") })
	}
	got := metricstest.ScrapeGatherer(t, reg)
	placed, busy := got[`omnisync_router_placements_total{outcome="placed"}`], got[`omnisync_router_placements_total{outcome="busy"}`]
	if placed != jobs {
		t.Fatalf("%v placements, want one a job (%d)", placed, jobs)
	}
	// Each job finds the GPU busy once as it joins the line; a release may cost one more
	// (a wake that finds the GPU taken again). The safety poll adds a round per waiting
	// job should the run outlast it.
	if polls := int(time.Since(start)/capacitySafetyPoll) + 1; busy > float64(2*jobs+polls*jobs) {
		t.Fatalf("%v placements found the GPU busy, for %d jobs: every release woke every waiting job", busy, jobs)
	}
	t.Logf("%v placements found the GPU busy, for %d jobs", busy, jobs)
}

// A job no node can run is released on chain at once: the consumer's budget comes back
// now, not at the deadline, and the job says why.
func TestJobNoNodeCanRunIsReleasedAtOnce(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	id := string(keys.AddressOfKey(key))
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	scriptedNode(t, r, roots, key, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			_ = nc.Publish(protocol.ResultSubject(id), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: id, Error: "run: out of memory"}))
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	jid := submit(t, r, chain)
	waitFor(t, "the job released", func() bool { return jobHas(r, jid, "refunded") })
	chain.mu.Lock()
	status := chain.jobs[jid].Status
	chain.mu.Unlock()
	if status != ledger.JobCancelled {
		t.Fatalf("job is %s on chain, want cancelled (refunded in full)", status)
	}
	j, err := r.Job(context.Background(), jid)
	if err != nil {
		t.Fatal(err)
	}
	if j.Txs["release"] == "" || j.Error == "" {
		t.Fatalf("the job does not say it was released and why: %+v", j)
	}
}

// A router full of unfinished jobs refuses more before anything is escrowed, instead of
// queueing them to expire.
func TestSubmissionsPastTheLimitAreRefusedBeforeEscrow(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterWith(t, Options{Chain: chain, MaxActiveJobs: 2})
	scriptedNode(t, r, roots, key, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Accepted: true} }) // and never reports
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	first := submit(t, r, chain) // runs on the one GPU
	waitFor(t, "the first job running", func() bool { return jobHas(r, first, "running") })
	second := submit(t, r, chain) // waits for it
	waitFor(t, "the second job queued", func() bool { return jobHas(r, second, "queued") })
	req, _ := consumerJob(t, chain)
	if _, err := r.SubmitJob(context.Background(), req); !errors.Is(err, api.ErrTooManyRequests) {
		t.Fatalf("a third job: %v, want ErrTooManyRequests", err)
	}
	chain.mu.Lock()
	defer chain.mu.Unlock()
	if len(chain.jobs) != 2 {
		t.Fatalf("%d jobs escrowed, want the 2 the router took", len(chain.jobs))
	}
}

// The count of unfinished jobs that bounds a router's intake follows every way a job
// ends or leaves it: finishing (once, however often it is told), another router taking
// it, a submission dropped before its escrow, tracking a job again, a record loaded
// finished, and fencing.
func TestUnfinishedCountFollowsEveryWayAJobLeaves(t *testing.T) {
	r, _ := startRouterWith(t, Options{Chain: newFakeChain()})
	consumer := keys.AddressOfKey(newKey(t))
	jobs := make([]*job, 6)
	for i := range jobs {
		jobs[i] = newJob(fmt.Sprintf("job-%d", i), consumer, api.JobSpec{}, time.Now())
		r.track(jobs[i], 0)
	}
	done := newJob("job-done", consumer, api.JobSpec{}, time.Now())
	done.finished = time.Now()
	r.track(done, 0)
	counts := func() (counted, unfinished int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, j := range r.jobs {
			j.mu.Lock()
			if j.finished.IsZero() {
				unfinished++
			}
			j.mu.Unlock()
		}
		return r.active, unfinished
	}
	if c, u := counts(); c != 6 || u != 6 {
		t.Fatalf("after tracking: counted %d, unfinished %d; want 6", c, u)
	}
	r.finish(jobs[0])
	r.finish(jobs[0])
	r.lose(jobs[1], keys.AddressOfKey(newKey(t)))
	r.mu.Lock()
	r.dropLocked(jobs[2])
	r.mu.Unlock()
	r.track(jobs[3], 0)
	if c, u := counts(); c != 3 || u != 3 {
		t.Fatalf("after jobs ended and left: counted %d, unfinished %d; want 3", c, u)
	}
	r.fence()
	if c, _ := counts(); c != 0 {
		t.Fatalf("after fencing: counted %d, want 0", c)
	}
}

// A node that declined a job for want of a free GPU counts as full until it heartbeats
// again, as the node says: a job that fits that node alone waits for it, as it would for
// GPUs this router or its peers hold, rather than failing.
func TestAJobWaitsForANodeThatSaidItWasFull(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	id := string(keys.AddressOfKey(key))
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	var dispatched atomic.Int32
	nc := scriptedNode(t, r, roots, key, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		if dispatched.Add(1) == 1 {
			return protocol.Ack{Error: protocol.DeclineNoFreeGPU} // another router's job holds it
		}
		go reportComputed(chain, nc, id, d.JobID)
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	jid := submit(t, r, chain)
	waitFor(t, "the job waiting for a gpu", func() bool { return jobHas(r, jid, "queued") })
	if jobHas(r, jid, "failed") || jobHas(r, jid, "refunded") || dispatched.Load() != 1 {
		v, _ := r.Job(t.Context(), jid)
		t.Fatalf("after the decline: %+v, dispatched %d times", v, dispatched.Load())
	}
	hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 1, FreeGPUs: 1, Sent: time.Now()} // free again
	if err := nc.Publish(protocol.HeartbeatSubject(id), protocol.Encode(hb)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job computed on the node once it was free", func() bool { return jobHas(r, jid, "computed") })
}

// A node whose dispatches no one listens for (it is down, its heartbeats not yet lapsed)
// counts as full until it heartbeats again, as one that declined does: the job waits for
// it rather than spending its attempts, and runs once the node is back.
func TestAJobWaitsForANodeNoOneListensFor(t *testing.T) {
	s := silentNode(t)
	jid := submit(t, s.r, s.chain)
	waitFor(t, "the job waiting for the node", func() bool { return jobHas(s.r, jid, "queued") })
	if jobHas(s.r, jid, "failed") || jobHas(s.r, jid, "refunded") {
		v, _ := s.r.Job(t.Context(), jid)
		t.Fatalf("after the dispatch no one heard: %+v", v)
	}
	computesOnceBack(t, s.chain, s.r, s.roots, s.key, jid, "once it listened", "the unheard dispatch")
}

// computesOnceBack brings the node of key (back) online, computing every job it is sent
// (scriptedNode); job jid must then be computed there as its first attempt, whatever came
// before (what) not counted against it.
func computesOnceBack(t *testing.T, chain *fakeChain, r *Router, roots *x509.CertPool, key ed25519.PrivateKey, jid, when, what string) {
	t.Helper()
	id := string(keys.AddressOfKey(key))
	scriptedNode(t, r, roots, key, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go reportComputed(chain, nc, id, d.JobID)
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the job computed on the node "+when, func() bool { return jobHas(r, jid, "computed") })
	r.mu.Lock()
	j := r.jobs[jid]
	r.mu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.attempts != 1 || len(j.tried) != 0 {
		t.Fatalf("attempts %d, tried %v: %s counted against the job", j.attempts, j.tried, what)
	}
}

// A node that heartbeats but never listens for its jobs cannot hold a job to its
// deadline by being found unreachable over and over: the second time, the attempt
// counts and the node is not asked again, so a job with no other node fails at once.
func TestANodeThatNeverListensCannotHoldAJob(t *testing.T) {
	s := silentNode(t)
	chain, r, nc, hb := s.chain, s.r, s.nc, s.hb
	id := hb.ID
	stop := make(chan struct{})
	defer close(stop)
	go func() { // heartbeats often, so the router soon counts it free again
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				hb.Sent = time.Now()
				_ = nc.Publish(protocol.HeartbeatSubject(id), protocol.Encode(hb))
			}
		}
	}()
	began := time.Now()
	jid := submit(t, r, chain)
	waitFor(t, "the job to end", func() bool { return jobFinished(r, jid) })
	if took := time.Since(began); took > 4*time.Second {
		t.Errorf("the job ended after %v: the silent node held it", took)
	}
	v, _ := r.Job(t.Context(), jid)
	unheard := 0
	for _, e := range v.Events {
		if e.Stage == "retry" && strings.Contains(e.Message, "unreachable; placing again") {
			unheard++
		}
	}
	if unheard != 1 || jobHas(r, jid, "computed") {
		t.Fatalf("job %+v: %d retries not counted, want 1", v, unheard)
	}
}

// A job placed while its network's registered nodes are all offline (restarting, or
// reconnecting) waits for one to come online rather than being refunded at once, and runs
// on it when it does, as its first attempt.
func TestAJobWaitsForARegisteredNodeToComeOnline(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterTTL(t, chain, 20*time.Second)
	jid := submit(t, r, chain)
	waitFor(t, "the job waiting for a node", func() bool { return jobSays(r, jid, "queued", "waiting up to 20s for one to come online") })
	if jobFinished(r, jid) {
		v, _ := r.Job(t.Context(), jid)
		t.Fatalf("the job ended with no node online: %+v", v)
	}
	computesOnceBack(t, chain, r, roots, key, jid, "once it came online", "waiting for a node")
}

// A registered node that never comes online holds a job for HeartbeatTTL, no longer:
// the job is then refunded, saying why.
func TestAJobWaitsForAnOfflineNodeOnlyForHeartbeatTTL(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	chain := newFakeChain()
	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
	r, _ := startRouterTTL(t, chain, ttl)
	began := time.Now()
	jid := submit(t, r, chain)
	waitFor(t, "the job to end", func() bool { return jobFinished(r, jid) })
	took := time.Since(began)
	if took < ttl || took > ttl+5*time.Second {
		t.Errorf("the job ended %v after it was submitted; want after the %v a node may take to come back, and soon after", took, ttl)
	}
	if !jobSays(r, jid, "refunded", "no registered node is online") {
		v, _ := r.Job(t.Context(), jid)
		t.Fatalf("job %+v: want it refunded, no node online", v)
	}
}

// Only a network with no node online makes a job wait for one: a container job on a
// network whose online nodes run no containers fails at once, as it would after the wait.
func TestOnlyAnEmptyNetworkMakesAJobWaitForANode(t *testing.T) {
	r := silentNode(t).r // online, and runs no containers
	container := api.JobSpec{Workload: api.Workload{Kind: api.WorkloadContainer}, Resources: api.Resources{GPUs: 1}, MaxPricePerHour: ledger.UomniPerOMNI}
	_, _, err := r.place(t.Context(), container, nil)
	if !errors.Is(err, scheduler.ErrNoFeasibleNode) || errors.As(err, new(noneOnlineError)) {
		t.Fatalf("container job with no container node online: %v; want no feasible node, at once", err)
	}
	r.mu.Lock()
	r.px.all.Remove(r.px.all.Snapshot()[0].ID) // its heartbeats lapsed
	r.mu.Unlock()
	if _, _, err := r.place(t.Context(), container, nil); !errors.As(err, new(noneOnlineError)) {
		t.Fatalf("container job with no node online: %v; want it to wait for one", err)
	}
}

// A node's registered GPU count only shapes the placement index (scheduler.Node.GPUs): a
// node that registered one GPU and heartbeats eight free is placed an eight-GPU job all
// the same, and its count cannot hide it from such a job.
func TestANodeThatUnderstatesItsGPUsStillFitsABigJob(t *testing.T) {
	chain := newFakeChain()
	key := newKey(t)
	chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000) // registers 1 GPU
	r, roots := startRouter(t, chain)
	id := string(keys.AddressOfKey(key))
	hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 8, FreeGPUs: 8}
	scriptedParticipant(t, r, roots, key, hb, protocol.DispatchSubject(id), func(*nats.Conn, []byte) []byte { return nil })
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	big := api.JobSpec{Workload: api.Workload{Kind: api.WorkloadTensor}, Resources: api.Resources{GPUs: 8}, MaxPricePerHour: ledger.UomniPerOMNI}
	p, release, err := r.place(t.Context(), big, nil)
	if err != nil || p.NodeID != id {
		t.Fatalf("eight-GPU job placed on %q (%v); want the node with eight free, %s", p.NodeID, err, id)
	}
	release()
}

// jobSays reports whether job id has an event at stage whose message holds text.
func jobSays(r *Router, id, stage, text string) bool {
	j, err := r.Job(context.Background(), id)
	if err != nil {
		return false
	}
	for _, e := range j.Events {
		if e.Stage == stage && strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

// silent is a router over a fake chain with one registered node (key), connected (nc)
// and online by its heartbeat (hb), that listens for nothing: its dispatches find no one.
type silent struct {
	chain *fakeChain
	r     *Router
	roots *x509.CertPool
	key   ed25519.PrivateKey
	nc    *nats.Conn
	hb    protocol.Heartbeat
}

func silentNode(t *testing.T) silent {
	t.Helper()
	s := silent{chain: newFakeChain(), key: newKey(t)}
	s.chain.addNode(keys.AddressOfKey(s.key), ledger.UomniPerOMNI, 10_000)
	s.r, s.roots = startRouter(t, s.chain)
	s.nc = dialAs(t, s.r, s.roots, s.key, "test-silent")
	s.hb = protocol.Heartbeat{ID: string(keys.AddressOfKey(s.key)), Role: protocol.RoleNode, GPUs: 1, FreeGPUs: 1, Sent: time.Now()}
	if err := s.nc.Publish(protocol.HeartbeatSubject(s.hb.ID), protocol.Encode(s.hb)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the node online", func() bool { return len(s.r.online(protocol.RoleNode)) == 1 })
	return s
}

// reportComputed does what a node whose job is done does: its result is committed on the
// fake chain and reported to the router.
func reportComputed(chain *fakeChain, nc *nats.Conn, node, jobID string) {
	chain.mu.Lock()
	chain.jobs[jobID].Status = ledger.JobComputed
	chain.mu.Unlock()
	_ = nc.Publish(protocol.ResultSubject(node), protocol.Encode(protocol.Result{JobID: jobID, NodeID: node, Digest: api.DigestOf([]byte(jobID)), CommitTx: "C"}))
}

// A long line of jobs waiting for capacity polls, all together, at most safetyPollRate
// times a second, and a short one every capacitySafetyPoll.
func TestSafetyPollsOfALongLineAreBounded(t *testing.T) {
	for _, waiting := range []int{1, 10, 200, 201, 5_000, 1_000_000} {
		poll := safetyPoll(waiting)
		if poll < capacitySafetyPoll {
			t.Errorf("%d waiting: each polls every %v, more often than %v", waiting, poll, capacitySafetyPoll)
		}
		if time.Duration(waiting)*time.Second > safetyPollRate*poll {
			t.Errorf("%d waiting, each every %v: more than %d polls a second", waiting, poll, safetyPollRate)
		}
		if waiting <= 200 && poll != capacitySafetyPoll {
			t.Errorf("%d waiting: each polls every %v, want %v", waiting, poll, capacitySafetyPoll)
		}
	}
}
