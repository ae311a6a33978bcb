package router

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

func newKey(t testing.TB) ed25519.PrivateKey { return transporttest.Key(t) }

// startRouter runs a router over the fake chain with a real embedded NATS server.
func startRouter(t testing.TB, chain *fakeChain) (*Router, *x509.CertPool) {
	return startRouterTTL(t, chain, time.Minute)
}

func startRouterTTL(t testing.TB, chain *fakeChain, ttl time.Duration) (*Router, *x509.CertPool) {
	t.Helper()
	return startRouterWith(t, Options{Chain: chain, DispatchTimeout: 2 * time.Second, HeartbeatTTL: ttl, MaxAttempts: 3})
}

// startRouterWith runs a router with opts, filling in a fresh key, TLS material and store
// where opts leave them out; it closes when the test ends.
func startRouterWith(t testing.TB, opts Options) (*Router, *x509.CertPool) {
	t.Helper()
	serverTLS, roots := transporttest.TLS(t)
	if opts.Key == nil {
		opts.Key = newKey(t)
	}
	if opts.TLS == nil {
		opts.TLS = serverTLS
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, roots
}

// scriptedNode connects as a node, heartbeats once and answers dispatches with onJob.
func scriptedNode(t *testing.T, r *Router, roots *x509.CertPool, key ed25519.PrivateKey, onJob func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack) *nats.Conn {
	t.Helper()
	id := string(keys.AddressOfKey(key))
	hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 1, FreeGPUs: 1}
	return scriptedParticipant(t, r, roots, key, hb, protocol.DispatchSubject(id), func(nc *nats.Conn, data []byte) []byte {
		d, err := protocol.Decode[protocol.Dispatch](data)
		if err != nil {
			t.Error(err)
			return nil
		}
		return protocol.Encode(onJob(nc, d))
	})
}

// scriptedParticipant connects with key, answers every request on inbox with answer (a nil
// answer is no reply) and sends hb once, stamped now.
func scriptedParticipant(t *testing.T, r *Router, roots *x509.CertPool, key ed25519.PrivateKey, hb protocol.Heartbeat, inbox string, answer func(nc *nats.Conn, data []byte) []byte) *nats.Conn {
	t.Helper()
	nc := dialAs(t, r, roots, key, "test-"+hb.ID)
	if _, err := nc.Subscribe(inbox, func(m *nats.Msg) {
		if reply := answer(nc, m.Data); reply != nil {
			_ = m.Respond(reply)
		}
	}); err != nil {
		t.Fatal(err)
	}
	hb.Sent = time.Now()
	if err := nc.Publish(protocol.HeartbeatSubject(hb.ID), protocol.Encode(hb)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return nc
}

// dialAs connects to r's node listener with key, until the test ends.
func dialAs(t *testing.T, r *Router, roots *x509.CertPool, key ed25519.PrivateKey, name string) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := transport.Dial(ctx, transport.DialOptions{URL: r.NodesURL(), Key: key, RootCAs: roots, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// submit sends a small matmul job signed by a funded consumer.
func submit(t *testing.T, r *Router, chain *fakeChain) string {
	t.Helper()
	req, _ := consumerJob(t, chain)
	j, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return j.ID
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobFinished reports whether the router's job id has ended, its outcome recorded.
func jobFinished(r *Router, id string) bool {
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	return !j.finished.IsZero()
}

func jobHas(r *Router, id, stage string) bool {
	j, err := r.Job(context.Background(), id)
	if err != nil {
		return false
	}
	for _, e := range j.Events {
		if e.Stage == stage {
			return true
		}
	}
	return false
}

func TestDeclinedJobIsPlacedOnAnotherNode(t *testing.T) {
	chain := newFakeChain()
	fast, slow := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(fast), ledger.UomniPerOMNI, 150_000) // scores higher
	chain.addNode(keys.AddressOfKey(slow), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	accepted := make(chan protocol.Dispatch, 1)
	scriptedNode(t, r, roots, fast, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Error: "no free gpu"} })
	scriptedNode(t, r, roots, slow, func(_ *nats.Conn, d protocol.Dispatch) protocol.Ack {
		accepted <- d
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })

	id := submit(t, r, chain)
	select {
	case d := <-accepted:
		if d.JobID != id {
			t.Fatalf("dispatched %s, want %s", d.JobID, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the job never reached the second node")
	}
	got := chain.assignments()
	want := []keys.Address{keys.AddressOfKey(fast), keys.AddressOfKey(slow)}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("assignments %v, want the best node first, then the other: %v", got, want)
	}
	waitFor(t, "the retry to be recorded", func() bool { return jobHas(r, id, "retry") })
}

func TestForgedResultIsIgnored(t *testing.T) {
	chain := newFakeChain()
	honest, forger := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(honest), ledger.UomniPerOMNI, 150_000)
	chain.addNode(keys.AddressOfKey(forger), 4*ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	dispatched := make(chan protocol.Dispatch, 1)
	scriptedNode(t, r, roots, honest, func(_ *nats.Conn, d protocol.Dispatch) protocol.Ack {
		dispatched <- d
		return protocol.Ack{Accepted: true}
	})
	forgerConn := scriptedNode(t, r, roots, forger, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{} })
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })

	id := submit(t, r, chain)
	d := <-dispatched
	// The forger reports a failure in the honest node's name, from its own namespace.
	forged := protocol.Result{JobID: d.JobID, NodeID: string(keys.AddressOfKey(honest)), Error: "run: forged failure"}
	if err := forgerConn.Publish(protocol.ResultSubject(string(keys.AddressOfKey(forger))), protocol.Encode(forged)); err != nil {
		t.Fatal(err)
	}
	// And it cannot publish in the honest node's namespace at all.
	var denied error
	errs := make(chan error, 1)
	forgerConn.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	_ = forgerConn.Publish(protocol.ResultSubject(string(keys.AddressOfKey(honest))), protocol.Encode(forged))
	_ = forgerConn.Flush()
	select {
	case denied = <-errs:
	case <-time.After(5 * time.Second):
	}
	if !errors.Is(denied, nats.ErrPermissionViolation) {
		t.Fatalf("publishing in another node's namespace: %v, want a permission violation", denied)
	}
	time.Sleep(300 * time.Millisecond)
	if jobHas(r, id, "retry") || len(chain.assignments()) != 1 {
		t.Fatalf("a forged result derailed the job: assignments %v", chain.assignments())
	}
}

