package cli

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// fakeRouter takes jobs as the router's intake does, sequences included: a synchronous
// submission must carry the committed sequence and commits at once; an Async one may
// carry the mempool's next sequence, within ledger.MaxPending of the committed one, and
// waits, queued and not escrowed, for commitBlock. Inputs are taken once escrowed.
type fakeRouter struct {
	*fakeDaemon
	pending  []ledger.Tx        // admitted Async escrows, in sequence order
	jobs     map[string]api.Job // by id
	requests []api.SubmitJobRequest
	uploads  map[string][]string // input names stored, by job
}

func (r *fakeRouter) Account(_ context.Context, address string) (api.Account, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.accounts[address]
	return api.Account{Address: address, Balance: a.Balance, Seq: a.Seq}, nil
}

func (r *fakeRouter) SubmitJob(_ context.Context, req api.SubmitJobRequest) (api.Job, error) {
	tx, err := ledger.DecodeTx(req.Tx)
	if err != nil {
		return api.Job{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
	signer := string(tx.Signer)
	acct, seq := r.accounts[signer], tx.Body.Seq
	id := ledger.JobID(tx.Signer, seq)
	switch {
	case tx.Body.CreateJob == nil || tx.Body.CreateJob.SpecHash != req.Spec.Hash():
		return api.Job{}, &api.FieldError{Field: "tx", Msg: "not a create_job for this spec"}
	case !req.Async && seq != acct.Seq:
		return api.Job{}, fmt.Errorf("%w: tx sequence %d, account expects %d", api.ErrConflict, seq, acct.Seq)
	case req.Async && (seq < acct.Seq || seq-acct.Seq >= ledger.MaxPending):
		return api.Job{}, fmt.Errorf("%w: tx sequence %d, account expects %d to %d", api.ErrConflict, seq, acct.Seq, acct.Seq+ledger.MaxPending-1)
	case r.jobs[id].ID != "" && !escrowRefused(r.jobs[id]): // the router takes a refused one's sequence again
		return api.Job{}, fmt.Errorf("%w: job %s was already submitted", api.ErrConflict, id)
	case seq != acct.Seq+uint64(len(r.pending)):
		return api.Job{}, fmt.Errorf("%w: escrow budget: wrong sequence %d", api.ErrBadRequest, seq)
	}
	j := api.Job{ID: id, Consumer: signer, Status: api.StatusQueued}
	r.jobs[id] = j
	if !req.Async {
		acct.Seq++
		r.accounts[signer] = acct
		r.escrowLocked(id)
		return r.jobs[id], nil
	}
	r.pending = append(r.pending, tx)
	return j, nil
}

// commitBlock commits every pending escrow, as a block would.
func (r *fakeRouter) commitBlock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tx := range r.pending {
		acct := r.accounts[string(tx.Signer)]
		acct.Seq++
		r.accounts[string(tx.Signer)] = acct
		r.escrowLocked(ledger.JobID(tx.Signer, tx.Body.Seq))
	}
	r.pending = nil
}

func (r *fakeRouter) escrowLocked(id string) {
	j := r.jobs[id]
	j.Events = append(j.Events, api.Event{Stage: "escrowed", Message: "1 OMNI locked in escrow"})
	r.jobs[id] = j
}

func (r *fakeRouter) Job(_ context.Context, id string) (api.Job, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[id]
	if !ok {
		return api.Job{}, fmt.Errorf("%w: job %s", api.ErrNotFound, id)
	}
	return j, nil
}

func (r *fakeRouter) UploadInput(_ context.Context, id, name string, body io.Reader) error {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.ContainsFunc(r.jobs[id].Events, func(e api.Event) bool { return e.Stage == "escrowed" }) {
		return fmt.Errorf("%w: job %s has no committed escrow yet", api.ErrConflict, id)
	}
	r.uploads[id] = append(r.uploads[id], name)
	return nil
}

// seqs are the sequences of the escrows submitted so far, and whether each was Async.
func (r *fakeRouter) seqs(t *testing.T) (seqs []uint64, async []bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.requests {
		tx, err := ledger.DecodeTx(req.Tx)
		if err != nil {
			t.Fatal(err)
		}
		seqs, async = append(seqs, tx.Body.Seq), append(async, req.Async)
	}
	return seqs, async
}

// newRouterEnv is newCLIEnv with a fakeRouter behind the REST API; the default wallet's
// committed sequence is 3.
func newRouterEnv(t *testing.T) (*cliEnv, *fakeRouter) {
	t.Helper()
	e := newCLIEnv(t)
	r := &fakeRouter{fakeDaemon: e.daemon, jobs: map[string]api.Job{}, uploads: map[string][]string{}}
	h, err := httpapi.NewHandler(httpapi.Options{Service: r, Info: map[string]string{"chain_id": testChainID}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Setenv(envAPIURL, srv.URL)
	return e, r
}

func matmulArgs(t *testing.T, more ...string) []string {
	a, b := writeNPY(t, 4, 3, 1), writeNPY(t, 3, 2, 2)
	return append([]string{"job", "submit", "--kernel", "matmul-int8", "--input", "a=" + a, "--input", "b=" + b}, more...)
}

// --async submissions sign one sequence after another, past the jobs still waiting for
// their block; a synchronous one needs the committed sequence, and says what to do when
// a pending job holds it.
func TestJobSubmitAsyncSignsPastPendingJobs(t *testing.T) {
	e, r := newRouterEnv(t)
	me := keys.Address(testAddr(1))

	job := decodeJSON[api.Job](t, e.ok(matmulArgs(t, "--async", "-o", "json")...))
	if job.ID != ledger.JobID(me, 3) || job.Status != api.StatusQueued {
		t.Fatalf("first async job %+v, want %s queued", job, ledger.JobID(me, 3))
	}
	out, errOut, code := e.run(matmulArgs(t, "--async", "--count", "3")...)
	if code != 0 {
		t.Fatalf("--count 3: exit %d: %s", code, errOut)
	}
	want := []string{ledger.JobID(me, 4), ledger.JobID(me, 5), ledger.JobID(me, 6)}
	if got := strings.Fields(out); !slices.Equal(got, want) {
		t.Fatalf("--count 3 printed %q, want the jobs of sequences 4 to 6 %q", got, want)
	}
	if !strings.Contains(errOut, "submitted 3 jobs") || !strings.Contains(errOut, "once their block commits") {
		t.Errorf("stderr %q does not say the three are waiting for their block", errOut)
	}
	if seqs, async := r.seqs(t); !slices.Equal(seqs, []uint64{3, 4, 5, 6}) || slices.Contains(async, false) {
		t.Fatalf("escrows signed with %v (async %v), want 3 to 6, all async", seqs, async)
	}

	// Synchronous, the committed sequence (3) is a pending job's.
	_, errOut, code = e.run(matmulArgs(t)...)
	if code == 0 || !strings.Contains(errOut, "already submitted") || !strings.Contains(errOut, "submit with --async") {
		t.Errorf("sync submit over pending jobs: exit %d, stderr %q; want a conflict that suggests --async", code, errOut)
	}
	// An explicit sequence a pending job holds.
	_, errOut, code = e.run(matmulArgs(t, "--async", "--seq", "5")...)
	if code == 0 || !strings.Contains(errOut, "already submitted") || !strings.Contains(errOut, "pass --seq") {
		t.Errorf("--seq 5, taken: exit %d, stderr %q; want a conflict that says to pass a free --seq", code, errOut)
	}
	// An explicit free one.
	list := decodeJSON[[]api.Job](t, e.ok(matmulArgs(t, "--async", "--seq", "7", "--count", "2", "-o", "json")...))
	if len(list) != 2 || list[0].ID != ledger.JobID(me, 7) || list[1].ID != ledger.JobID(me, 8) {
		t.Fatalf("--seq 7 --count 2 -o json: %+v, want the jobs of sequences 7 and 8", list)
	}

	r.commitBlock()
	if j := decodeJSON[api.Job](t, e.ok(matmulArgs(t, "-o", "json")...)); j.ID != ledger.JobID(me, 9) {
		t.Fatalf("sync submit after the block: job %s, want %s (sequence 9)", j.ID, ledger.JobID(me, 9))
	}
	if seqs, async := r.seqs(t); seqs[len(seqs)-1] != 9 || async[len(async)-1] {
		t.Fatalf("last escrow signed with %d (async %v), want 9, synchronous", seqs[len(seqs)-1], async[len(async)-1])
	}
}

// A job whose block refused its escrow used no sequence: the next --async submission
// signs with that sequence again rather than leave a gap the mempool would refuse.
func TestJobSubmitAsyncReusesARefusedEscrowsSequence(t *testing.T) {
	e, r := newRouterEnv(t)
	me := keys.Address(testAddr(1))
	refused := ledger.JobID(me, 3) // the committed sequence is 3
	r.mu.Lock()
	r.jobs[refused] = api.Job{ID: refused, Status: api.StatusFailed, Error: "escrow budget: insufficient funds; nothing was escrowed",
		Events: []api.Event{{Stage: "failed", Message: "escrow budget: insufficient funds; nothing was escrowed"}}}
	r.mu.Unlock()
	if job := decodeJSON[api.Job](t, e.ok(matmulArgs(t, "--async", "-o", "json")...)); job.ID != refused {
		t.Fatalf("async job %s, want %s: the refused escrow's sequence, 3, again", job.ID, refused)
	}
}

// With the account's window of pending sequences full, --async waits for a block rather
// than be refused.
func TestJobSubmitAsyncWaitsForRoomInTheWindow(t *testing.T) {
	e, r := newRouterEnv(t)
	me := keys.Address(testAddr(1))
	e.ok(matmulArgs(t, "--async", "--count", fmt.Sprint(ledger.MaxPending))...)
	go func() {
		time.Sleep(300 * time.Millisecond)
		r.commitBlock()
	}()
	start := time.Now()
	out := e.ok(matmulArgs(t, "--async")...)
	if want := ledger.JobID(me, 3+ledger.MaxPending); strings.TrimSpace(out) != want {
		t.Fatalf("the job past a full window: %q, want %s", out, want)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("submitted after %s, before the block made room", waited)
	}
}

// An --async job's inputs too large to travel inline are uploaded once its escrow has
// committed, as the router takes them no sooner.
func TestJobSubmitAsyncUploadsOnceEscrowed(t *testing.T) {
	e, r := newRouterEnv(t)
	big := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(big, make([]byte, inlineLimit+1), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		r.commitBlock()
	}()
	id := strings.TrimSpace(e.ok("job", "submit", "--image", "train:v1", "--input", big, "--async", "--", "/train"))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(r.uploads[id], []string{"big.bin"}) {
		t.Fatalf("job %s: uploaded %v, want big.bin", id, r.uploads[id])
	}
}

func TestJobSubmitRepeatFlags(t *testing.T) {
	e, r := newRouterEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--seq", "4"}, "--seq is for --async"},
		{[]string{"--count", "0"}, "--count 0"},
		{[]string{"--count", "2", "--wait"}, "--wait follows one job"},
	} {
		_, errOut, code := e.run(matmulArgs(t, tt.args...)...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want it to say %q", tt.args, code, errOut, tt.want)
		}
	}
	if seqs, _ := r.seqs(t); len(seqs) != 0 {
		t.Fatalf("refused flags still submitted escrows with sequences %v", seqs)
	}
}
