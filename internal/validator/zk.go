package validator

import (
	"context"
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/zk"
)

// checkZK verifies a zk job's Groth16 proof against the statement its spec commits to (the
// model's shape and commitment, the input's commitment) and the output the node returned
// with it. It reads neither the model nor the input. A result that does not decode or a
// proof that does not verify fails: verification is deterministic, so the failure is
// evidence. No verifying key for the shape, or a statement that does not parse (a spec an
// honest node refuses to run), is not the node's doing: an error, and nothing is attested.
// A pass states the model's operations (zk.Shape.Ops), what the node is billed for.
func (d *Daemon) checkZK(ctx context.Context, c jobCheck) (finding, error) {
	if d.opts.ZKKeys == nil {
		return finding{}, fmt.Errorf("this validator cannot verify zk jobs: %w: it has no zk keys", runtime.ErrUnsupported)
	}
	st := c.req.Spec.ZK
	if st == nil {
		return finding{}, fmt.Errorf("job %s is a zk job without a zk statement", c.job.ID)
	}
	shape, err := zk.ParseShape(st.Shape)
	if err != nil {
		return finding{}, fmt.Errorf("the spec's statement: %w", err)
	}
	model, err := zk.ParseCommitment(st.ModelCommitment)
	if err != nil {
		return finding{}, fmt.Errorf("the spec's model commitment: %w", err)
	}
	input, err := zk.ParseCommitment(st.InputCommitment)
	if err != nil {
		return finding{}, fmt.Errorf("the spec's input commitment: %w", err)
	}
	vk, err := d.opts.ZKKeys.VerifyingKey(shape)
	if err != nil {
		return finding{}, err
	}
	output, err := c.output(ctx)
	if err != nil {
		return neverUploaded(err)
	}
	release, err := d.busy(ctx)
	if err != nil {
		return finding{}, err
	}
	defer release()
	f := finding{ops: shape.Ops()}
	res, err := zk.DecodeResult(output)
	if err != nil {
		f.reason = "the output is not a zk result: " + err.Error()
		return f, nil
	}
	switch err := zk.Verify(vk, zk.Statement{Model: model, Input: input, Output: res.Output}, res.Proof); {
	case errors.Is(err, zk.ErrInvalidProof) || errors.Is(err, zk.ErrMalformed):
		f.reason = "the proof does not verify for the committed model, input and output: " + err.Error()
	case err != nil:
		return finding{}, fmt.Errorf("verify the proof: %w", err)
	default:
		f.pass, f.reason = true, fmt.Sprintf("Groth16 proof verified: the committed %s model on the committed input gives the output", shape.ID())
	}
	return f, nil
}
