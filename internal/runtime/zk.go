package runtime

import (
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

// ErrStatement is returned for a zk job whose inputs are not what its statement commits
// to: the node refuses it rather than return a proof that cannot verify (which would be
// failed and slashed) — a consumer could otherwise publish commitments to nothing and
// have an honest node punished.
var ErrStatement = errors.New("zk job's inputs do not match its statement")

// proveMLP runs the mlp-int8 kernel: it decodes the model and the salted input, checks them
// against the job's statement, runs the model and proves the output with the keys for its
// shape (made on first use when the cache has none), and returns the encoded zk.Result.
func proveMLP(keys *zk.KeyCache, t Task) ([]byte, error) {
	if len(t.Inputs) != 2 {
		return nil, fmt.Errorf("%w: %s takes 2 inputs [model, input], got %d", tensor.ErrKernelInputs, tensor.KernelMLPInt8, len(t.Inputs))
	}
	if t.ZK == nil {
		return nil, fmt.Errorf("%w: the job has no zk statement", ErrStatement)
	}
	m, err := zk.DecodeModel(t.Inputs[0])
	if err != nil {
		return nil, fmt.Errorf("input model: %w", err)
	}
	in, err := zk.DecodeInput(t.Inputs[1])
	if err != nil {
		return nil, fmt.Errorf("input input: %w", err)
	}
	if got := m.Shape().ID(); got != t.ZK.Shape {
		return nil, fmt.Errorf("%w: the model's shape is %s, the statement's %s", ErrStatement, got, t.ZK.Shape)
	}
	mc, err := zk.ModelCommitment(m)
	if err != nil {
		return nil, err
	}
	if mc.String() != t.ZK.ModelCommitment {
		return nil, fmt.Errorf("%w: the model commits to %s, the statement names %s", ErrStatement, mc, t.ZK.ModelCommitment)
	}
	if ic := zk.InputCommitment(in.Values, in.Salt); ic.String() != t.ZK.InputCommitment {
		return nil, fmt.Errorf("%w: the input commits to %s, the statement names %s", ErrStatement, ic, t.ZK.InputCommitment)
	}
	k, err := keys.Keys(m.Shape())
	if err != nil {
		return nil, err
	}
	out, proof, err := zk.Prove(k, m, in)
	if err != nil {
		return nil, err
	}
	return zk.Result{Output: out, Proof: proof}.MarshalBinary()
}
