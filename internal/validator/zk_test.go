package validator

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

var zkShape = zk.Shape{{In: 8, Out: 4, Shift: 7}, {In: 4, Out: 2, Shift: 6}}

// zkKeys makes a key directory holding one setup for zkShape: the nodes' side of a
// deployment.
func zkKeys(t *testing.T) (string, *zk.Keys) {
	t.Helper()
	dir := t.TempDir()
	keys, err := zk.NewKeyCache(dir).Keys(zkShape)
	if err != nil {
		t.Fatal(err)
	}
	return dir, keys
}

// zkJob is a consumer's zk job and the node's honest result for it.
type zkJob struct {
	spec   api.JobSpec
	result zk.Result
}

// proveZKJob makes a model and an input from seed, proves them with the deployment's keys
// and returns the spec the consumer would sign. The spec's inputs name blobs never stored:
// the validator must not need them.
func proveZKJob(t *testing.T, keys *zk.Keys, seed byte) zkJob {
	t.Helper()
	m := &zk.Model{}
	for _, ls := range zkShape {
		l := zk.Layer{LayerShape: ls, Weights: make([]int8, ls.In*ls.Out), Biases: make([]int32, ls.Out)}
		for i := range l.Weights {
			l.Weights[i] = int8(i*37 + int(seed)*11)
		}
		for i := range l.Biases {
			l.Biases[i] = int32(i*100) - 150
		}
		m.Layers = append(m.Layers, l)
	}
	in := zk.Input{Values: make([]int8, zkShape[0].In)}
	for i := range in.Values {
		in.Values[i] = int8(i*53 - int(seed)*7)
	}
	_, _ = rand.Read(in.Salt[:])
	out, proof, err := zk.Prove(keys, m, in)
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := zk.ModelCommitment(m)
	unstored := api.DigestOf([]byte{seed})
	return zkJob{
		spec: api.JobSpec{
			Workload:     api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMLPInt8},
			Inputs:       []api.Input{{Name: "model", Digest: unstored, Size: 1}, {Name: "input", Digest: unstored, Size: 1}},
			Verification: api.VerifyZK,
			ZK:           &api.ZKStatement{Shape: zkShape.ID(), ModelCommitment: mc.String(), InputCommitment: zk.InputCommitment(in.Values, in.Salt).String()},
		},
		result: zk.Result{Output: out, Proof: proof},
	}
}

// newZKRig is a rig whose validator reads zk keys from dir ("" for none at all) and whose
// job is j, committed with output.
func newZKRig(t *testing.T, dir *string, j zkJob, output []byte) *rig {
	t.Helper()
	r := newRigWith(t, func(o *Options) {
		if dir != nil {
			o.ZKKeys = zk.NewKeyCache(*dir)
		}
	})
	r.spec = j.spec
	r.chain.mu.Lock()
	r.chain.job.SpecHash, r.chain.job.Verification = j.spec.Hash(), ledger.VerifyZK
	r.chain.job.ResultDigest = r.put(t, output)
	r.chain.mu.Unlock()
	return r
}

func encodeResult(t *testing.T, res zk.Result) []byte {
	t.Helper()
	b, err := res.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An honest proof passes and states the model's operations; every result that is not the
// proof of the committed statement fails, an attestation that slashes.
func TestZKProofChecks(t *testing.T) {
	dir, keys := zkKeys(t)
	j, other := proveZKJob(t, keys, 1), proveZKJob(t, keys, 2)
	wrongOutput := zk.Result{Output: append([]int8(nil), j.result.Output...), Proof: j.result.Proof}
	wrongOutput.Output[0]++
	cases := []struct {
		name   string
		output []byte
		pass   bool
		reason string
	}{
		{"honest", encodeResult(t, j.result), true, "verified"},
		{"wrong output with the right proof", encodeResult(t, wrongOutput), false, "does not verify"},
		{"another job's output and proof", encodeResult(t, other.result), false, "does not verify"},
		{"right output, another job's proof", encodeResult(t, zk.Result{Output: j.result.Output, Proof: other.result.Proof}), false, "does not verify"},
		{"no proof", encodeResult(t, zk.Result{Output: j.result.Output}), false, "does not verify"},
		{"not a zk result", []byte("C = A·B, trust me"), false, "not a zk result"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newZKRig(t, &dir, j, c.output)
			v := r.verify(t, r.spec)
			if v.Error != "" || v.Pass != c.pass || len(r.chain.attests) != 1 || r.chain.attests[0].Pass != c.pass || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("verdict %+v, attests %+v: want pass=%v (%q)", v, r.chain.attests, c.pass, c.reason)
			}
			if got := r.chain.attests[0].Ops; got != zkShape.Ops() {
				t.Fatalf("attested %d operations, want the model's %d", got, zkShape.Ops())
			}
		})
	}
}

// A validator without the deployment's verifying key for the shape (none made, or no zk
// keys at all) is in trouble of its own: it attests nothing, and never makes keys.
func TestZKWithoutTheKeyAttestsNothing(t *testing.T) {
	_, keys := zkKeys(t)
	j := proveZKJob(t, keys, 1)
	empty := t.TempDir()
	for name, dir := range map[string]*string{"empty key directory": &empty, "no zk keys": nil} {
		t.Run(name, func(t *testing.T) {
			r := newZKRig(t, dir, j, encodeResult(t, j.result))
			v := r.verify(t, r.spec)
			if v.Error == "" || len(r.chain.attests) != 0 {
				t.Fatalf("verdict %+v, attests %+v: want an error and no attestation", v, r.chain.attests)
			}
		})
	}
	if _, err := zk.NewKeyCache(empty).VerifyingKey(zkShape); err == nil {
		t.Fatal("the validator made keys")
	}
}
