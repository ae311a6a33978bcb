package devnet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
)

// DemoSize is the side of the demo's square int8 matrices.
const DemoSize = 512

// Outcome is what the demo reports (the --output json object).
type Outcome struct {
	JobID         string            `json:"job_id"`
	Status        string            `json:"status"`
	Verified      bool              `json:"verified"`
	Verdict       string            `json:"verdict"`
	NodeID        string            `json:"node_id"`
	NodeScoreBP   uint32            `json:"node_score_bp"`
	Scores        *api.Scores       `json:"scores,omitempty"`
	ResultDigest  string            `json:"result_digest"`
	BudgetUomni   uint64            `json:"budget_uomni"`
	PaidUomni     uint64            `json:"paid_uomni"`
	BurnedUomni   uint64            `json:"burned_uomni"`
	FeeUomni      uint64            `json:"fee_uomni"`
	RefundedUomni uint64            `json:"refunded_uomni"`
	RewardUomni   uint64            `json:"network_reward_uomni"`
	BilledMillis  uint64            `json:"billed_millis"`
	Txs           map[string]string `json:"txs"`
	SubmitToFinal time.Duration     `json:"-"`
	SecondsToDone float64           `json:"seconds_submit_to_settled"`
	RESTURL       string            `json:"rest_url"`
	RPCURL        string            `json:"chain_rpc_url"`
	Events        []api.Event       `json:"events,omitempty"`
	// OutputBytes is the size of the output the consumer downloaded once the job settled
	// (GET /v1/jobs/{id}/output, signed); its digest is ResultDigest. Zero if it did not settle.
	OutputBytes    int64 `json:"output_bytes"`
	OutputVerified bool  `json:"output_verified"`
	// Container is the container demo's outcome, when the devnet ran it; ContainerSkipped
	// says why it did not.
	Container        *ContainerOutcome `json:"container_job,omitempty"`
	ContainerSkipped string            `json:"container_job_skipped,omitempty"`
}

// DemoSpec builds the demo job: C = A·B for two seeded 512×512 int8 matrices, verified by
// Freivalds' check. It returns the spec and the inline input data.
func DemoSpec(seed uint64) (api.JobSpec, map[string][]byte, error) {
	return MatMulSpec(DemoSize, seed)
}

// MatMulSpec is DemoSpec for two seeded n×n matrices.
func MatMulSpec(n int, seed uint64) (api.JobSpec, map[string][]byte, error) {
	data := map[string][]byte{}
	var inputs []api.Input
	for i, name := range []string{"a", "b"} {
		m, err := tensor.RandomInt8(n, n, seed*2+uint64(i))
		if err != nil {
			return api.JobSpec{}, nil, err
		}
		b, err := m.MarshalBinary()
		if err != nil {
			return api.JobSpec{}, nil, err
		}
		data[name] = b
		inputs = append(inputs, api.Input{Name: name, Digest: api.DigestOf(b), Size: int64(len(b))})
	}
	spec := api.JobSpec{
		Workload:        api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMatMulInt8},
		Inputs:          inputs,
		Resources:       api.Resources{GPUs: 1, VRAMMiB: 1024},
		Placement:       api.Placement{LatE6: 52_520_000, LonE6: 13_400_000}, // a consumer in Berlin
		MaxPricePerHour: 3 * omni,
		Budget:          1 * omni,
		TimeoutSeconds:  300,
		Verification:    api.VerifyFreivald,
	}
	return spec, data, nil
}

// SubmitSigned signs the consumer's create_job transaction for spec (using the account's
// current sequence from the REST API) and submits the job. It is what any consumer does.
func SubmitSigned(ctx context.Context, c *api.Client, key ed25519.PrivateKey, chainID string, spec api.JobSpec, data map[string][]byte) (api.Job, error) {
	acc, err := c.Account(ctx, string(keys.AddressOfKey(key)))
	if err != nil {
		return api.Job{}, fmt.Errorf("read consumer account: %w", err)
	}
	tx, err := ledger.SignTx(key, chainID, acc.Seq, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
		Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
	}})
	if err != nil {
		return api.Job{}, err
	}
	return c.SubmitJob(ctx, api.SubmitJobRequest{Spec: spec, InputData: data, Tx: tx})
}

// RunDemo submits the demo job through the REST API as the devnet's consumer, follows it
// to settlement and reports what happened. onUpdate sees every state change.
func (d *Devnet) RunDemo(ctx context.Context, onUpdate func(api.Job)) (Outcome, error) {
	o, err := RunDemoAt(ctx, api.NewClient(d.RESTURL()), d.Keys.Consumer, ChainID, onUpdate, d.opts.Progress)
	o.RESTURL, o.RPCURL = d.RESTURL()+"/v1", d.RPCURL()
	return o, err
}

// RunDemoAt is the demo against any router's REST API on chain chainID, as the consumer
// key: it submits the demo job, follows it to a final status (onUpdate sees each change)
// and, once it settled, downloads the output with a signed request and checks it against
// the settled digest, telling progress about it.
func RunDemoAt(ctx context.Context, c *api.Client, key ed25519.PrivateKey, chainID string, onUpdate func(api.Job), progress func(string)) (Outcome, error) {
	consumer := string(keys.AddressOfKey(key))
	acc, err := c.Account(ctx, consumer)
	if err != nil {
		return Outcome{}, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	spec, data, err := DemoSpec(acc.Seq + 1) // a new job every run
	if err != nil {
		return Outcome{}, err
	}
	start := time.Now()
	job, err := SubmitSigned(ctx, c, key, chainID, spec, data)
	if err != nil {
		return Outcome{}, fmt.Errorf("submit demo job: %w", err)
	}
	if onUpdate != nil {
		onUpdate(job)
	}
	job, err = c.WaitJob(ctx, job.ID, onUpdate)
	if err != nil {
		return Outcome{}, fmt.Errorf("follow demo job %s: %w", job.ID, err)
	}
	o := Outcome{
		JobID: job.ID, Status: job.Status, Verified: job.Verified, Verdict: job.Verdict,
		NodeID: job.Node, Scores: job.Scores, ResultDigest: job.ResultDigest, Txs: job.Txs,
		SubmitToFinal: time.Since(start), Events: job.Events,
	}
	o.SecondsToDone = o.SubmitToFinal.Seconds()
	if job.Status == api.StatusSettled {
		out, err := c.JobOutput(ctx, job.ID, api.SignOutputAuth(key, consumer, job.ID, time.Minute, time.Now()))
		if err != nil {
			return Outcome{}, fmt.Errorf("download output of demo job %s: %w", job.ID, err)
		}
		if out.Digest != job.ResultDigest {
			return Outcome{}, fmt.Errorf("demo job %s: downloaded output has digest %s, the chain settled %s", job.ID, out.Digest, job.ResultDigest)
		}
		progress(fmt.Sprintf("consumer downloaded the output with a signed request: %d bytes, digest matches the settled result (verified: %t)",
			out.Size, out.Verified))
		o.OutputBytes, o.OutputVerified = out.Size, out.Verified
	}
	if job.Scores != nil {
		o.NodeScoreBP = job.Scores.Total
	}
	if p := job.Payment; p != nil {
		o.BudgetUomni, o.PaidUomni, o.BurnedUomni, o.FeeUomni, o.RefundedUomni, o.BilledMillis =
			p.Budget, p.PaidToNode, p.Burned, p.ProtocolFee, p.Refunded, p.BilledMillis
		o.RewardUomni = p.NetworkReward
	}
	return o, nil
}
