package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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

	// data plane: the spec each job was submitted with, the inputs stored for it, its
	// output, and the keys of the accounts that may sign for outputs
	specs     map[string]api.JobSpec
	inputs    map[string]map[string][]byte
	outputs   map[string][]byte
	logs      map[string][]byte
	keys      map[string]ed25519.PublicKey
	now       time.Time
	onChunk   func(jobID, name string, chunk []byte) // sees each read of an upload as it happens
	lastAuth  *api.OutputAuth
	uploadErr error // returned by UploadInput after reading the whole body
}

// Accounts the fake knows: jobs are submitted by fakeConsumer; fakeStranger has a key too.
const (
	fakeConsumer = "omni1consumer"
	fakeNode     = "omni1node"
	fakeStranger = "omni1stranger"
)

var (
	fakeNow      = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	consumerKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	strangerKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	uploadBuffer = 32 << 10 // how much the fake asks for per read, like a store streaming it
)

func newFake() *fakeService {
	return &fakeService{
		jobs: map[string]api.Job{}, specs: map[string]api.JobSpec{},
		inputs: map[string]map[string][]byte{}, outputs: map[string][]byte{},
		keys: map[string]ed25519.PublicKey{
			fakeConsumer: consumerKey.Public().(ed25519.PublicKey),
			fakeStranger: strangerKey.Public().(ed25519.PublicKey),
		},
		now: fakeNow,
	}
}

func (f *fakeService) SubmitJob(_ context.Context, req api.SubmitJobRequest) (api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return api.Job{}, f.submitErr
	}
	f.nextID++
	job := api.Job{ID: fmt.Sprintf("job-%d", f.nextID), Consumer: fakeConsumer, Status: api.StatusQueued}
	f.inputs[job.ID] = map[string][]byte{}
	for _, in := range req.Spec.Inputs {
		if data, ok := req.InputData[in.Name]; ok {
			f.inputs[job.ID][in.Name] = data
		} else {
			job.Status = api.StatusAwaitingInputs
		}
	}
	f.jobs[job.ID] = job
	f.specs[job.ID] = req.Spec
	f.lastSubmit = &req
	return job, nil
}

