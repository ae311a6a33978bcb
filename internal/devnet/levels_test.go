package devnet

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
)

// A level test's cheating first node declares it is in regionCheat and the others in
// regionHonest, so that a job asking for one region goes to the cheat or to an honest node.
const (
	regionCheat  = "cheat"
	regionHonest = "honest"
)

// startAuditDevnet is startDevnet with the chain's audit rate set to rateBP and, unless
// cheat is nil, a first node in regionCheat that runs its workloads with cheat(the runtime
// it would have had), the others in regionHonest.
func startAuditDevnet(t *testing.T, rateBP uint64, cheat func(honest runtime.Runtime) runtime.Runtime) *Devnet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := Options{Home: t.TempDir(), BlockTime: 100 * time.Millisecond,
		Params: func(p *ledger.Params) { p.AuditRateBP = rateBP }}
	if cheat != nil {
		opts.NodeOptions = func(i int, o *node.Options) {
			o.Hardware.Region = regionHonest
			if i == 0 {
				o.Runtime, o.Hardware.Region = cheat(o.Runtime), regionCheat
			}
		}
	}
	d, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// runLevelJob submits a 64×64 product at the level as the devnet's consumer and waits for
// its final status; it returns the job as the router and as the chain show it.
func runLevelJob(t *testing.T, ctx context.Context, d *Devnet, level, region string, seed uint64) (api.Job, ledger.Job, map[string][]byte) {
	t.Helper()
	spec, data, err := MatMulSpec(64, seed)
	if err != nil {
		t.Fatal(err)
	}
	spec.Verification, spec.Placement.Region = level, region
	job, cj := submitAndWait(t, ctx, d, spec, data)
	return job, cj, data
}

// TestChallengeAndAuditLevelsEndToEnd runs the two levels through the devnet's real router,
// node and validator at an audit rate of 0: a challenge job's rows are committed at
// assignment, revealed after the result and checked, and its consumer reads exactly A·B,
// its own rows; an audit job the draw passed over settles at once, paid, and is not
// called verified; and a lazy node's random product fails its challenge rows, unaudited:
// the consumer is refunded and the node slashed.
func TestChallengeAndAuditLevelsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	d := startAuditDevnet(t, 0, func(runtime.Runtime) runtime.Runtime { return lazy{} })

	job, cj, data := runLevelJob(t, ctx, d, api.VerifyChallenge, regionHonest, 41)
	if job.Status != api.StatusSettled || !job.Verified || cj.Challenge == "" || cj.ChallengeReveal == nil || cj.Audited {
		t.Fatalf("challenge job %s verified=%v verdict %q, chain: challenge %q reveal %+v audited %v; events %+v",
			job.Status, job.Verified, job.Verdict, cj.Challenge, cj.ChallengeReveal, cj.Audited, job.Events)
	}
	a, b, err := tensor.DecodeMatMulInt8Inputs([][]byte{data["a"], data["b"]})
	if err != nil {
		t.Fatal(err)
	}
	product, err := tensor.MatMulInt8(a, b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := product.MarshalBinary()
	if out := consumerOutput(t, ctx, d, job.ID); !bytes.Equal(out.Data, want) || !out.Verified {
		t.Fatalf("the consumer read %d bytes (verified %v), want its own 64×64 product of %d bytes", len(out.Data), out.Verified, len(want))
	}
	// The node computed the challenge rows too, and is billed for them.
	if len(cj.Attestations) == 0 || cj.Attestations[0].Ops <= tensor.MatMulOps(64, 64, 64) {
		t.Fatalf("attestations %+v: want the node's work, more than the consumer's 64 rows", cj.Attestations)
	}

	job, cj, _ = runLevelJob(t, ctx, d, api.VerifyAudit, regionHonest, 43)
	if job.Status != api.StatusSettled || job.Verified || cj.Audited || len(cj.Attestations) != 0 || cj.Settlement == nil || cj.Settlement.Paid == 0 {
		t.Fatalf("unaudited audit job %s verified=%v audited=%v attestations %d settlement %+v", job.Status, job.Verified, cj.Audited, len(cj.Attestations), cj.Settlement)
	}

	job, cj, _ = runLevelJob(t, ctx, d, api.VerifyChallenge, regionCheat, 45)
	if job.Status != api.StatusFailed || cj.Audited || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget {
		t.Fatalf("lazy node's challenge job %s audited=%v settlement %+v verdict %q", job.Status, cj.Audited, cj.Settlement, job.Verdict)
	}
	if n := nodeRecord(t, ctx, d, job.Node); n.Stake >= nodeStake {
		t.Fatalf("lazy node kept its stake: %d", n.Stake)
	}
}

// consumerOutput reads a job's output as the devnet's consumer, with a signed request.
func consumerOutput(t *testing.T, ctx context.Context, d *Devnet, jobID string) api.JobOutput {
	t.Helper()
	consumer := string(keys.AddressOfKey(d.Keys.Consumer))
	out, err := api.NewClient(d.RESTURL()).JobOutput(ctx, jobID, api.SignOutputAuth(d.Keys.Consumer, consumer, jobID, time.Minute, time.Now()))
	if err != nil {
		t.Fatalf("the consumer's output of %s: %v", jobID, err)
	}
	return out
}

// lazy returns a random product of the right shape without computing it.
type lazy struct{ runtime.Native }

func (lazy) Run(_ context.Context, t runtime.Task) (runtime.Result, error) { return randomProduct(t) }

func nodeRecord(t *testing.T, ctx context.Context, d *Devnet, id string) ledger.Node {
	t.Helper()
	var n ledger.Node
	if err := d.Chain().Query(ctx, "node/"+id, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEveryJobAuditedCatchesATamperer: at a 100% audit rate, an audit job on a node that
// changes one element of the product is re-checked, failed, refunded and the node slashed;
// a challenge job on an honest node is audited in full and settles.
func TestEveryJobAuditedCatchesATamperer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	d := startAuditDevnet(t, ledger.BasisPoints, func(runtime.Runtime) runtime.Runtime { return tamperer{} })
	job, cj, _ := runLevelJob(t, ctx, d, api.VerifyAudit, regionCheat, 51)
	n := nodeRecord(t, ctx, d, job.Node)
	if !cj.Audited || job.Status != api.StatusFailed || cj.Settlement == nil || cj.Settlement.Refunded != cj.Budget || n.Stake >= nodeStake {
		t.Fatalf("tamperer's audit job audited=%v %s, settlement %+v, node stake %d of %d; events %+v", cj.Audited, job.Status, cj.Settlement, n.Stake, nodeStake, job.Events)
	}
	job, cj, _ = runLevelJob(t, ctx, d, api.VerifyChallenge, regionHonest, 71)
	if job.Status != api.StatusSettled || !job.Verified || !cj.Audited {
		t.Fatalf("audited challenge job %s verified=%v audited=%v verdict %q", job.Status, job.Verified, cj.Audited, job.Verdict)
	}
}