func TestSubmitRejectsWhatCannotBeEscrowed(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	poor := newKey(t)
	m, _ := tensor.RandomInt8(2, 2, 1)
	b, _ := m.MarshalBinary()
	in := []api.Input{{Name: "a", Digest: api.DigestOf(b), Size: int64(len(b))}, {Name: "b", Digest: api.DigestOf(b), Size: int64(len(b))}}
	spec := api.JobSpec{
		Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMatMulInt8}, Inputs: in,
		Resources: api.Resources{GPUs: 1}, MaxPricePerHour: 1, Budget: 5, TimeoutSeconds: 5, Verification: api.VerifyFreivald,
	}
	tx, _ := ledger.SignTx(poor, "test", 0, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: spec.Hash(), Budget: 5, MaxPricePerHour: 1, Verification: spec.Verification, TimeoutSeconds: 5,
	}})
	_, err := r.SubmitJob(context.Background(), api.SubmitJobRequest{Spec: spec, InputData: map[string][]byte{"a": b, "b": b}, Tx: tx})
	if !errors.Is(err, api.ErrInsufficientFunds) {
		t.Fatalf("err = %v, want ErrInsufficientFunds", err)
	}
	if len(chain.jobs) != 0 {
		t.Fatal("a job was escrowed for a consumer who cannot pay")
	}
}

// TestSubmitRefusesInputsTheKernelCannotTake: every tensor kernel's inputs are decoded at
// intake, so data its node would refuse is refused before anything is escrowed. The
// consumer job's inputs are int8 matrices: right for matmul-int8, wrong for the others.
// A client that lost the answer to its submission sends the same signed job again, to
// the same router or, in the chaos run's partition, to another. Once the escrow has
// committed that was a 409 over the sequence, which told the client nothing of its job:
// it is answered with the job, and nothing is escrowed again. Another job signed with the
// used sequence is still a conflict.
func TestAJobSentAgainIsAnsweredWithItself(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	consumer := newKey(t)
	req, _ := consumerJobFor(t, chain, consumer, 0, func(*api.JobSpec) {})
	first, err := r.SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := startRouter(t, chain) // a store of its own: it knows the job from the chain alone
	for _, via := range []*Router{r, peer} {
		again, err := via.SubmitJob(t.Context(), req)
		if err != nil || again.ID != first.ID {
			t.Fatalf("sent again: %+v, %v; want job %s", again, err, first.ID)
		}
	}
	other, _ := consumerJobFor(t, chain, consumer, 0, func(s *api.JobSpec) { s.TimeoutSeconds++ })
	if _, err := r.SubmitJob(t.Context(), other); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("another job with the used sequence: %v, want ErrConflict", err)
	}
	chain.mu.Lock()
	creates := chain.creates
	chain.mu.Unlock()
	if creates != 1 {
		t.Fatalf("%d escrows broadcast, want 1", creates)
	}
}

