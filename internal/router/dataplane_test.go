package router

// Attacks on the router's data plane (issue #8, findings 2, 4 and 6) by participants
// built from the transport package, not the honest node daemon.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
)

// consumerJob builds a funded consumer's signed matmul job over two random 8×8 inputs.
func consumerJob(t testing.TB, chain *fakeChain) (api.SubmitJobRequest, map[string][]byte) {
	t.Helper()
	return consumerJobAt(t, chain, api.VerifyFreivald)
}

// consumerJobAt is consumerJob at a verification level.
func consumerJobAt(t testing.TB, chain *fakeChain, level string) (api.SubmitJobRequest, map[string][]byte) {
	t.Helper()
	return consumerJobWith(t, chain, func(s *api.JobSpec) { s.Verification = level })
}

// consumerJobWith is consumerJob with its spec edited before it is signed.
func consumerJobWith(t testing.TB, chain *fakeChain, edit func(*api.JobSpec)) (api.SubmitJobRequest, map[string][]byte) {
	t.Helper()
	return consumerJobFor(t, chain, newKey(t), 0, edit)
}

// consumerJobFor is consumerJobWith signed by consumer with sequence seq.
func consumerJobFor(t testing.TB, chain *fakeChain, consumer ed25519.PrivateKey, seq uint64, edit func(*api.JobSpec)) (api.SubmitJobRequest, map[string][]byte) {
	t.Helper()
	chain.mu.Lock()
	chain.balances[keys.AddressOfKey(consumer)] = 10 * ledger.UomniPerOMNI
	chain.mu.Unlock()
	data := map[string][]byte{}
	var inputs []api.Input
	for i, name := range []string{"a", "b"} {
		m, _ := tensor.RandomInt8(8, 8, uint64(100+i))
		b, _ := m.MarshalBinary()
		data[name] = b
		inputs = append(inputs, api.Input{Name: name, Digest: api.DigestOf(b), Size: int64(len(b))})
	}
	spec := api.JobSpec{
		Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMatMulInt8}, Inputs: inputs,
		Resources: api.Resources{GPUs: 1}, MaxPricePerHour: 5 * ledger.UomniPerOMNI, Budget: ledger.UomniPerOMNI,
		TimeoutSeconds: 30, Verification: api.VerifyFreivald,
	}
	edit(&spec)
	tx, err := ledger.SignTx(consumer, "test", seq, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
		Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return api.SubmitJobRequest{Spec: spec, InputData: data, Tx: tx}, data
}

