package validator

import (
	"context"
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/verify"
)

// ErrRouterAtFault reports a challenge the router revealed falsely: its A' is not the
// consumer's A with rows added, or its expected rows are not A'·B's. The node computed
// what it was given, so nothing is attested against it.
var ErrRouterAtFault = errors.New("the router's challenge is false")

// checkChallenge checks a challenge job. The router hid challenge rows in the consumer's
// first input A and dispatched the result, A', to the node, whose committed output is
// C' = A'·B; once C' was committed it revealed A', the rows' positions and the digest of
// their expected output (ledger.MsgRevealChallenge). What the router revealed is checked
// first (challengeRows), then the node's output at the challenge rows, and, when the
// chain drew the job for audit, the whole of C' by Freivalds' algorithm. The finding's
// Ops is the node's work, A'·B.
func (d *Daemon) checkChallenge(ctx context.Context, c jobCheck) (finding, error) {
	reveal := c.job.ChallengeReveal
	if reveal == nil {
		return finding{}, fmt.Errorf("job %s's challenge is not revealed yet: there are no rows to check", c.job.ID)
	}
	if w := c.req.Spec.Workload; w.Kind != api.WorkloadTensor || w.Kernel != tensor.KernelMatMulInt8 {
		return finding{}, fmt.Errorf("job %s is a challenge job, which only an int8 matrix product can be, but runs %s %q", c.job.ID, w.Kind, w.Kernel)
	}
	inputs, err := c.inputs(ctx)
	if err != nil {
		return finding{}, err
	}
	a, b, err := tensor.DecodeMatMulInt8Inputs(inputs)
	if err != nil {
		return finding{}, fmt.Errorf("the consumer's inputs: %w", err)
	}
	encodedAPrime, err := c.blobs.Get(ctx, reveal.Input)
	if err != nil {
		return finding{}, fmt.Errorf("fetch the challenge input A' %s: %w", reveal.Input, err)
	}
	dispatched := [][]byte{encodedAPrime, inputs[1]}
	aPrime, _, err := tensor.DecodeMatMulInt8Inputs(dispatched)
	if err != nil {
		return finding{}, fmt.Errorf("%w: A' %s: %w", ErrRouterAtFault, reveal.Input, err)
	}
	release, err := d.busy(ctx)
	if err != nil {
		return finding{}, err
	}
	defer release()
	positions, err := challengeRows(a, aPrime, b, reveal)
	if err != nil {
		return finding{}, err
	}

	output, err := c.output(ctx)
	if err != nil {
		return neverUploaded(err)
	}
	v, err := verify.CheckChallenge(aPrime, b, output, positions)
	if err != nil {
		return finding{}, fmt.Errorf("check the challenge rows: %w", err)
	}
	if !v.OK || !c.job.Audited {
		return fromVerdict(v), nil
	}
	full, err := d.checkKernel(c.req.Spec.Workload.Kernel, dispatched, output, c.seed)
	if err != nil {
		return finding{}, fmt.Errorf("check: %w", err)
	}
	return fromVerdict(full), nil
}

// challengeRows reads the revealed challenge rows' positions in A' and checks the router
// before the node is judged by what it revealed: A' without those rows must be exactly
// the consumer's A, and the digest the router committed to must be that of A'·B's rows
// at those positions. Either failing is the router's fault (ErrRouterAtFault).
func challengeRows(a, aPrime, b *tensor.Int8Matrix, reveal *ledger.ChallengeReveal) ([]uint32, error) {
	positions, err := verify.DecodeRowsText(reveal.Rows, aPrime.Rows)
	if err != nil {
		return nil, fmt.Errorf("%w: the revealed rows: %w", ErrRouterAtFault, err)
	}
	same, err := verify.SameRowsExcept(aPrime, a, positions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRouterAtFault, err)
	}
	if !same {
		return nil, fmt.Errorf("%w: A' %s is not the consumer's A with %d challenge rows added", ErrRouterAtFault, reveal.Input, len(positions))
	}
	expected, err := verify.ExpectedRows(aPrime, b, positions)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRouterAtFault, err)
	}
	encoded, err := expected.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode the challenge rows' expected output: %w", err)
	}
	if got := transport.Digest(encoded); got != reveal.Expected {
		return nil, fmt.Errorf("%w: the challenge rows' expected output is %s, but the router committed to %s", ErrRouterAtFault, got, reveal.Expected)
	}
	return positions, nil
}
