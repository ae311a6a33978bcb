package runtime

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

// zkTask is an mlp-int8 task on a small model, with the statement its consumer signed.
func zkTask(t *testing.T) (Task, *zk.Model, zk.Input) {
	t.Helper()
	shape := zk.Shape{{In: 4, Out: 3, Shift: 5}, {In: 3, Out: 2, Shift: 4}}
	m := &zk.Model{}
	for _, ls := range shape {
		l := zk.Layer{LayerShape: ls, Weights: make([]int8, ls.In*ls.Out), Biases: make([]int32, ls.Out)}
		for i := range l.Weights {
			l.Weights[i] = int8(i*41 - 60)
		}
		m.Layers = append(m.Layers, l)
	}
	in := zk.Input{Values: []int8{-128, 3, 77, 127}, Salt: zk.Salt{1, 2, 3}}
	mb, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ib, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := zk.ModelCommitment(m)
	st := &api.ZKStatement{Shape: shape.ID(), ModelCommitment: mc.String(), InputCommitment: zk.InputCommitment(in.Values, in.Salt).String()}
	return Task{JobID: "j", Kernel: tensor.KernelMLPInt8, Inputs: [][]byte{mb, ib}, ZK: st}, m, in
}

func TestNativeProvesMLP(t *testing.T) {
	task, m, in := zkTask(t)
	keys := zk.NewKeyCache("")
	res, err := Native{ZK: keys}.Run(context.Background(), task)
	if err != nil {
		t.Fatal(err)
	}
	out, err := zk.DecodeResult(res.Output)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := m.Forward(in.Values)
	if !slices.Equal(out.Output, want) {
		t.Fatalf("output %v, want %v", out.Output, want)
	}
	vk, err := keys.VerifyingKey(m.Shape())
	if err != nil {
		t.Fatal(err)
	}
	mc, _ := zk.ModelCommitment(m)
	if err := zk.Verify(vk, zk.Statement{Model: mc, Input: zk.InputCommitment(in.Values, in.Salt), Output: out.Output}, out.Proof); err != nil {
		t.Fatalf("the node's proof: %v", err)
	}
}

// A node refuses a job whose inputs are not what its statement commits to, rather than
// return a proof that would fail and slash it.
func TestNativeRefusesAFalseStatement(t *testing.T) {
	keys := zk.NewKeyCache("")
	for name, lie := range map[string]func(*api.ZKStatement){
		"model commitment": func(s *api.ZKStatement) { s.ModelCommitment = s.InputCommitment },
		"input commitment": func(s *api.ZKStatement) { s.InputCommitment = s.ModelCommitment },
		"shape":            func(s *api.ZKStatement) { s.Shape = "4x3s5-3x2s3" },
	} {
		task, _, _ := zkTask(t)
		lie(task.ZK)
		if _, err := (Native{ZK: keys}).Run(context.Background(), task); !errors.Is(err, ErrStatement) {
			t.Fatalf("%s: err = %v, want ErrStatement", name, err)
		}
	}
	task, _, _ := zkTask(t)
	if _, err := (Native{}).Run(context.Background(), task); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("a runtime without zk keys: err = %v, want ErrUnsupported", err)
	}
	// The kernel's name is the one api's zk level names.
	if tensor.KernelMLPInt8 != api.KernelMLPInt8 {
		t.Fatalf("tensor names %q, api %q", tensor.KernelMLPInt8, api.KernelMLPInt8)
	}
}

// BenchmarkZKJob measures a zk job's work on each side for the 64→32→10 MLP of
// docs/verification.md: the node's (decode, check the statement, run, prove, encode; the
// setup is made once, before) and a validator's (decode the result, verify the proof).
func BenchmarkZKJob(b *testing.B) {
	shape := zk.Shape{{In: 64, Out: 32, Shift: 8}, {In: 32, Out: 10, Shift: 8}}
	m := &zk.Model{}
	for _, ls := range shape {
		l := zk.Layer{LayerShape: ls, Weights: make([]int8, ls.In*ls.Out), Biases: make([]int32, ls.Out)}
		for i := range l.Weights {
			l.Weights[i] = int8(i*41 - 60)
		}
		m.Layers = append(m.Layers, l)
	}
	in := zk.Input{Values: make([]int8, 64), Salt: zk.Salt{9}}
	for i := range in.Values {
		in.Values[i] = int8(i * 3)
	}
	mb, _ := m.MarshalBinary()
	ib, _ := in.MarshalBinary()
	mc, _ := zk.ModelCommitment(m)
	ic := zk.InputCommitment(in.Values, in.Salt)
	task := Task{Kernel: tensor.KernelMLPInt8, Inputs: [][]byte{mb, ib},
		ZK: &api.ZKStatement{Shape: shape.ID(), ModelCommitment: mc.String(), InputCommitment: ic.String()}}
	keys := zk.NewKeyCache("")
	if _, err := keys.Keys(shape); err != nil {
		b.Fatal(err)
	}
	var out []byte
	b.Run("node", func(b *testing.B) {
		for range b.N {
			res, err := Native{ZK: keys}.Run(context.Background(), task)
			if err != nil {
				b.Fatal(err)
			}
			out = res.Output
		}
	})
	vk, _ := keys.VerifyingKey(shape)
	b.Run("validator", func(b *testing.B) {
		for range b.N {
			res, err := zk.DecodeResult(out)
			if err != nil {
				b.Fatal(err)
			}
			if err := zk.Verify(vk, zk.Statement{Model: mc, Input: ic, Output: res.Output}, res.Proof); err != nil {
				b.Fatal(err)
			}
		}
	})
}
