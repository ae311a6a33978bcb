// Package blockwaittest is a chain node for tests of waits on the chain: it commits a
// block every BlockTime and shows a job's result from block ResultAt on, as a node behind
// the one that committed it does, counting the reads of the job.
package blockwaittest

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// LaggingNode is the chain node. Its methods are not a Chain's: a test's fake wraps it,
// with Query reading Job, and NewBlocks offering Blocks only where the chain under test
// tells its blocks (blockwait.Watch).
type LaggingNode struct {
	Start     time.Time
	BlockTime time.Duration
	ResultAt  int64
	Reads     atomic.Int64 // of Job
}

// New is a node whose first block is now.
func New(blockTime time.Duration, resultAt int64) *LaggingNode {
	return &LaggingNode{Start: time.Now(), BlockTime: blockTime, ResultAt: resultAt}
}

// Height is the last block committed.
func (n *LaggingNode) Height() int64 { return int64(time.Since(n.Start) / n.BlockTime) }

// Job answers a query of path "job/ID" into v, a *ledger.Job: assigned, or computed from
// block ResultAt on.
func (n *LaggingNode) Job(path string, v any) error {
	n.Reads.Add(1)
	job := ledger.Job{ID: strings.TrimPrefix(path, "job/"), Status: ledger.JobAssigned}
	if n.Height() >= n.ResultAt {
		job.Status = ledger.JobComputed
	}
	*v.(*ledger.Job) = job
	return nil
}

// Blocks sends the height of each block after the last one committed, holding the newest
// only, until ctx ends: what chain.Client.NewBlocks does.
func (n *LaggingNode) Blocks(ctx context.Context) (<-chan int64, error) {
	blocks := make(chan int64, 1)
	go func() {
		for h := n.Height() + 1; ; h++ {
			t := time.NewTimer(time.Until(n.Start.Add(time.Duration(h) * n.BlockTime)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select {
			case <-blocks:
			default:
			}
			blocks <- h
		}
	}()
	return blocks, nil
}
