package txbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// fakeChain applies attestations as the ledger would a batch of them: each item alone,
// refusing a job it has already attested.
type fakeChain struct {
	mu       sync.Mutex
	attested map[string]bool
	singles  []string // the kind of every single message, in order
	batches  []int    // the size of every batch, in order
}

func (f *fakeChain) attestLocked(m ledger.MsgAttest) error {
	if f.attested[m.JobID] {
		return fmt.Errorf("%w: job %s is already attested", ledger.ErrBadState, m.JobID)
	}
	f.attested[m.JobID] = true
	return nil
}

func (f *fakeChain) Send(_ context.Context, m ledger.Msg) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.singles = append(f.singles, m.Kind())
	if m.Attest != nil {
		if err := f.attestLocked(*m.Attest); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("SINGLE-%d", len(f.singles)), nil
}

func (f *fakeChain) SendBatch(_ context.Context, m ledger.Msg) (string, []error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.AttestJobs == nil {
		return "", nil, fmt.Errorf("fake chain: unexpected %s", m.Kind())
	}
	f.batches = append(f.batches, len(m.AttestJobs.Attestations))
	var items []error
	for _, a := range m.AttestJobs.Attestations {
		items = append(items, f.attestLocked(a))
	}
	return fmt.Sprintf("BATCH-%d", len(f.batches)), items, nil
}

func attest(id string) ledger.Msg {
	return ledger.Msg{Attest: &ledger.MsgAttest{JobID: id, Pass: true}}
}

func start(t *testing.T, f *fakeChain, window time.Duration, limit int) *Batcher {
	t.Helper()
	b := New(f, window, limit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return b
}

// TestSendersShareATx: messages sent together reach the chain as one batch, each sender
// hears its own item's outcome, and an item the chain refuses fails alone.
func TestSendersShareATx(t *testing.T) {
	const n = 6
	f := &fakeChain{attested: map[string]bool{"job-3": true}}
	b := start(t, f, time.Minute, n) // the batch fills long before the window ends
	txs, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			txs[i], errs[i] = b.Send(context.Background(), attest(fmt.Sprintf("job-%d", i)))
		}()
	}
	wg.Wait()
	if len(f.batches) != 1 || f.batches[0] != n || len(f.singles) != 0 {
		t.Fatalf("batches %v, singles %v; want one batch of %d", f.batches, f.singles, n)
	}
	for i := range n {
		if failed := i == 3; (errs[i] != nil) != failed || (failed && !errors.Is(errs[i], ledger.ErrBadState)) {
			t.Errorf("item %d: err %v", i, errs[i])
		}
		if errs[i] == nil && txs[i] != "BATCH-1" {
			t.Errorf("item %d: tx %q", i, txs[i])
		}
	}
}

// TestLoneMessagesGoAsThemselves: a message alone in its window, one the ledger does not
// batch, and every message of a batcher with a negative window go as single txs.
func TestLoneMessagesGoAsThemselves(t *testing.T) {
	f := &fakeChain{attested: map[string]bool{}}
	b := start(t, f, 5*time.Millisecond, 0)
	ctx := context.Background()
	if tx, err := b.Send(ctx, attest("job-1")); err != nil || tx != "SINGLE-1" {
		t.Fatalf("lone attestation: %q, %v", tx, err)
	}
	if tx, err := b.Send(ctx, ledger.Msg{RevealResult: &ledger.MsgRevealResult{JobID: "job-1"}}); err != nil || tx != "SINGLE-2" {
		t.Fatalf("reveal: %q, %v", tx, err)
	}
	if _, err := b.Send(ctx, attest("job-1")); !errors.Is(err, ledger.ErrBadState) {
		t.Fatalf("second attestation of a job: %v, want the chain's refusal", err)
	}
	unbatched := New(f, -1, 0) // never Run
	if tx, err := unbatched.Send(ctx, attest("job-2")); err != nil || tx != "SINGLE-4" {
		t.Fatalf("unbatched: %q, %v", tx, err)
	}
	if len(f.batches) != 0 {
		t.Fatalf("batches %v, want none", f.batches)
	}
}

func TestSendAfterRunReturns(t *testing.T) {
	b := New(&fakeChain{attested: map[string]bool{}}, time.Millisecond, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.Run(ctx)
	if _, err := b.Send(context.Background(), attest("job-1")); !errors.Is(err, ErrStopped) {
		t.Fatalf("send after run: %v, want ErrStopped", err)
	}
}

func TestBatchGroupsByKind(t *testing.T) {
	a, c := attest("job-1"), ledger.Msg{CommitResult: &ledger.MsgCommitResult{JobID: "job-2"}}
	groups := byKind([]request{{msg: a}, {msg: c}, {msg: a}})
	if len(groups) != 2 || len(groups[0]) != 2 || len(groups[1]) != 1 {
		t.Fatalf("groups %v", groups)
	}
	if _, ok := ledger.Batch([]ledger.Msg{a, c}); ok {
		t.Fatal("a batch of mixed kinds")
	}
}