func (r *Router) stored(t *testing.T, digest string) bool {
	t.Helper()
	_, err := transport.GetBlob(context.Background(), r.js, protocol.BlobBucket, digest)
	if err != nil && !errors.Is(err, transport.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// Finding 4: inputs were stored before the chain accepted the escrow, so anyone could
// fill the store with jobs the chain rejected.
func TestNothingIsStoredWithoutEscrow(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	chain.rejectCreate = errors.New("insufficient funds (code 5)")
	req, data := consumerJob(t, chain)
	if _, err := r.SubmitJob(context.Background(), req); err == nil {
		t.Fatal("a job the chain rejected was accepted")
	}
	for name, b := range data {
		if r.stored(t, api.DigestOf(b)) {
			t.Fatalf("input %s of a rejected job was stored", name)
		}
	}
	// Nor can the inputs be uploaded afterwards: there is no escrowed job to take them.
	err := r.UploadInput(context.Background(), ledger.JobID(keys.AddressOfKey(newKey(t)), 0), "a", bytes.NewReader(data["a"]))
	if !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("upload for a job that was never escrowed: %v, want ErrNotFound", err)
	}
}

// Seen in the chaos run's router partition: a submission escrowed just as the router
// rejoined its cluster found the blob stream without a leader for a few seconds, its
// inline inputs were not stored, and the consumer, answered, never uploaded them: the
// job waited to its deadline and was refunded five minutes later. The router holds the
// bytes and stores them itself once the stream answers.
func TestInlineInputsTheStoreRefusedAreStoredOnceItAnswers(t *testing.T) {
	first, limit := inlineRetryFirst, inlineRetryFor
	inlineRetryFirst, inlineRetryFor = 20*time.Millisecond, time.Minute
	t.Cleanup(func() { inlineRetryFirst, inlineRetryFor = first, limit })
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	ctx := context.Background()
	if _, err := r.blobs.Put(ctx, []byte("opens the bucket")); err != nil {
		t.Fatal(err)
	}
	// The outage: the blob stream is gone, as for a stream without a leader ("no response
	// from stream"), until it is made again with the same config.
	stream, err := r.js.Stream(ctx, "OBJ_"+protocol.BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg := stream.CachedInfo().Config
	if err := r.js.DeleteStream(ctx, cfg.Name); err != nil {
		t.Fatal(err)
	}
	req, data := consumerJob(t, chain)
	j, err := r.SubmitJob(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != api.StatusAwaitingInputs {
		t.Fatalf("status %q with the store down, want %q", j.Status, api.StatusAwaitingInputs)
	}
	time.Sleep(100 * time.Millisecond) // a few tries fail
	if _, err := r.js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the inline inputs stored on a later try", func() bool { return jobHas(r, j.ID, "input") })
	for name, b := range data {
		if !r.stored(t, api.DigestOf(b)) {
			t.Fatalf("input %s not in the store", name)
		}
	}
	r.mu.Lock()
	held := r.jobs[j.ID]
	r.mu.Unlock()
	if missing := held.missingInputs(); len(missing) > 0 {
		t.Fatalf("the job still misses %v", missing)
	}
}

func TestInputsUploadedAfterEscrowAreCheckedThenPlaced(t *testing.T) {
	chain := newFakeChain()
	nodeKey := newKey(t)
	chain.addNode(keys.AddressOfKey(nodeKey), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	dispatched := make(chan string, 1)
	scriptedNode(t, r, roots, nodeKey, func(_ *nats.Conn, d protocol.Dispatch) protocol.Ack {
		dispatched <- d.JobID
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })

	req, data := consumerJob(t, chain)
	req.InputData = map[string][]byte{"a": data["a"]} // b comes later
	j, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != api.StatusAwaitingInputs {
		t.Fatalf("status %q, want %q", j.Status, api.StatusAwaitingInputs)
	}
	ctx := context.Background()
	if err := r.UploadInput(ctx, j.ID, "c", bytes.NewReader(data["b"])); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("an undeclared input: %v, want ErrNotFound", err)
	}
	if err := r.UploadInput(ctx, j.ID, "a", bytes.NewReader(data["a"])); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("an input already stored: %v, want ErrConflict", err)
	}
	forged := bytes.Repeat([]byte{7}, len(data["b"]))
	var fe *api.FieldError
	if err := r.UploadInput(ctx, j.ID, "b", bytes.NewReader(forged)); !errors.As(err, &fe) {
		t.Fatalf("bytes that do not match the digest: %v, want a field error", err)
	}
	if err := r.UploadInput(ctx, j.ID, "b", bytes.NewReader(data["b"][:10])); !errors.As(err, &fe) {
		t.Fatalf("a short upload: %v, want a field error", err)
	}
	if r.stored(t, api.DigestOf(data["b"])) {
		t.Fatal("a rejected upload left bytes under the input's digest")
	}
	select {
	case <-dispatched:
		t.Fatal("the job was placed before its inputs were stored")
	case <-time.After(200 * time.Millisecond):
	}
	if err := r.UploadInput(ctx, j.ID, "b", bytes.NewReader(data["b"])); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-dispatched:
		if got != j.ID {
			t.Fatalf("dispatched %s, want %s", got, j.ID)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the job was not placed once its inputs arrived")
	}
}

// blobsOf is a participant's blob client for router r's blob service: what a node built
// from our packages uses.
func blobsOf(nc *nats.Conn, key ed25519.PrivateKey, r *Router) transport.Blobs {
	return transport.Blobs{Conn: nc, ID: string(keys.AddressOfKey(key)), Bucket: protocol.BlobBucket, Server: string(r.id)}
}

// Finding 2: any registered node read any job's inputs and outputs.
func TestOnlyTheAssignedNodeReadsAJobsInputsWhileAssigned(t *testing.T) {
	chain := newFakeChain()
	assigned, bystander := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(assigned), ledger.UomniPerOMNI, 150_000) // scores higher
	chain.addNode(keys.AddressOfKey(bystander), 4*ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	release := make(chan struct{})
	type read struct {
		data []byte
		err  error
	}
	reads := make(chan read, 2)
	writes := make(chan error, 1)
	scriptedNode(t, r, roots, assigned, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			b := blobsOf(nc, assigned, r)
			data, err := b.Get(context.Background(), d.Spec.Inputs[0].Digest)
			reads <- read{data, err}
			_, err = b.Put(context.Background(), d.JobID, []byte("an output"))
			writes <- err
			<-release
			// Declining ends the attempt; the grant must end with it.
			_ = nc.Publish(protocol.ResultSubject(b.ID), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: b.ID, Error: "run: gave up"}))
		}()
		return protocol.Ack{Accepted: true}
	})
	bystanderConn := scriptedNode(t, r, roots, bystander, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Error: "busy"} })
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })

	req, data := consumerJob(t, chain)
	j, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := <-reads
	if got.err != nil || !bytes.Equal(got.data, data["a"]) {
		t.Fatalf("the assigned node could not read its input: %v", got.err)
	}
	if err := <-writes; err != nil {
		t.Fatalf("the assigned node could not store its output: %v", err)
	}
	spy := blobsOf(bystanderConn, bystander, r)
	if _, err := spy.Get(context.Background(), req.Spec.Inputs[0].Digest); !errors.Is(err, transport.ErrForbidden) {
		t.Fatalf("an unassigned node read the job's input: %v", err)
	}
	if _, err := spy.Put(context.Background(), j.ID, []byte("junk")); !errors.Is(err, transport.ErrForbidden) {
		t.Fatalf("an unassigned node wrote for the job: %v", err)
	}
	close(release)
	waitFor(t, "the attempt to end", func() bool { return jobHas(r, j.ID, "retry") || jobHas(r, j.ID, "failed") })
	if err := r.grants.MayRead(string(keys.AddressOfKey(assigned)), req.Spec.Inputs[0].Digest); err == nil {
		t.Fatal("the node kept its read right after its attempt ended")
	}
}

