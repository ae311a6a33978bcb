package validator

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/blockwait/blockwaittest"
	"github.com/omnisync/omnisync/internal/ledger"
)

// laggingNode is a chain node a second behind the one that committed the result, at the
// devnet's block time. It cannot tell its blocks; watchedNode can.
type laggingNode struct {
	*fakeChain
	*blockwaittest.LaggingNode
}

func newLaggingNode(resultAt int64) *laggingNode {
	return &laggingNode{fakeChain: &fakeChain{}, LaggingNode: blockwaittest.New(250*time.Millisecond, resultAt)}
}

func (n *laggingNode) Query(_ context.Context, path string, v any) error { return n.Job(path, v) }

// watchedNode is a laggingNode that tells its blocks (blockwait.Watch), as chain.Wallet does.
type watchedNode struct{ *laggingNode }

func (n watchedNode) NewBlocks(ctx context.Context) (<-chan int64, error) { return n.Blocks(ctx) }

// committedJob waits for the chain node it reads to show the result, reading the job once
// a block where the chain tells its blocks, rather than every resultPoll; one that cannot
// tell them is still read until it shows the result.
func TestCommittedJobReadsOnceABlock(t *testing.T) {
	const resultAt = 4 // a second behind
	for _, watched := range []bool{false, true} {
		node := newLaggingNode(resultAt)
		var c Chain = node
		if watched {
			c = watchedNode{node}
		}
		d := &Daemon{opts: Options{Chain: c}}
		job, err := d.committedJob(t.Context(), "J")
		if err != nil || job.Status != ledger.JobComputed {
			t.Fatalf("watched %v: %s, %v; want the result", watched, job.Status, err)
		}
		reads := node.Reads.Load()
		t.Logf("watched %v: %d reads of the job over %d blocks", watched, reads, resultAt)
		if watched && reads > resultAt+2 {
			t.Errorf("watched: %d reads of the job over %d blocks, want one a block", reads, resultAt)
		}
	}
}

// A chain node that commits no block while the result is missing is read again at the
// end of resultWait, and committedJob returns what it shows then.
func TestCommittedJobGivesUpAfterResultWait(t *testing.T) {
	node := newLaggingNode(1 << 40)
	d := &Daemon{opts: Options{Chain: stalledNode{node}}}
	start := time.Now()
	job, err := d.committedJob(t.Context(), "J")
	if err != nil || job.Status != ledger.JobAssigned {
		t.Fatalf("%s, %v; want the assigned record", job.Status, err)
	}
	if took := time.Since(start); took < resultWait || took > resultWait+2*time.Second {
		t.Fatalf("returned after %s, want resultWait (%s)", took, resultWait)
	}
	if n := node.Reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2: one at the start, one at the end", n)
	}
}

// stalledNode tells its blocks, and commits none.
type stalledNode struct{ *laggingNode }

func (stalledNode) NewBlocks(context.Context) (<-chan int64, error) { return make(chan int64), nil }

// committedNode shows every job with its result, and allocates nothing to answer.
type committedNode struct{ fakeChain }

func (*committedNode) Query(_ context.Context, _ string, v any) error {
	*v.(*ledger.Job) = ledger.Job{ID: "J", Status: ledger.JobComputed}
	return nil
}

// A job whose first read shows its result, as nearly every one does, costs that read
// alone: no context or timer is made for a wait that does not happen. The
// two allocations left are the read's own (its path, and the record the chain fills).
func TestCommittedJobShownAtOnceCostsOneRead(t *testing.T) {
	d := &Daemon{opts: Options{Chain: &committedNode{}}}
	ctx, cancel := context.WithCancel(t.Context()) // a parent a wait's context would register with
	defer cancel()
	allocs := testing.AllocsPerRun(100, func() {
		if job, err := d.committedJob(ctx, "J"); err != nil || job.Status != ledger.JobComputed {
			t.Fatalf("%s, %v; want the result", job.Status, err)
		}
	})
	if allocs > 2 {
		t.Fatalf("%v allocations to read a committed job, want 2", allocs)
	}
}
