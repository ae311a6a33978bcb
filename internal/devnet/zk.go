package devnet

import (
	"crypto/rand"
	mrand "math/rand/v2"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

// ZKSpec is a consumer's zk job: model m run on input x, proved by the node and verified
// by the committee at level zk. It draws the input's salt, commits to the model and the
// salted input in the spec (which the consumer signs), and carries the model and the
// salt with the input as the job's two inputs, read by the node that runs it and by
// nobody on the committee. MaxPricePerHour, budget and timeout are MatMulSpec's.
func ZKSpec(m *zk.Model, x []int8) (api.JobSpec, map[string][]byte, error) {
	in := zk.Input{Values: x}
	if _, err := rand.Read(in.Salt[:]); err != nil {
		return api.JobSpec{}, nil, err
	}
	mc, err := zk.ModelCommitment(m)
	if err != nil {
		return api.JobSpec{}, nil, err
	}
	model, err := m.MarshalBinary()
	if err != nil {
		return api.JobSpec{}, nil, err
	}
	input, err := in.MarshalBinary()
	if err != nil {
		return api.JobSpec{}, nil, err
	}
	data := map[string][]byte{"model": model, "input": input}
	spec := api.JobSpec{
		Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMLPInt8},
		Inputs: []api.Input{
			{Name: "model", Digest: api.DigestOf(model), Size: int64(len(model))},
			{Name: "input", Digest: api.DigestOf(input), Size: int64(len(input))},
		},
		Resources:       api.Resources{GPUs: 1, VRAMMiB: 1024},
		Placement:       api.Placement{LatE6: 52_520_000, LonE6: 13_400_000},
		MaxPricePerHour: 3 * omni,
		Budget:          1 * omni,
		TimeoutSeconds:  300,
		Verification:    api.VerifyZK,
		ZK: &api.ZKStatement{
			Shape:           m.Shape().ID(),
			ModelCommitment: mc.String(),
			InputCommitment: zk.InputCommitment(in.Values, in.Salt).String(),
		},
	}
	return spec, data, nil
}

// RandomMLP is a model of the given shape with weights drawn from seed over the whole int8
// range and small biases.
func RandomMLP(s zk.Shape, seed uint64) *zk.Model {
	rng := mrand.New(mrand.NewPCG(seed, 0x6d6c70))
	m := &zk.Model{Layers: make([]zk.Layer, len(s))}
	for i, ls := range s {
		l := zk.Layer{LayerShape: ls, Weights: make([]int8, ls.In*ls.Out), Biases: make([]int32, ls.Out)}
		for j := range l.Weights {
			l.Weights[j] = int8(rng.IntN(256) - 128)
		}
		for j := range l.Biases {
			l.Biases[j] = int32(rng.IntN(1<<12) - 1<<11)
		}
		m.Layers[i] = l
	}
	return m
}

// RandomMLPInput is an input of n values drawn from seed.
func RandomMLPInput(n int, seed uint64) []int8 {
	rng := mrand.New(mrand.NewPCG(seed, 0x78))
	x := make([]int8, n)
	for i := range x {
		x[i] = int8(rng.IntN(256) - 128)
	}
	return x
}
