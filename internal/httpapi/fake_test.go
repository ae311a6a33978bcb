package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// fakeService is an in-memory Service. Jobs it accepts start queued; tests move them on with
// setStatus and can make any method fail or panic.
type fakeService struct {
	mu         sync.Mutex
	jobs       map[string]api.Job
	nextID     int
	lastSubmit *api.SubmitJobRequest
	submitErr  error
	jobErr     error // returned by Job once set
	nodes      []api.Node
	panicNodes bool

	// chain state and the last transaction broadcast; txErr rejects it
	proposals []api.Proposal
	txs       [][]byte
	txErr     error
}

func newFake() *fakeService { return &fakeService{jobs: map[string]api.Job{}} }

func (f *fakeService) SubmitJob(_ context.Context, req api.SubmitJobRequest) (api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return api.Job{}, f.submitErr
	}
	f.nextID++
	job := api.Job{ID: fmt.Sprintf("job-%d", f.nextID), Consumer: "omni1consumer", Status: api.StatusQueued}
	f.jobs[job.ID] = job
	f.lastSubmit = &req
	return job, nil
}

func (f *fakeService) Job(_ context.Context, id string) (api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.jobErr != nil {
		return api.Job{}, f.jobErr
	}
	job, ok := f.jobs[id]
	if !ok {
		return api.Job{}, fmt.Errorf("%w: job %q", api.ErrNotFound, id)
	}
	return job, nil
}

func (f *fakeService) Nodes(context.Context) ([]api.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicNodes {
		panic("fake: nodes exploded")
	}
	return f.nodes, nil
}

func (f *fakeService) Account(_ context.Context, address string) (api.Account, error) {
	if address != "omni1rich" {
		return api.Account{}, fmt.Errorf("%w: account %s", api.ErrNotFound, address)
	}
	return api.Account{Address: address, Balance: 42_000_000, Seq: 7}, nil
}

func (f *fakeService) Supply(context.Context) (api.Supply, error) {
	return api.Supply{Total: 1_000_000, Liquid: 600_000, Staked: 300_000, Escrowed: 90_000,
		Pools: map[string]uint64{"rewards": 10_000}, Burned: 5}, nil
}

func (f *fakeService) ChainAccount(_ context.Context, address string) (api.ChainAccount, error) {
	if address != "omni1rich" {
		return api.ChainAccount{}, &api.FieldError{Field: "address", Msg: "invalid address"}
	}
	return api.ChainAccount{Address: address, Balance: 42_000_000, Spendable: 40_000_000, Locked: 2_000_000,
		Bonded: 500_000_000, Seq: 7, Vesting: &api.Vesting{Total: 3_000_000, CliffUnix: 100, EndUnix: 200}}, nil
}

func (f *fakeService) Params(context.Context) (api.Params, error) {
	return api.Params{BurnBP: 200, RouterWeights: api.RouterWeights{Compute: 10_000}}, nil
}

func (f *fakeService) Validators(context.Context) ([]api.Validator, error) { return nil, nil }

func (f *fakeService) Proposals(context.Context) ([]api.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proposals, nil
}

func (f *fakeService) Proposal(_ context.Context, id uint64) (api.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.proposals {
		if p.ID == id {
			return p, nil
		}
	}
	return api.Proposal{}, fmt.Errorf("%w: proposal %d", api.ErrNotFound, id)
}

func (f *fakeService) Unbonding(context.Context, string) ([]api.Unbonding, error) { return nil, nil }

func (f *fakeService) BroadcastTx(_ context.Context, tx []byte) (api.BroadcastTxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.txErr != nil {
		return api.BroadcastTxResponse{}, f.txErr
	}
	f.txs = append(f.txs, tx)
	return api.BroadcastTxResponse{Hash: fmt.Sprintf("TX%d", len(f.txs)), Height: 9}, nil
}

func (f *fakeService) put(job api.Job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs[job.ID] = job
}

func (f *fakeService) setStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job := f.jobs[id]
	job.Status = status
	f.jobs[id] = job
}

func (f *fakeService) failJobs(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobErr = err
}

// newTestHandler returns the handler over svc, polling every millisecond and logging at Debug
// into the test's output.
func newTestHandler(t testing.TB, svc Service) *server {
	t.Helper()
	h, err := NewHandler(Options{
		Service:      svc,
		PollInterval: time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Info:         map[string]string{"chain_id": "omnisync-test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h.(*server)
}

// newTestClient serves h on a loopback listener and returns a client for it.
func newTestClient(t *testing.T, h http.Handler) *api.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := api.NewClient(srv.URL)
	c.HTTP = srv.Client()
	c.PollInterval = time.Millisecond
	return c
}

// serve runs one request through h in-process.
func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, bytes.NewReader(body)))
	return rec
}

// validRequest is a submission that passes every check; cases break one thing each.
func validRequest() api.SubmitJobRequest {
	a, b := []byte("int8 matrix A, row-major"), []byte("int8 matrix B")
	return api.SubmitJobRequest{
		Spec: api.JobSpec{
			Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: "matmul-int8"},
			Inputs: []api.Input{
				{Name: "a", Digest: api.DigestOf(a), Size: int64(len(a))},
				{Name: "b", Digest: api.DigestOf(b), Size: int64(len(b))},
			},
			Resources:       api.Resources{GPUs: 1, VRAMMiB: 8192},
			Placement:       api.Placement{Region: "eu-west"},
			MaxPricePerHour: 2_000_000,
			Budget:          5_000_000,
			TimeoutSeconds:  600,
			Verification:    api.VerifyFreivald,
		},
		InputData: map[string][]byte{"a": a, "b": b},
		Tx:        []byte("signed create_job tx"),
	}
}
