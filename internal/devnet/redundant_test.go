package devnet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
)

// slow computes honestly after a pause, so that another node's result lands first.
type slow struct {
	runtime.Native
	by time.Duration
}

func (s slow) Run(ctx context.Context, task runtime.Task) (runtime.Result, error) {
	select {
	case <-time.After(s.by):
	case <-ctx.Done():
		return runtime.Result{}, ctx.Err()
	}
	return s.Native.Run(ctx, task)
}

// A redundant job runs on all three devnet nodes. Node 0 lies (one element of the
// product changed) and commits first; the two honest nodes agree, so the chain settles on
// their digest, pays exactly them, and marks the liar's reliability down without a slash:
// disagreement alone is no evidence.
func TestRedundantJobPaysOnlyTheAgreeingReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), func(i int) runtime.Runtime {
		if i == 0 {
			return tamperer{}
		}
		return slow{by: 1500 * time.Millisecond}
	})
	liar := d.NodeIDs()[0]
	before := snapshot(t, ctx, d)

	spec, data, err := MatMulSpec(64, 7)
	if err != nil {
		t.Fatal(err)
	}
	spec.Verification = api.VerifyRedundant
	c := api.NewClient(d.RESTURL())
	job, err := SubmitSigned(ctx, c, d.Keys.Consumer, ChainID, spec, data)
	if err != nil {
		t.Fatal(err)
	}
	id := job.ID
	if job, err = c.WaitJob(ctx, id, nil); err != nil {
		now, _ := c.Job(context.Background(), id)
		cj, _ := d.Chain().Job(context.Background(), id)
		t.Fatalf("%v\nrouter's view: %+v\nchain's record: %+v", err, now, cj)
	}
	if job.Status != api.StatusSettled || !job.Verified {
		t.Fatalf("redundant job %s: %s (%s); events %+v", job.ID, job.Status, job.Error, job.Events)
	}
	cj, err := d.Chain().Job(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cj.Replicas) != ledger.RedundantReplicas {
		t.Fatalf("replicas on chain: %+v", cj.Replicas)
	}
	nodes := map[string]bool{}
	var liarDigest string
	for _, rp := range cj.Replicas {
		nodes[string(rp.Node)] = true
		if string(rp.Node) == liar {
			liarDigest = rp.ResultDigest
		}
	}
	if len(nodes) != ledger.RedundantReplicas {
		t.Fatalf("replicas share a node: %+v", cj.Replicas)
	}
	if liarDigest == "" || liarDigest == cj.ResultDigest {
		t.Fatalf("the liar committed %q, the job settled on %q", liarDigest, cj.ResultDigest)
	}
	s := cj.Settlement
	if s == nil || len(s.Shares) != ledger.RedundantQuorum {
		t.Fatalf("settlement %+v", s)
	}

	// Money: each honest node got exactly its share; the liar and the validator nothing.
	after := snapshot(t, ctx, d)
	var paid uint64
	for _, sh := range s.Shares {
		if string(sh.Node) == liar {
			t.Fatalf("the liar was paid: %+v", sh)
		}
		if got := after.nodes[string(sh.Node)] - before.nodes[string(sh.Node)]; got != sh.Paid+sh.Reward {
			t.Errorf("node %s gained %d, its share is %d + %d reward", sh.Node, got, sh.Paid, sh.Reward)
		}
		paid += sh.Cost
	}
	if after.nodes[liar] != before.nodes[liar] {
		t.Errorf("the liar's balance moved: %d -> %d", before.nodes[liar], after.nodes[liar])
	}
	if before.consumer-after.consumer != paid || s.Refunded != spec.Budget-paid {
		t.Errorf("consumer paid %d, shares cost %d, refunded %d of %d", before.consumer-after.consumer, paid, s.Refunded, spec.Budget)
	}
	if after.supply.Escrowed != before.supply.Escrowed {
		t.Error("a settled job left escrow behind")
	}

	// Reliability, not stake: the outvoted node is marked down and keeps its stake.
	var n ledger.Node
	if err := d.Chain().Query(ctx, "node/"+liar, &n); err != nil {
		t.Fatal(err)
	}
	if n.JobsFailed != 1 || n.JobsVerified != 0 || n.Stake != nodeStake || n.Status != ledger.NodeActive {
		t.Fatalf("liar after being outvoted: %+v", n)
	}

	// The chain's recent blocks show the replicas' seals and reveals, each applied.
	blocks, err := c.Blocks(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, b := range blocks {
		for _, tx := range b.Txs {
			if tx.Code == 0 {
				kinds[tx.Kind]++
			}
		}
	}
	if kinds["commit_result"] < ledger.RedundantReplicas || kinds["reveal_result"] < ledger.RedundantReplicas || kinds["create_job"] < 1 {
		t.Fatalf("transactions in the recent blocks: %v", kinds)
	}

	// The router's stats count the job and its placements.
	st, err := c.Stats(ctx)
	if err != nil || st.Jobs[api.StatusSettled] != 1 || st.SettledInWindow != 1 || st.Placements != 1 || st.PlacementP50Ms <= 0 || st.Waiting != 0 {
		t.Fatalf("stats %+v, %v", st, err)
	}

	// The consumer reads the agreed output, and the REST view shows every replica.
	if out := consumerOutput(t, ctx, d, job.ID); !out.Verified || out.Digest != cj.ResultDigest {
		t.Fatalf("output %+v", out.Digest)
	}
	if job.Verification != api.VerifyRedundant || len(job.Replicas) != ledger.RedundantReplicas ||
		!slices.ContainsFunc(job.Replicas, func(r api.Replica) bool { return r.Node == liar && r.Paid == 0 }) {
		t.Fatalf("REST view of the replicas: %+v", job.Replicas)
	}
}