// Finding 6: a node slashed and deactivated kept its rights over its open connection.
func TestDeactivatedNodeIsDisconnectedWithinTheRightsInterval(t *testing.T) {
	chain := newFakeChain()
	slashed, honest := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(slashed), ledger.UomniPerOMNI, 10_000)
	chain.addNode(keys.AddressOfKey(honest), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterWith(t, Options{Chain: chain, RightsInterval: 100 * time.Millisecond})
	ack := func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{} }
	bad := scriptedNode(t, r, roots, slashed, ack)
	good := scriptedNode(t, r, roots, honest, ack)
	dropped := make(chan struct{}, 1)
	bad.SetDisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case dropped <- struct{}{}:
		default:
		}
	})
	time.Sleep(300 * time.Millisecond) // a few checks pass while both are active
	if !bad.IsConnected() || !good.IsConnected() {
		t.Fatal("an active node was disconnected")
	}
	chain.setNodeStatus(keys.AddressOfKey(slashed), ledger.NodeInactive)
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("the deactivated node is still connected")
	}
	if !good.IsConnected() {
		t.Fatal("the honest node was disconnected too")
	}
	if !strings.HasPrefix(good.ConnectedUrl(), "wss://") {
		t.Fatalf("honest node on %q", good.ConnectedUrl())
	}
}