func TestSubmitRefusesInputsTheKernelCannotTake(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	for _, kernel := range []string{tensor.KernelMatMulFloat32, tensor.KernelMLPInt8} {
		req, _ := consumerJobWith(t, chain, func(s *api.JobSpec) { s.Workload.Kernel = kernel })
		_, err := r.SubmitJob(context.Background(), req)
		var fe *api.FieldError
		if !errors.As(err, &fe) || fe.Field != "spec.inputs" {
			t.Errorf("%s on int8 matrices: %v, want a spec.inputs error", kernel, err)
		}
	}
	if len(chain.jobs) != 0 {
		t.Fatalf("%d jobs escrowed with inputs their kernel cannot take", len(chain.jobs))
	}
	req, _ := consumerJob(t, chain)
	if _, err := r.SubmitJob(context.Background(), req); err != nil {
		t.Fatalf("the int8 product itself: %v", err)
	}
}

// acceptingNode connects a node that accepts every job and keeps heartbeating; the ids of
// the jobs dispatched to it arrive on the channel it returns.
func acceptingNode(t *testing.T, r *Router, roots *x509.CertPool, key ed25519.PrivateKey) <-chan string {
	t.Helper()
	accepted := make(chan string, 1)
	nc := scriptedNode(t, r, roots, key, func(_ *nats.Conn, d protocol.Dispatch) protocol.Ack {
		accepted <- d.JobID
		return protocol.Ack{Accepted: true}
	})
	keepBeating(t, nc, key)
	return accepted
}

// expectDispatch waits for job id to be dispatched on accepted; what names the event.
func expectDispatch(t *testing.T, accepted <-chan string, id, what string) {
	t.Helper()
	select {
	case got := <-accepted:
		if got != id {
			t.Fatalf("%s: dispatched %s, want %s", what, got, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// keepBeating heartbeats for a node until the test ends.
func keepBeating(t *testing.T, nc *nats.Conn, key ed25519.PrivateKey) {
	id := string(keys.AddressOfKey(key))
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 1, FreeGPUs: 1, Sent: time.Now()}
				_ = nc.Publish(protocol.HeartbeatSubject(id), protocol.Encode(hb))
			}
		}
	}()
}

func TestJobOnASilentNodeIsReplaced(t *testing.T) {
	chain := newFakeChain()
	vanishing, steady := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(vanishing), ledger.UomniPerOMNI, 150_000) // scores higher
	chain.addNode(keys.AddressOfKey(steady), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterTTL(t, chain, 400*time.Millisecond)
	// The first node accepts the job, then disappears (connection closed, no more heartbeats).
	gone := scriptedNode(t, r, roots, vanishing, func(nc *nats.Conn, _ protocol.Dispatch) protocol.Ack {
		go func() { time.Sleep(50 * time.Millisecond); nc.Close() }()
		return protocol.Ack{Accepted: true}
	})
	keepBeating(t, gone, vanishing)
	accepted := acceptingNode(t, r, roots, steady)
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })

	id := submit(t, r, chain)
	expectDispatch(t, accepted, id, "the job re-placed after its node went silent")
	if a := chain.assignments(); len(a) != 2 || a[1] != keys.AddressOfKey(steady) {
		t.Fatalf("assignments %v", a)
	}
}

// A node's clock may be wrong: the router times heartbeats by its own, so a node whose
// clock runs an hour behind or ahead is online all the same.
func TestSkewedNodeClocksDoNotDecideWhoIsOnline(t *testing.T) {
	chain := newFakeChain()
	r, roots := startRouterTTL(t, chain, 2*time.Second)
	for _, skew := range []time.Duration{-30 * time.Minute, time.Hour} { // certificates are issued valid from an hour ago
		key := newKey(t)
		chain.addNode(keys.AddressOfKey(key), ledger.UomniPerOMNI, 10_000)
		id := string(keys.AddressOfKey(key))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		skewed := func() time.Time { return time.Now().Add(skew) }
		nc, err := transport.Dial(ctx, transport.DialOptions{URL: r.NodesURL(), Key: key, RootCAs: roots, Name: "skewed", Now: skewed})
		cancel()
		if err != nil {
			t.Fatalf("a node whose clock is %s off cannot connect: %v", skew, err)
		}
		t.Cleanup(nc.Close)
		hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 1, FreeGPUs: 1, Sent: skewed()}
		if err := nc.Publish(protocol.HeartbeatSubject(id), protocol.Encode(hb)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the skewed node online", func() bool { _, ok := r.online(protocol.RoleNode)[id]; return ok })
	}
}
