package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
)

// SubmitJob validates a consumer's signed job, stores its inputs, locks its budget in
// escrow on chain and starts placing it. Nothing is escrowed unless every check passes.
func (r *Router) SubmitJob(ctx context.Context, req api.SubmitJobRequest) (api.Job, error) {
	spec := req.Spec
	if err := spec.Validate(); err != nil {
		var fe *api.FieldError
		if errors.As(err, &fe) {
			return api.Job{}, &api.FieldError{Field: "spec." + fe.Field, Msg: fe.Msg}
		}
		return api.Job{}, err
	}
	inputs, err := checkInputs(spec, req.InputData)
	if err != nil {
		return api.Job{}, err
	}
	tx, err := checkCreateTx(spec, req.Tx)
	if err != nil {
		return api.Job{}, err
	}
	var acc ledger.Account
	if err := r.opts.Chain.Query(ctx, "account/"+string(tx.Signer), &acc); err != nil {
		return api.Job{}, fmt.Errorf("%w: read consumer account: %v", api.ErrUnavailable, err)
	}
	if acc.Balance < spec.Budget {
		return api.Job{}, fmt.Errorf("%w: %s holds %s OMNI but the job's budget is %s OMNI; nothing was escrowed",
			api.ErrInsufficientFunds, tx.Signer, ledger.FormatOMNI(acc.Balance), ledger.FormatOMNI(spec.Budget))
	}
	if tx.Body.Seq != acc.Seq {
		return api.Job{}, fmt.Errorf("%w: tx sequence %d, account expects %d (sign with the current sequence)", api.ErrConflict, tx.Body.Seq, acc.Seq)
	}
	for i, in := range spec.Inputs {
		if _, err := transport.PutBlob(ctx, r.js, protocol.BlobBucket, inputs[i]); err != nil {
			return api.Job{}, fmt.Errorf("%w: store input %s: %v", api.ErrUnavailable, in.Name, err)
		}
	}
	id := ledger.JobID(tx.Signer, tx.Body.Seq)
	j := newJob(id, tx.Signer, spec)
	r.mu.Lock()
	if _, dup := r.jobs[id]; dup {
		r.mu.Unlock()
		return api.Job{}, fmt.Errorf("%w: job %s was already submitted", api.ErrConflict, id)
	}
	r.jobs[id] = j
	r.mu.Unlock()

	res, err := r.BroadcastTx(ctx, req.Tx)
	if err != nil {
		r.mu.Lock()
		delete(r.jobs, id)
		r.mu.Unlock()
		return api.Job{}, fmt.Errorf("escrow budget: %w", err)
	}
	j.record("escrowed", "create", res.Hash, "%s OMNI locked in escrow", ledger.FormatOMNI(spec.Budget))
	r.wg.Add(1)
	go r.run(j)
	return r.Job(ctx, id)
}

// checkInputs matches inline data to the spec's digests and, for tensor kernels, checks
// that the operands decode and fit the kernel, so a bad job fails before any escrow.
func checkInputs(spec api.JobSpec, data map[string][]byte) ([][]byte, error) {
	out := make([][]byte, len(spec.Inputs))
	for i, in := range spec.Inputs {
		b, ok := data[in.Name]
		field := fmt.Sprintf("input_data[%q]", in.Name)
		switch {
		case !ok:
			return nil, &api.FieldError{Field: field, Msg: "missing: every input must be sent inline"}
		case int64(len(b)) != in.Size:
			return nil, &api.FieldError{Field: field, Msg: fmt.Sprintf("%d bytes, spec says %d", len(b), in.Size)}
		case api.DigestOf(b) != in.Digest:
			return nil, &api.FieldError{Field: field, Msg: "digest mismatch"}
		}
		out[i] = b
	}
	if spec.Workload.Kernel == tensor.KernelMatMulInt8 {
		if _, _, err := tensor.DecodeMatMulInt8Inputs(out); err != nil {
			return nil, &api.FieldError{Field: "spec.inputs", Msg: err.Error()}
		}
	} else {
		known := false
		for _, k := range tensor.Kernels() {
			known = known || k == spec.Workload.Kernel
		}
		if !known {
			return nil, &api.FieldError{Field: "spec.workload.kernel", Msg: fmt.Sprintf("unknown kernel %q (known: %v)", spec.Workload.Kernel, tensor.Kernels())}
		}
	}
	return out, nil
}

// checkCreateTx checks that the signed transaction escrows exactly this spec.
func checkCreateTx(spec api.JobSpec, raw []byte) (ledger.Tx, error) {
	bad := func(format string, args ...any) (ledger.Tx, error) {
		return ledger.Tx{}, &api.FieldError{Field: "tx", Msg: fmt.Sprintf(format, args...)}
	}
	if len(raw) == 0 {
		return bad("the consumer's signed create_job transaction is required")
	}
	tx, err := ledger.DecodeTx(raw)
	if err != nil {
		return bad("%v", err)
	}
	c := tx.Body.CreateJob
	switch {
	case c == nil:
		return bad("must be a create_job transaction, got %s", tx.Body.Kind())
	case c.SpecHash != spec.Hash():
		return bad("commits to spec %s but the submitted spec hashes to %s", c.SpecHash, spec.Hash())
	case c.Budget != spec.Budget || c.MaxPricePerHour != spec.MaxPricePerHour ||
		c.TimeoutSeconds != spec.TimeoutSeconds || c.Verification != spec.Verification:
		return bad("budget, price ceiling, timeout or verification differ from the spec")
	}
	return tx, nil
}

// schedulerJob translates a spec into the scheduler's terms.
func schedulerJob(spec api.JobSpec, exclude []string) scheduler.Job {
	return scheduler.Job{
		GPUs: spec.Resources.GPUs, VRAMMiB: spec.Resources.VRAMMiB,
		MaxPricePerHourUomni: spec.MaxPricePerHour, Region: spec.Placement.Region,
		Origin:           scheduler.Location{LatE6: spec.Placement.LatE6, LonE6: spec.Placement.LonE6},
		MaxLatencyMicros: spec.Placement.MaxLatencyMs * 1000,
		Replicas:         1, Exclude: exclude,
	}
}

// reliabilityBP is a node's verification record as basis points, Laplace-smoothed so a
// new node starts at 50% rather than at either extreme.
func reliabilityBP(n ledger.Node) uint32 {
	return uint32((n.JobsVerified + 1) * 10_000 / (n.JobsVerified + n.JobsFailed + 2))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
