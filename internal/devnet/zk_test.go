package devnet

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/zk"
)

// zkTestShape is the small shape the zk tests prove (a setup takes milliseconds).
var zkTestShape = zk.Shape{{In: 8, Out: 4, Shift: 7}, {In: 4, Out: 2, Shift: 6}}

// TestZKJobEndToEnd runs zk jobs through the devnet's real router, nodes and validator: an
// honest node's output is the committed model applied to the consumer's input, its proof
// verifies, and the job settles, verified and billed for the model's operations; a node
// that returns a wrong output with the proof of the right one is failed, the consumer
// refunded and the node slashed.
func TestZKJobEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	d := startAuditDevnet(t, ledger.DefaultParams().AuditRateBP, func(rt runtime.Runtime) runtime.Runtime { return zkLiar{rt} })

	m, x := RandomMLP(zkTestShape, 1), RandomMLPInput(zkTestShape[0].In, 1)
	want, err := m.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	job, cj := runZKJob(t, ctx, d, m, x, regionHonest)
	if job.Status != api.StatusSettled || !job.Verified || len(cj.Attestations) != 1 || !cj.Attestations[0].Pass {
		t.Fatalf("zk job %s verified=%v verdict %q attestations %+v; events %+v", job.Status, job.Verified, job.Verdict, cj.Attestations, job.Events)
	}
	if got := cj.Attestations[0].Ops; got != zkTestShape.Ops() {
		t.Fatalf("attested %d operations, want the model's %d", got, zkTestShape.Ops())
	}
	consumer := string(keys.AddressOfKey(d.Keys.Consumer))
	out, err := api.NewClient(d.RESTURL()).JobOutput(ctx, job.ID, api.SignOutputAuth(d.Keys.Consumer, consumer, job.ID, time.Minute, time.Now()))
	if err != nil || !out.Verified {
		t.Fatalf("consumer reads the output: verified %v, %v", out.Verified, err)
	}
	res, err := zk.DecodeResult(out.Data)
	if err != nil || !slices.Equal(res.Output, want) {
		t.Fatalf("output %v (%v), want Forward's %v", res.Output, err, want)
	}
	t.Logf("honest zk job: %d GPU-ms reported (setup and proof), settled %+v", cj.GPUMillis, cj.Settlement)

	job, cj = runZKJob(t, ctx, d, m, RandomMLPInput(zkTestShape[0].In, 2), regionCheat)
	if job.Status != api.StatusFailed || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget || len(cj.Attestations) != 1 || cj.Attestations[0].Pass {
		t.Fatalf("liar's zk job %s, settlement %+v, attestations %+v; events %+v", job.Status, cj.Settlement, cj.Attestations, job.Events)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake >= nodeStake {
		t.Fatalf("the liar kept its stake: %d", n.Stake)
	}

	// A consumer that commits to an input other than the one it sends would have an honest
	// node's proof fail: the node refuses the job instead, and nobody is slashed.
	spec, data, err := ZKSpec(m, x)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ZKSpec(m, x) // the same input under another salt
	if err != nil {
		t.Fatal(err)
	}
	spec.ZK.InputCommitment, spec.Placement.Region = other.ZK.InputCommitment, regionHonest
	job, cj = submitAndWait(t, ctx, d, spec, data)
	if job.Status == api.StatusSettled || len(cj.Attestations) != 0 || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget {
		t.Fatalf("job with a false statement %s, attestations %+v, settlement %+v; events %+v", job.Status, cj.Attestations, cj.Settlement, job.Events)
	}
	for _, id := range d.NodeIDs()[1:] {
		if n := nodeRecord(t, ctx, d, id); n.Stake != nodeStake {
			t.Fatalf("honest node %s was slashed for refusing a false statement: stake %d", id, n.Stake)
		}
	}
}

// runZKJob submits model m on input x as the devnet's consumer, placed in region, and waits
// for its final status; it returns the job as the router and as the chain show it.
func runZKJob(t *testing.T, ctx context.Context, d *Devnet, m *zk.Model, x []int8, region string) (api.Job, ledger.Job) {
	t.Helper()
	spec, data, err := ZKSpec(m, x)
	if err != nil {
		t.Fatal(err)
	}
	spec.Placement.Region = region
	return submitAndWait(t, ctx, d, spec, data)
}

// submitAndWait submits spec as the devnet's consumer, waits for the job's final status and
// returns it as the router and as the chain show it.
func submitAndWait(t *testing.T, ctx context.Context, d *Devnet, spec api.JobSpec, data map[string][]byte) (api.Job, ledger.Job) {
	t.Helper()
	c := api.NewClient(d.RESTURL())
	job, err := SubmitSigned(ctx, c, d.Keys.Consumer, ChainID, spec, data)
	if err != nil {
		t.Fatal(err)
	}
	if job, err = c.WaitJob(ctx, job.ID, nil); err != nil {
		t.Fatal(err)
	}
	var cj ledger.Job
	if err := d.Chain().Query(ctx, "job/"+job.ID, &cj); err != nil {
		t.Fatal(err)
	}
	return job, cj
}

// zkLiar proves honestly, then returns another output with that proof: what a node that
// wants to pass off a result of its choosing could do without the keys' secrets.
type zkLiar struct{ runtime.Runtime }

func (l zkLiar) Run(ctx context.Context, t runtime.Task) (runtime.Result, error) {
	r, err := l.Runtime.Run(ctx, t)
	if err != nil {
		return r, err
	}
	res, err := zk.DecodeResult(r.Output)
	if err != nil {
		return r, err
	}
	res.Output[0]++
	r.Output, err = res.MarshalBinary()
	return r, err
}