// The consumer reads its job's output with a signed, time-bounded request; nobody else
// can, and the output says it is unverified until the chain settles the job.
func TestOnlyTheConsumerReadsTheOutput(t *testing.T) {
	chain := newFakeChain()
	now := time.Unix(1_800_000_000, 0)
	r, _ := startRouterWith(t, Options{Chain: chain, Now: func() time.Time { return now }})
	consumer, other := newKey(t), newKey(t)
	const jobID = "job-00000000000000c1"
	chain.jobs[jobID] = &ledger.Job{ID: jobID, Consumer: keys.AddressOfKey(consumer), Status: ledger.JobAssigned}
	sign := func(key ed25519.PrivateKey, ttl time.Duration) api.OutputAuth {
		return api.SignOutputAuth(key, string(keys.AddressOfKey(key)), jobID, ttl, now)
	}
	ctx := context.Background()
	if _, err := r.JobOutput(ctx, jobID, sign(consumer, time.Minute)); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("before any output: %v, want ErrNotFound", err)
	}
	output := []byte("the product")
	digest, err := transport.PutBlob(ctx, r.js, protocol.BlobBucket, output)
	if err != nil {
		t.Fatal(err)
	}
	chain.mu.Lock()
	chain.jobs[jobID].ResultDigest, chain.jobs[jobID].Status = digest, ledger.JobComputed
	chain.mu.Unlock()

	forged := sign(consumer, time.Minute)
	forged.Signature[0] ^= 1
	expired := sign(consumer, time.Minute)
	expired.Expires = now.Unix()
	borrowed := sign(other, time.Minute)
	borrowed.Address = string(keys.AddressOfKey(consumer)) // the consumer's name, another's key
	for name, c := range map[string]struct {
		auth api.OutputAuth
		want error
	}{
		"another account":        {sign(other, time.Minute), api.ErrForbidden},
		"another key, same name": {borrowed, api.ErrUnauthorized},
		"a bad signature":        {forged, api.ErrUnauthorized},
		"expired":                {expired, api.ErrUnauthorized},
		"good for too long":      {sign(consumer, api.MaxOutputAuthTTL+time.Minute), api.ErrUnauthorized},
		"no address":             {api.OutputAuth{Expires: now.Unix() + 60}, api.ErrUnauthorized},
		"signed for another job": {api.SignOutputAuth(consumer, string(keys.AddressOfKey(consumer)), "job-00000000000000c2", time.Minute, now), api.ErrUnauthorized},
	} {
		if out, err := r.JobOutput(ctx, jobID, c.auth); !errors.Is(err, c.want) || out.Data != nil {
			t.Errorf("%s: %v (%d bytes), want %v", name, err, len(out.Data), c.want)
		}
	}
	out, err := r.JobOutput(ctx, jobID, sign(consumer, time.Minute))
	if err != nil || !bytes.Equal(out.Data, output) || out.Digest != digest || out.Verified || out.Status != api.StatusComputed {
		t.Fatalf("consumer's read: %+v, %v", out, err)
	}
	chain.mu.Lock()
	chain.jobs[jobID].Status = ledger.JobSettled
	chain.mu.Unlock()
	if out, err := r.JobOutput(ctx, jobID, sign(consumer, time.Minute)); err != nil || !out.Verified {
		t.Fatalf("after settlement: %+v, %v", out, err)
	}
}

