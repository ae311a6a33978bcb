package devnet

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
)

// mlpTestShape is the batch-inference test's model, 64→32→10.
var mlpTestShape = tensor.MLPShape{{In: 64, Out: 32, Shift: 9}, {In: 32, Out: 10, Shift: 9}}

// TestMLPInferenceAtFreivalds runs batch inference (the mlp-int8 kernel on [model, X]) at
// level freivalds through the devnet's real router, nodes and validator: an honest node's
// trace is checked layer by layer, the job settles verified and billed for the model's
// operations on the batch, and the consumer's output is the model's. A node that changes
// one accumulator of the hidden layer, and computes the last layer honestly from its changed
// activations, is failed at that layer, the consumer refunded and the node slashed.
func TestMLPInferenceAtFreivalds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := startAuditDevnet(t, ledger.DefaultParams().AuditRateBP, func(rt runtime.Runtime) runtime.Runtime { return hiddenLayerLiar{rt} })

	m := RandomMLP(mlpTestShape, 3)
	x, err := tensor.RandomInt8(16, mlpTestShape[0].In, 4)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.ForwardBatch(x)
	if err != nil {
		t.Fatal(err)
	}
	spec, data := mlpSpec(t, m, x)
	spec.Placement.Region = regionHonest
	job, cj := submitAndWait(t, ctx, d, spec, data)
	if job.Status != api.StatusSettled || !job.Verified || len(cj.Attestations) != 1 || !cj.Attestations[0].Pass {
		t.Fatalf("mlp job %s verified=%v verdict %q attestations %+v; events %+v", job.Status, job.Verified, job.Verdict, cj.Attestations, job.Events)
	}
	if got, ops := cj.Attestations[0].Ops, 16*mlpTestShape.Ops(); got != ops {
		t.Fatalf("attested %d operations, want the model's %d on 16 rows", got, ops)
	}
	consumer := string(keys.AddressOfKey(d.Keys.Consumer))
	out, err := api.NewClient(d.RESTURL()).JobOutput(ctx, job.ID, api.SignOutputAuth(d.Keys.Consumer, consumer, job.ID, time.Minute, time.Now()))
	if err != nil || !out.Verified {
		t.Fatalf("consumer reads the output: verified %v, %v", out.Verified, err)
	}
	tr, err := tensor.DecodeMLPTrace(out.Data)
	if err != nil || !slices.Equal(tr.Output.Data, want.Data) {
		t.Fatalf("output %v (%v), want ForwardBatch's %v", tr, err, want.Data)
	}

	spec.Placement.Region = regionCheat
	job, cj = submitAndWait(t, ctx, d, spec, data)
	if job.Status != api.StatusFailed || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget || len(cj.Attestations) != 1 || cj.Attestations[0].Pass {
		t.Fatalf("liar's mlp job %s, settlement %+v, attestations %+v; events %+v", job.Status, cj.Settlement, cj.Attestations, job.Events)
	}
	if r := cj.Attestations[0].Reason; !strings.Contains(r, "layer 0 accumulators, row 5,") {
		t.Fatalf("the failure says %q, want layer 0, row 5", r)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake >= nodeStake {
		t.Fatalf("the liar kept its stake: %d", n.Stake)
	}
}

// TestMLPInferenceAudited: at a 100% audit rate, batch inference at level audit is checked
// as at freivalds (the validator's audit of a tensor job is CheckKernel), so the hidden-layer
// liar is failed and slashed.
func TestMLPInferenceAudited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := startAuditDevnet(t, ledger.BasisPoints, func(rt runtime.Runtime) runtime.Runtime { return hiddenLayerLiar{rt} })
	m := RandomMLP(mlpTestShape, 5)
	x, err := tensor.RandomInt8(16, mlpTestShape[0].In, 6)
	if err != nil {
		t.Fatal(err)
	}
	spec, data := mlpSpec(t, m, x)
	spec.Verification, spec.Placement.Region = api.VerifyAudit, regionCheat
	job, cj := submitAndWait(t, ctx, d, spec, data)
	if !cj.Audited || job.Status != api.StatusFailed || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget || len(cj.Attestations) == 0 || cj.Attestations[0].Pass {
		t.Fatalf("liar's audit job audited=%v %s, settlement %+v, attestations %+v; events %+v", cj.Audited, job.Status, cj.Settlement, cj.Attestations, job.Events)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake >= nodeStake {
		t.Fatalf("the liar kept its stake: %d", n.Stake)
	}
}

// mlpSpec is a consumer's batch inference job at level freivalds: the model and the batch
// X as its two inputs. MaxPricePerHour, budget and timeout are MatMulSpec's.
func mlpSpec(t *testing.T, m *tensor.MLP, x *tensor.Int8Matrix) (api.JobSpec, map[string][]byte) {
	t.Helper()
	spec, _, err := MatMulSpec(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	model, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	batch, err := x.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	spec.Workload.Kernel = tensor.KernelMLPInt8
	spec.Inputs = []api.Input{
		{Name: "model", Digest: api.DigestOf(model), Size: int64(len(model))},
		{Name: "x", Digest: api.DigestOf(batch), Size: int64(len(batch))},
	}
	return spec, map[string][]byte{"model": model, "x": batch}
}

// hiddenLayerLiar runs the model, then changes one accumulator of the hidden layer (row 5)
// and recomputes the last layer from the activations that requantise from it: a trace that
// is consistent from the changed layer on.
type hiddenLayerLiar struct{ runtime.Runtime }

func (l hiddenLayerLiar) Run(ctx context.Context, t runtime.Task) (runtime.Result, error) {
	r, err := l.Runtime.Run(ctx, t)
	if err != nil || t.Kernel != tensor.KernelMLPInt8 {
		return r, err
	}
	m, _, err := tensor.DecodeMLPInt8Inputs(t.Inputs)
	if err != nil {
		return r, err
	}
	tr, err := tensor.DecodeMLPTrace(r.Output)
	if err != nil {
		return r, err
	}
	tr.Acc[0].Data[5*tr.Acc[0].Cols] += 1 << 12
	h := tensor.RequantizeMatrix(tr.Acc[0], m.Layers[0].Shift, tensor.ClampLow(0, len(m.Layers)))
	rest, err := (&tensor.MLP{Layers: m.Layers[1:]}).Trace(h)
	if err != nil {
		return r, err
	}
	tr.Acc, tr.Output = append(tr.Acc[:1], rest.Acc...), rest.Output
	r.Output, err = tr.MarshalBinary()
	return r, err
}
