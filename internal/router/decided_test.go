package router

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
)

// jobReadCounter is a fake chain that counts its reads of each job record.
type jobReadCounter struct {
	*fakeChain
	mu    sync.Mutex
	reads map[string]int
}

func (c *jobReadCounter) Query(ctx context.Context, path string, v any) error {
	if id, ok := strings.CutPrefix(path, "job/"); ok {
		c.mu.Lock()
		c.reads[id]++
		c.mu.Unlock()
	}
	return c.fakeChain.Query(ctx, path, v)
}

func (c *jobReadCounter) readsOf(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[id]
}

// The record that showed the router the chain's decision is the one it records the
// payment from: after the last verdict it reads the job once, not again for the outcome.
func TestTheOutcomeIsRecordedFromTheRecordThatShowedTheDecision(t *testing.T) {
	fake, nodeKey, nodeID, vals := committeeChain(t)
	chain := &jobReadCounter{fakeChain: fake, reads: map[string]int{}}
	r, roots := startRouterWith(t, Options{Chain: chain, VerifyTimeout: time.Hour})
	computingNode(t, r, roots, fake, nodeKey, nodeID, vals)
	var mu sync.Mutex
	passed, readsBefore := 0, -1
	for _, v := range vals {
		scriptedValidator(t, r, roots, v, func(req protocol.VerifyRequest) protocol.Verdict {
			mu.Lock()
			defer mu.Unlock()
			if passed++; passed == len(vals) {
				fake.mu.Lock()
				j := fake.jobs[req.JobID]
				j.Status = ledger.JobSettled
				j.Settlement = &ledger.Settlement{Cost: 50_000, Paid: 46_500, Burned: 1_000, Fee: 2_500, Refunded: 950_000}
				fake.mu.Unlock()
				readsBefore = chain.readsOf(req.JobID)
			}
			return protocol.Verdict{JobID: req.JobID, Pass: true, AttestTx: "A-" + string(keys.AddressOfKey(v))}
		})
	}
	waitFor(t, "nodes and validators online", func() bool {
		return len(r.online(protocol.RoleNode)) == 1 && len(r.online(protocol.RoleValidator)) == len(vals)
	})
	id := submit(t, r, fake)
	waitFor(t, "the job finished", func() bool { return jobFinished(r, id) })
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	if got := j.lastEvent("settled"); !strings.Contains(got, "paid 0.0465 OMNI to the node") {
		t.Fatalf("settled event %q, want the payment the chain recorded", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// Once as a rule; a read begun before the verdict may be the one that saw the decision.
	if after := chain.readsOf(id) - readsBefore; after > 1 {
		t.Fatalf("the job's record read %d times after the last verdict, want once", after)
	}
}
