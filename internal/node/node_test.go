package node

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

// fakeChain records what the daemon sends and answers its one query.
type fakeChain struct {
	mu         sync.Mutex
	registered bool
	sent       []ledger.Msg
	refuse     map[string]bool // jobs whose result commitment the chain refuses
}

func (f *fakeChain) Send(_ context.Context, m ledger.Msg) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	if m.RegisterNode != nil {
		f.registered = true
	}
	if c := m.CommitResult; c != nil && f.refuse[c.JobID] {
		return "", fmt.Errorf("%w: job %s is cancelled", ledger.ErrBadState, c.JobID)
	}
	return fmt.Sprintf("TX%d", len(f.sent)), nil
}

// SendBatch records a commit_results batch and refuses the items the ledger would.
func (f *fakeChain) SendBatch(_ context.Context, m ledger.Msg) (string, []error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.CommitResults == nil {
		return "", nil, fmt.Errorf("unexpected %s", m.Kind())
	}
	f.sent = append(f.sent, m)
	var items []error
	for _, c := range m.CommitResults.Results {
		var err error
		if f.refuse[c.JobID] {
			err = fmt.Errorf("%w: job %s is cancelled", ledger.ErrBadState, c.JobID)
		}
		items = append(items, err)
	}
	return fmt.Sprintf("BATCH%d", len(f.sent)), items, nil
}

func (f *fakeChain) Query(_ context.Context, path string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(path, "node/") && f.registered {
		return json.Unmarshal([]byte(`{"status":"active"}`), v)
	}
	return fmt.Errorf("%w: %s", ledger.ErrNotFound, path)
}

func (f *fakeChain) commits() []ledger.MsgCommitResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ledger.MsgCommitResult
	for _, m := range f.sent {
		if m.CommitResult != nil {
			out = append(out, *m.CommitResult)
		}
		if m.CommitResults != nil {
			out = append(out, m.CommitResults.Results...)
		}
	}
	return out
}

// batches is the size of every commit_results batch sent, in order.
func (f *fakeChain) batches() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, m := range f.sent {
		if m.CommitResults != nil {
			out = append(out, len(m.CommitResults.Results))
		}
	}
	return out
}

// slowRuntime blocks each task until released, so a test can hold a GPU busy.
type slowRuntime struct {
	runtime.Native
	release chan struct{}
}

func (s slowRuntime) Run(ctx context.Context, t runtime.Task) (runtime.Result, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return runtime.Result{}, ctx.Err()
	}
	return s.Native.Run(ctx, t)
}

type rig struct {
	srv    *transport.Server
	router *nats.Conn
	js     jetstream.JetStream
	roots  *x509.CertPool
	grants *transport.Grants
}

func newRig(t *testing.T, nodeKey ed25519.PrivateKey) *rig {
	t.Helper()
	n := transporttest.Start(t, nodeKey)
	return &rig{srv: n.Server, router: n.Admin, js: n.JS, roots: n.Roots, grants: n.Grants}
}

func (r *rig) startNode(t *testing.T, key ed25519.PrivateKey, chain Chain, rt runtime.Runtime) *Daemon {
	t.Helper()
	return r.startNodeWith(t, key, chain, rt, nil)
}

