package router

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/blockwait/blockwaittest"
	"github.com/omnisync/omnisync/internal/ledger"
)

// laggingNode is a chain node behind the one that committed the result. It cannot tell
// its blocks; watchedNode can.
type laggingNode struct {
	*fakeChain
	*blockwaittest.LaggingNode
}

func (n *laggingNode) Query(_ context.Context, path string, v any) error { return n.Job(path, v) }

// watchedNode is a laggingNode that tells its blocks (blockwait.Watch), as chain.Wallet does.
type watchedNode struct{ *laggingNode }

func (n watchedNode) NewBlocks(ctx context.Context) (<-chan int64, error) { return n.Blocks(ctx) }

// computedRecord waits for the chain node the router reads to show the result, reading
// the job once a block where the chain tells its blocks, rather than every computedPoll;
// one that cannot tell them is still read until it shows the result. Either gives up
// after VerifyTimeout.
func TestComputedRecordReadsOnceABlock(t *testing.T) {
	for _, c := range []struct {
		name     string
		watched  bool
		resultAt int64
		want     string // the error, if any
	}{
		{"polled", false, 4, ""},
		{"watched", true, 4, ""},
		{"polled, never shown", false, 1 << 40, "never showed the job's result committed (it is assigned)"},
		{"watched, never shown", true, 1 << 40, "never showed the job's result committed (it is assigned)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := &laggingNode{fakeChain: newFakeChain(), LaggingNode: blockwaittest.New(250*time.Millisecond, c.resultAt)}
			var chain Chain = node
			if c.watched {
				chain = watchedNode{node}
			}
			r := &Router{opts: Options{Chain: chain, VerifyTimeout: 2 * time.Second}}
			job, err := r.computedRecord(t.Context(), "J")
			if c.want == "" && (err != nil || job.Status != ledger.JobComputed) {
				t.Fatalf("%s, %v; want the result", job.Status, err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("%v; want %q", err, c.want)
			}
			reads, blocks := node.Reads.Load(), min(c.resultAt, node.Height())
			t.Logf("%d reads of the job over %d blocks", reads, blocks)
			if c.watched && reads > blocks+2 {
				t.Errorf("%d reads of the job over %d blocks, want one a block", reads, blocks)
			}
		})
	}
}
