package devnet

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
)

// perturber runs fp32 products honestly and then moves one element of C: by 10^-5 on its
// first job, far below the rounding bound (about 6·10^-3 for a 64×64 product of elements
// in [-1, 1)), and by 1.0 on every later one, far above it. The DESIGN's bf16 finding at
// n = 8192 was that a change of 1.0 hid in the noise; at 64×64 in fp32 it does not.
type perturber struct {
	runtime.Native
	jobs *atomic.Int32
}

func (perturber) Name() string { return "perturbing" }

func (p perturber) Run(ctx context.Context, task runtime.Task) (runtime.Result, error) {
	res, err := p.Native.Run(ctx, task)
	if err != nil {
		return res, err
	}
	c, err := tensor.DecodeFloat32(res.Output)
	if err != nil {
		return res, err
	}
	delta := float32(1)
	if p.jobs.Add(1) == 1 {
		delta = 1e-5
	}
	c.Data[len(c.Data)/2+7] += delta
	res.Output, err = c.MarshalBinary()
	return res, err
}

// fp32Spec is MatMulSpec's job with n×n float32 operands uniform in [-1, 1).
func fp32Spec(t *testing.T, n int, seed uint64) (api.JobSpec, map[string][]byte) {
	t.Helper()
	spec, _, err := MatMulSpec(n, seed)
	if err != nil {
		t.Fatal(err)
	}
	spec.Workload.Kernel, spec.Inputs = tensor.KernelMatMulFloat32, nil
	data := map[string][]byte{}
	for i, name := range []string{"a", "b"} {
		m, err := tensor.RandomFloat32(n, n, seed*2+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		data[name] = b
		spec.Inputs = append(spec.Inputs, api.Input{Name: name, Digest: api.DigestOf(b), Size: int64(len(b))})
	}
	return spec, data
}

// runFP32Job submits a 64×64 fp32 product at the freivalds level in region and waits for
// its final status; it returns the job as the router and as the chain show it.
func runFP32Job(t *testing.T, ctx context.Context, d *Devnet, region string, seed uint64) (api.Job, ledger.Job, map[string][]byte) {
	t.Helper()
	spec, data := fp32Spec(t, 64, seed)
	spec.Placement.Region = region
	job, cj := submitAndWait(t, ctx, d, spec, data)
	return job, cj, data
}

// TestFP32JobsAreCheckedWithinTheRoundingBound runs matmul-fp32 jobs at the freivalds
// level through the devnet's real router, node and validator: an honest node's product
// settles verified, billed for 2·64³ operations, and its consumer reads the kernel's
// bits; a node that moves one element by 10^-5, under the rounding bound, is not caught
// (the known limit of any float check); the same node moving one element by 1.0 fails the
// check, its consumer is refunded and it is slashed.
func TestFP32JobsAreCheckedWithinTheRoundingBound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	d := startAuditDevnet(t, 0, func(runtime.Runtime) runtime.Runtime { return perturber{jobs: new(atomic.Int32)} })

	job, cj, data := runFP32Job(t, ctx, d, regionHonest, 61)
	if job.Status != api.StatusSettled || !job.Verified || len(cj.Attestations) == 0 || cj.Attestations[0].Ops != tensor.MatMulOps(64, 64, 64) {
		t.Fatalf("honest fp32 job %s verified=%v verdict %q attestations %+v; events %+v", job.Status, job.Verified, job.Verdict, cj.Attestations, job.Events)
	}
	a, b, err := tensor.DecodeMatMulFloat32Inputs([][]byte{data["a"], data["b"]})
	if err != nil {
		t.Fatal(err)
	}
	product, err := tensor.MatMulFloat32(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := product.MarshalBinary()
	if out := consumerOutput(t, ctx, d, job.ID); !bytes.Equal(out.Data, want) || !out.Verified {
		t.Fatalf("the consumer read %d bytes (verified %v), want the kernel's %d", len(out.Data), out.Verified, len(want))
	}

	job, _, _ = runFP32Job(t, ctx, d, regionCheat, 62)
	if job.Status != api.StatusSettled || !job.Verified {
		t.Fatalf("a 10^-5 change, under the bound, was caught: %s verified=%v verdict %q", job.Status, job.Verified, job.Verdict)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake != nodeStake {
		t.Fatalf("the node lost stake for a change under the bound: %d", n.Stake)
	}

	job, cj, _ = runFP32Job(t, ctx, d, regionCheat, 63)
	if job.Status != api.StatusFailed || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget {
		t.Fatalf("a 1.0 change: %s verdict %q settlement %+v; events %+v", job.Status, job.Verdict, cj.Settlement, job.Events)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake >= nodeStake {
		t.Fatalf("the perturbing node kept its stake: %d", n.Stake)
	}
	t.Logf("caught: %s", job.Verdict)
}