// startNodeWith is startNode with the node's options changed by set.
func (r *rig) startNodeWith(t *testing.T, key ed25519.PrivateKey, chain Chain, rt runtime.Runtime, set func(*Options)) *Daemon {
	t.Helper()
	opts := Options{
		Key: key, RouterURL: r.srv.WebSocketURL(), RootCAs: r.roots, Chain: chain, Runtime: rt,
		Hardware: ledger.Hardware{GPUModel: "test", GPUs: 1, VRAMMiB: 1024, TFLOPSMilli: 1000}, PricePerHour: 1, Stake: 500,
		Heartbeat: 50 * time.Millisecond,
	}
	if set != nil {
		set(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// dispatch stores a job's inputs, grants the node what the router would (its inputs to
// read, its output to write) and sends it the job, returning the node's answer.
// collectResults passes every result the node with id reports to results, as the router
// would receive it.
func (r *rig) collectResults(t *testing.T, id string, results chan<- protocol.Result) {
	t.Helper()
	if _, err := r.router.Subscribe(protocol.ResultSubject(id), func(m *nats.Msg) {
		res, _ := protocol.Decode[protocol.Result](m.Data)
		results <- res
	}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) dispatch(t *testing.T, nodeID, jobID string, a, b *tensor.Int8Matrix) protocol.Ack {
	t.Helper()
	return r.dispatchCarrying(t, nodeID, jobID, a, b, nil, true)
}

// dispatchCarrying is dispatch with carried in the dispatch as its inline inputs, and the
// node granted the reads of the inputs only if grantReads.
func (r *rig) dispatchCarrying(t *testing.T, nodeID, jobID string, a, b *tensor.Int8Matrix, carried [][]byte, grantReads bool) protocol.Ack {
	t.Helper()
	ctx := context.Background()
	var inputs []api.Input
	for i, m := range []*tensor.Int8Matrix{a, b} {
		data, _ := m.MarshalBinary()
		d, err := transport.PutBlob(ctx, r.js, protocol.BlobBucket, data)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, api.Input{Name: string(rune('a' + i)), Digest: d, Size: int64(len(data))})
		if grantReads {
			r.grants.AllowRead(nodeID, d)
		}
	}
	r.grants.AllowWrite(nodeID, jobID, 1<<20)
	spec := api.JobSpec{Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMatMulInt8}, Inputs: inputs, Resources: api.Resources{GPUs: 1}}
	msg, err := r.router.Request(protocol.DispatchSubject(nodeID), protocol.Encode(protocol.Dispatch{JobID: jobID, Router: "router", Spec: spec, TimeoutSeconds: 30, Inputs: carried}), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := protocol.Decode[protocol.Ack](msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func TestNodeRunsJobStoresOutputAndCommitsDigest(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	chain := &fakeChain{}
	results := make(chan protocol.Result, 1)
	id := string(keys.AddressOfKey(key))
	r.collectResults(t, id, results)
	d := r.startNode(t, key, chain, runtime.Native{})
	if chain.sent[0].RegisterNode == nil {
		t.Fatal("the node did not register before serving")
	}
	a, _ := tensor.RandomInt8(16, 8, 1)
	b, _ := tensor.RandomInt8(8, 4, 2)
	if ack := r.dispatch(t, d.ID(), "job-0000000000000001", a, b); !ack.Accepted {
		t.Fatalf("dispatch declined: %s", ack.Error)
	}
	res := <-results
	if res.Error != "" || res.CommitTx == "" {
		t.Fatalf("result %+v", res)
	}
	out, err := transport.GetBlob(context.Background(), r.js, protocol.BlobBucket, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tensor.MatMulInt8(a, b)
	wantBytes, _ := want.MarshalBinary()
	if string(out) != string(wantBytes) {
		t.Fatal("stored output is not A·B")
	}
	if c := chain.commits(); len(c) != 1 || c[0].ResultDigest != res.Digest || len(chain.batches()) != 0 {
		t.Fatalf("commits %+v, want one for %s, alone in its tx", c, res.Digest)
	}
}

// A node computes with the inputs its dispatch carries, without fetching them, when they
// match the spec's digests; it fetches an input whose carried bytes do not (a router that
// lies, or errs), so that a wrong input is never computed with.
func TestNodeUsesCarriedInputsOnlyWhenTheyMatch(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	results := make(chan protocol.Result, 1)
	id := string(keys.AddressOfKey(key))
	r.collectResults(t, id, results)
	d := r.startNode(t, key, &fakeChain{}, runtime.Native{})
	a, _ := tensor.RandomInt8(16, 8, 1)
	b, _ := tensor.RandomInt8(8, 4, 2)
	other, _ := tensor.RandomInt8(16, 8, 3) // of a's size
	wantC, _ := tensor.MatMulInt8(a, b)
	want, _ := wantC.MarshalBinary()
	aData, _ := a.MarshalBinary()
	bData, _ := b.MarshalBinary()
	otherData, _ := other.MarshalBinary()
	for i, tc := range []struct {
		name       string
		carried    [][]byte
		grantReads bool
		fails      bool
	}{
		// Reads once granted stay granted: the cases without come first.
		{"both carried, no read granted", [][]byte{aData, bData}, false, false},
		{"a wrong input carried, no read granted", [][]byte{otherData, bData}, false, true},
		{"a wrong input carried, reads granted", [][]byte{otherData, bData}, true, false},
	} {
		jobID := fmt.Sprintf("job-%016d", i+1)
		if ack := r.dispatchCarrying(t, d.ID(), jobID, a, b, tc.carried, tc.grantReads); !ack.Accepted {
			t.Fatalf("%s: dispatch declined: %s", tc.name, ack.Error)
		}
		res := <-results
		if tc.fails {
			if res.Error == "" || !strings.Contains(res.Error, "fetch input a") {
				t.Errorf("%s: result %+v, want the job failed fetching input a", tc.name, res)
			}
			continue
		}
		if res.Error != "" {
			t.Fatalf("%s: result %+v", tc.name, res)
		}
		out, err := transport.GetBlob(context.Background(), r.js, protocol.BlobBucket, res.Digest)
		if err != nil || string(out) != string(want) {
			t.Fatalf("%s: stored output is not A·B (%v)", tc.name, err)
		}
	}
}

func TestNodeNeverDoubleBooksAGPU(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	rt := slowRuntime{release: make(chan struct{})}
	d := r.startNode(t, key, &fakeChain{}, rt)
	a, _ := tensor.RandomInt8(4, 4, 1)
	if ack := r.dispatch(t, d.ID(), "job-0000000000000001", a, a); !ack.Accepted {
		t.Fatalf("first job declined: %s", ack.Error)
	}
	if ack := r.dispatch(t, d.ID(), "job-0000000000000002", a, a); ack.Accepted || ack.Error != protocol.DeclineNoFreeGPU {
		t.Fatalf("second job on a one-GPU node: %+v, want declined", ack)
	}
	if ack := r.dispatch(t, d.ID(), "job-0000000000000001", a, a); !ack.Accepted {
		t.Fatal("a retried dispatch of the running job must be acknowledged, not declined")
	}
	close(rt.release)
}

func TestNodeReportsFailures(t *testing.T) {
	key := newKey(t)
	r := newRig(t, key)
	results := make(chan protocol.Result, 1)
	r.collectResults(t, string(keys.AddressOfKey(key)), results)
	chain := &fakeChain{}
	d := r.startNode(t, key, chain, runtime.Native{})
	a, _ := tensor.RandomInt8(4, 5, 1) // 4×5 · 4×5 does not multiply
	if ack := r.dispatch(t, d.ID(), "job-0000000000000003", a, a); !ack.Accepted {
		t.Fatal(ack.Error)
	}
	res := <-results
	if !strings.HasPrefix(res.Error, "run:") || res.Digest != "" {
		t.Fatalf("result %+v, want a run failure", res)
	}
	if len(chain.commits()) != 0 {
		t.Fatal("a failed job committed a result")
	}
}

// Jobs that end together on a many-GPU node commit their results in one commit_results
// tx, and each job's result carries its own item's outcome: the one the chain refuses
// fails alone.
func TestResultsEndingTogetherShareACommitTx(t *testing.T) {
	const n = 4
	key := newKey(t)
	r := newRig(t, key)
	id := string(keys.AddressOfKey(key))
	results := make(chan protocol.Result, n)
	r.collectResults(t, id, results)
	refused := fmt.Sprintf("job-%016x", 2)
	chain := &fakeChain{refuse: map[string]bool{refused: true}}
	rt := slowRuntime{release: make(chan struct{})}
	d := r.startNodeWith(t, key, chain, rt, func(o *Options) {
		o.Hardware.GPUs, o.CommitWindow, o.CommitBatchMax = n, time.Minute, n
	})
	a, _ := tensor.RandomInt8(4, 4, 1)
	for i := range n {
		if ack := r.dispatch(t, d.ID(), fmt.Sprintf("job-%016x", i), a, a); !ack.Accepted {
			t.Fatalf("job %d declined: %s", i, ack.Error)
		}
	}
	close(rt.release) // every job ends at once
	for range n {
		res := <-results
		if res.JobID == refused {
			if !strings.HasPrefix(res.Error, "commit result:") || !strings.Contains(res.Error, "cancelled") || res.CommitTx != "" {
				t.Errorf("refused job: %+v, want the chain's refusal", res)
			}
			continue
		}
		if res.Error != "" || res.CommitTx != "BATCH2" {
			t.Errorf("job %s: %+v, want committed by the batch", res.JobID, res)
		}
	}
	if b := chain.batches(); len(b) != 1 || b[0] != n {
		t.Fatalf("batches %v, want one of %d", b, n)
	}
}

func newKey(t *testing.T) ed25519.PrivateKey { return transporttest.Key(t) }
