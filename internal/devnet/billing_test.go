package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
)

// overbiller computes honestly and reports 2^62 ms of GPU time for it: issue 13's node.
type overbiller struct{ runtime.Native }

func (overbiller) Name() string { return "overbilling" }

func (o overbiller) Run(ctx context.Context, task runtime.Task) (runtime.Result, error) {
	res, err := o.Native.Run(ctx, task)
	res.GPUMillis = 1 << 62
	return res, err
}

// TestDemoOverbillingNodeIsBilledItsWork: every node of the devnet runs the project's node
// daemon with a runtime that reports 2^62 ms for the demo's 512×512×512 product. The
// result is right, so the job settles, but the node is billed the work the validator
// counted (2·512³ operations, under a millisecond at any devnet node's rate), hence the
// 1 s minimum, not the job's 300 s timeout the report asked for.
func TestDemoOverbillingNodeIsBilledItsWork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), func(int) runtime.Runtime { return overbiller{} })
	o, err := d.RunDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != api.StatusSettled || !o.Verified {
		t.Fatalf("demo outcome %+v", o)
	}
	job, err := d.Chain().Job(ctx, o.JobID)
	if err != nil {
		t.Fatal(err)
	}
	var params ledger.Params
	if err := d.Chain().Query(ctx, "params", &params); err != nil {
		t.Fatal(err)
	}
	ops := tensor.MatMulOps(DemoSize, DemoSize, DemoSize)
	s := job.Settlement
	switch {
	case job.GPUMillis != 1<<62:
		t.Fatalf("the node reported %d ms, want 2^62", job.GPUMillis)
	case len(job.Attestations) == 0 || job.Attestations[0].Ops != ops:
		t.Fatalf("attestations %+v, want one counting %d operations", job.Attestations, ops)
	case job.TFLOPSMilli == 0 || ops >= job.TFLOPSMilli*1_000_000:
		t.Fatalf("node rate %d milli-TFLOPS: the demo should take under a millisecond", job.TFLOPSMilli)
	case s == nil || s.BilledMillis != params.MinBilledMillis:
		t.Fatalf("settlement %+v, want the %d ms minimum billed", s, params.MinBilledMillis)
	}
	// What the report alone would have cost: the whole timeout at the node's price.
	reported := min(job.PricePerHour*job.TimeoutSeconds/3600, job.Budget)
	if s.Cost*100 > reported {
		t.Fatalf("cost %d uomni, more than 1%% of the %d the 2^62 ms report would have cost", s.Cost, reported)
	}
	t.Logf("billed %d ms for %d operations at %d milli-TFLOPS: cost %d uomni, against %d for the report", s.BilledMillis, ops, job.TFLOPSMilli, s.Cost, reported)
}