// UploadInput checks and stores an input the way the router does: in chunks, hashing as it
// goes, and holding the whole only once it has matched (the fake keeps it to show it).
func (f *fakeService) UploadInput(_ context.Context, jobID, name string, body io.Reader) error {
	f.mu.Lock()
	job, ok := f.jobs[jobID]
	spec := f.specs[jobID]
	_, stored := f.inputs[jobID][name]
	onChunk := f.onChunk
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: job %q", api.ErrNotFound, jobID)
	}
	i := slices.IndexFunc(spec.Inputs, func(in api.Input) bool { return in.Name == name })
	switch {
	case i < 0:
		return fmt.Errorf("%w: job %s declares no input %q", api.ErrNotFound, jobID, name)
	case stored:
		return fmt.Errorf("%w: input %q of job %s is already stored", api.ErrConflict, name, jobID)
	case job.Status != api.StatusAwaitingInputs:
		return fmt.Errorf("%w: job %s is %s, not awaiting inputs", api.ErrConflict, jobID, job.Status)
	}
	want := spec.Inputs[i]
	h := sha256.New()
	var data []byte
	buf := make([]byte, uploadBuffer)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if onChunk != nil {
				onChunk(jobID, name, buf[:n])
			}
			h.Write(buf[:n])
			data = append(data, buf[:n]...)
			if int64(len(data)) > want.Size {
				return &api.FieldError{Field: "body", Msg: fmt.Sprintf("more than the %d bytes the spec declares", want.Size)}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading input %q: %w", name, err)
		}
	}
	switch {
	case int64(len(data)) != want.Size:
		return &api.FieldError{Field: "body", Msg: fmt.Sprintf("size mismatch: %d bytes, spec declares %d", len(data), want.Size)}
	case "sha256:"+hex.EncodeToString(h.Sum(nil)) != want.Digest:
		return &api.FieldError{Field: "body", Msg: "digest mismatch"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.uploadErr != nil {
		return f.uploadErr
	}
	f.inputs[jobID][name] = data
	return nil
}

// JobOutput checks auth the way the router does: a known key, a good signature and expiry,
// then the job's consumer.
func (f *fakeService) JobOutput(_ context.Context, jobID string, auth api.OutputAuth) (api.JobOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAuth = &auth
	job, ok := f.jobs[jobID]
	if !ok {
		return api.JobOutput{}, fmt.Errorf("%w: job %q", api.ErrNotFound, jobID)
	}
	pub, ok := f.keys[auth.Address]
	if !ok {
		return api.JobOutput{}, fmt.Errorf("%w: unknown account %s", api.ErrUnauthorized, auth.Address)
	}
	if err := api.VerifyOutputAuth(pub, jobID, auth, f.now, api.MaxOutputAuthTTL); err != nil {
		return api.JobOutput{}, err
	}
	if auth.Address != job.Consumer {
		return api.JobOutput{}, fmt.Errorf("%w: %s is not the consumer of job %s", api.ErrForbidden, auth.Address, jobID)
	}
	data, ok := f.outputs[jobID]
	if !ok {
		return api.JobOutput{}, fmt.Errorf("%w: job %s has no output yet", api.ErrNotFound, jobID)
	}
	return api.JobOutput{JobID: jobID, Digest: api.DigestOf(data), Size: int64(len(data)),
		Verified: job.Verified, Status: job.Status, Data: data}, nil
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

// serve runs one request through h in-process; a body is sent as JSON.
func serve(h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return serveRequest(h, r)
}

func serveRequest(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
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

// Jobs checks auth the way the router does and lists the signer's jobs by id, newest
// (highest id) first.
func (f *fakeService) Jobs(_ context.Context, auth api.OutputAuth, q api.JobQuery) (api.JobList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastAuth = &auth
	pub, ok := f.keys[auth.Address]
	if !ok {
		return api.JobList{}, fmt.Errorf("%w: unknown account %s", api.ErrUnauthorized, auth.Address)
	}
	if err := api.VerifyJobListAuth(pub, auth, f.now, api.MaxOutputAuthTTL); err != nil {
		return api.JobList{}, err
	}
	list := api.JobList{Jobs: []api.Job{}}
	ids := slices.Sorted(maps.Keys(f.jobs))
	slices.Reverse(ids)
	for _, id := range ids {
		j := f.jobs[id]
		if j.Consumer == auth.Address && (q.Status == "" || j.Status == q.Status) && (q.After == "" || id < q.After) {
			list.Jobs = append(list.Jobs, j)
		}
	}
	if q.Limit > 0 && len(list.Jobs) > q.Limit {
		list.Jobs, list.Next = list.Jobs[:q.Limit], list.Jobs[q.Limit-1].ID
	}
	return list, nil
}

// JobLogs checks auth as JobOutput does and serves logs[jobID] from position from.
func (f *fakeService) JobLogs(_ context.Context, jobID string, auth api.OutputAuth, node string, from int64) (api.JobLogs, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	job, ok := f.jobs[jobID]
	if !ok {
		return api.JobLogs{}, fmt.Errorf("%w: job %q", api.ErrNotFound, jobID)
	}
	pub, ok := f.keys[auth.Address]
	if !ok {
		return api.JobLogs{}, fmt.Errorf("%w: unknown account %s", api.ErrUnauthorized, auth.Address)
	}
	if err := api.VerifyOutputAuth(pub, jobID, auth, f.now, api.MaxOutputAuthTTL); err != nil {
		return api.JobLogs{}, err
	}
	if auth.Address != job.Consumer {
		return api.JobLogs{}, fmt.Errorf("%w: %s is not the consumer of job %s", api.ErrForbidden, auth.Address, jobID)
	}
	data := f.logs[jobID]
	from = min(from, int64(len(data)))
	return api.JobLogs{JobID: jobID, Node: node, From: from, Next: int64(len(data)), Data: data[from:], EOF: true}, nil
}

// Stats counts the fake's jobs by status.
func (f *fakeService) Stats(context.Context) (api.RouterStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := api.RouterStats{Router: "fake", Jobs: map[string]int{}}
	for _, j := range f.jobs {
		st.Jobs[j.Status]++
	}
	return st, nil
}

// NodeHistory answers for fakeNode only: a settled job and, before it, a slash.
func (f *fakeService) NodeHistory(_ context.Context, node string, before int64, limit int) (api.NodeHistory, error) {
	if node != fakeNode {
		return api.NodeHistory{}, fmt.Errorf("%w: node %s", api.ErrNotFound, node)
	}
	all := []api.NodeHistoryEntry{
		{Height: 9, Kind: "settled", JobID: "job-2", Paid: 46_500, Reward: 25_000},
		{Height: 5, Kind: "slashed", JobID: "job-1", Amount: 50_000_000, Reason: "wrong result for job-1"},
	}
	h := api.NodeHistory{Node: node, Record: api.NodeRecord{Settled: 1, Failed: 1, Slashes: 1, Earned: 71_500, Slashed: 50_000_000}}
	for _, e := range all {
		if before > 0 && e.Height >= before {
			continue
		}
		if limit > 0 && len(h.Entries) == limit {
			h.NextBefore = h.Entries[len(h.Entries)-1].Height
			break
		}
		h.Entries = append(h.Entries, e)
	}
	return h, nil
}

// ValidatorRewards answers a fixed window: 1 OMNI paid on 10,000 bonded over a day.
func (f *fakeService) ValidatorRewards(context.Context) (api.RewardWindow, error) {
	return api.RewardWindow{FromHeight: 1, FromUnix: 1_700_000_000, ToHeight: 1000, ToUnix: 1_700_086_400, Paid: 1_000_000, Bonded: 10_000_000_000}, nil
}