// The devnet's container demo end to end on the local Docker engine: a static program
// built into an image FROM scratch runs on three nodes, the chain settles on their
// matching output archives, and the consumer unpacks the verified files.
func TestContainerJobSettlesOnMatchingReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := ProbeDocker(ctx); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	d, err := Start(ctx, Options{Home: t.TempDir(), BlockTime: 100 * time.Millisecond, Docker: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	before := snapshot(t, ctx, d)

	o, err := d.RunContainerDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != api.StatusSettled || !o.Verified {
		t.Fatalf("container job %s: %s; events %+v", o.JobID, o.Status, o.Events)
	}
	if o.ExitCode != 0 || !slices.Equal(o.Files, []string{"summary.txt"}) ||
		!strings.Contains(o.Summary, "text.txt: 5 lines, 53 words") {
		t.Fatalf("output: exit %d, files %v, summary %q", o.ExitCode, o.Files, o.Summary)
	}
	paid := 0
	for _, r := range o.Replicas {
		if r.Paid > 0 {
			paid++
			if r.ResultDigest != o.ResultDigest {
				t.Errorf("replica %s paid for digest %s, settled %s", r.Node, r.ResultDigest, o.ResultDigest)
			}
		}
	}
	if len(o.Replicas) != ledger.RedundantReplicas || paid != ledger.RedundantReplicas { // all three honest: all paid
		t.Fatalf("replicas %+v: %d paid", o.Replicas, paid)
	}
	after := snapshot(t, ctx, d)
	if p := o.Payment; p == nil || before.consumer-after.consumer != p.Cost || p.Refunded != p.Budget-p.Cost {
		t.Fatalf("payment %+v; consumer paid %d", o.Payment, before.consumer-after.consumer)
	}

	// The nodes streamed their logs; the consumer reads them, nobody else does.
	c := api.NewClient(d.RESTURL())
	consumer := string(keys.AddressOfKey(d.Keys.Consumer))
	logs, err := c.JobLogs(ctx, o.JobID, api.SignOutputAuth(d.Keys.Consumer, consumer, o.JobID, time.Minute, time.Now()), "", 0)
	if err != nil || !strings.Contains(string(logs.Data), "counted /inputs/text.txt") || !logs.EOF || !logs.Final || len(logs.Nodes) < ledger.RedundantQuorum {
		t.Fatalf("logs %+v (%q): %v", logs, logs.Data, err)
	}
	node := d.Keys.Nodes[0]
	if _, err := c.JobLogs(ctx, o.JobID, api.SignOutputAuth(node, string(keys.AddressOfKey(node)), o.JobID, time.Minute, time.Now()), "", 0); !errors.Is(err, api.ErrForbidden) {
		t.Fatalf("a node read the consumer's logs: %v", err)
	}
}