// A registered node that does not run a job cannot write into its logs, which only its
// consumer reads: the router keeps log chunks only from a node it awaits for that job.
func TestOnlyTheRunningNodeWritesAJobsLogs(t *testing.T) {
	chain := newFakeChain()
	assigned, bystander := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(assigned), ledger.UomniPerOMNI, 150_000) // scores higher
	chain.addNode(keys.AddressOfKey(bystander), 4*ledger.UomniPerOMNI, 10_000)
	r, roots := startRouter(t, chain)
	bystanderConn := scriptedNode(t, r, roots, bystander, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Error: "busy"} })
	bystanderID := string(keys.AddressOfKey(bystander))
	assignedID := string(keys.AddressOfKey(assigned))
	scriptedNode(t, r, roots, assigned, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			// The bystander forges a chunk for the job under its own name first.
			forged := protocol.LogChunk{JobID: d.JobID, NodeID: bystanderID, Data: []byte("forged\n"), EOF: true}
			_ = bystanderConn.Publish(protocol.LogSubject(bystanderID), protocol.Encode(forged))
			_ = bystanderConn.Flush()
			// Under the running node's name it has no right to publish at all.
			_ = bystanderConn.Publish(protocol.LogSubject(assignedID), protocol.Encode(protocol.LogChunk{JobID: d.JobID, NodeID: assignedID, Data: []byte("impostor\n")}))
			_ = bystanderConn.Flush()
			honest := protocol.LogChunk{JobID: d.JobID, NodeID: assignedID, Data: []byte("epoch 1\n"), EOF: true}
			_ = nc.Publish(protocol.LogSubject(assignedID), protocol.Encode(honest))
			_ = nc.Flush()
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "both nodes online", func() bool { return len(r.online(protocol.RoleNode)) == 2 })
	id := submit(t, r, chain)
	logsOf := func() map[string]string {
		r.mu.Lock()
		j := r.jobs[id]
		r.mu.Unlock()
		out := map[string]string{}
		if j == nil {
			return out
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		for n, l := range j.logs {
			out[n] = string(l.data)
		}
		return out
	}
	waitFor(t, "the running node's log", func() bool { return logsOf()[assignedID] != "" })
	if got := logsOf(); len(got) != 1 || got[assignedID] != "epoch 1\n" {
		t.Fatalf("the job's logs: %q", got)
	}
}

// The chain's node list the router last read may predate a node that registered and
// connected since: it keeps its connection, and loses it only when the chain says so.
func TestANodeNewerThanTheRoutersViewKeepsItsConnection(t *testing.T) {
	chain := newFakeChain()
	old, newer := newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(old), ledger.UomniPerOMNI, 10_000)
	r, roots := startRouterWith(t, Options{Chain: chain, RightsInterval: time.Hour})
	ctx := context.Background()
	view, err := r.placementView(ctx)
	if err != nil {
		t.Fatal(err)
	}
	chain.addNode(keys.AddressOfKey(newer), ledger.UomniPerOMNI, 10_000)
	nc := scriptedNode(t, r, roots, newer, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{} })
	dropped := make(chan struct{}, 1)
	nc.SetDisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case dropped <- struct{}{}:
		default:
		}
	})
	r.checkRights(ctx, view)
	select {
	case <-dropped:
		t.Fatal("a node registered after the router's view was read was disconnected")
	case <-time.After(300 * time.Millisecond):
	}
	chain.setNodeStatus(keys.AddressOfKey(newer), ledger.NodeInactive)
	r.checkRights(ctx, view)
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("the node the chain deactivated is still connected")
	}
}

// GET /v1/jobs lists the signer's own jobs, newest first, from the shared store: whatever
// other consumers' records the store holds, and a record added after a listing shows up in
// the next (the router remembers whose each record is, never which records exist).
func TestJobListingShowsOnlyTheSignersJobs(t *testing.T) {
	chain := newFakeChain()
	r, _ := startRouter(t, chain)
	alice, bob := newKey(t), newKey(t)
	submit := func(k ed25519.PrivateKey, seq uint64) string {
		req, _ := consumerJobFor(t, chain, k, seq, func(*api.JobSpec) {})
		j, err := r.SubmitJob(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	list := func(k ed25519.PrivateKey) []string {
		l, err := r.Jobs(context.Background(), api.SignJobListAuth(k, string(keys.AddressOfKey(k)), time.Minute, time.Now()), api.JobQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range l.Jobs {
			ids = append(ids, j.ID)
		}
		return ids
	}
	a0, b0 := submit(alice, 0), submit(bob, 0)
	if got := list(alice); !slices.Equal(got, []string{a0}) {
		t.Fatalf("alice's jobs: %v, want [%s]", got, a0)
	}
	a1, b1 := submit(alice, 1), submit(bob, 1)
	if got := list(alice); !slices.Equal(got, []string{a1, a0}) {
		t.Fatalf("alice's jobs after two more records: %v, want [%s %s]", got, a1, a0)
	}
	if got := list(bob); !slices.Equal(got, []string{b1, b0}) {
		t.Fatalf("bob's jobs: %v, want [%s %s]", got, b1, b0)
	}
}
