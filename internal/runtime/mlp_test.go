package runtime

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// A task without a zk statement is the mlp-int8 kernel's freivalds form: Native runs it
// without zk keys and returns the trace a validator checks layer by layer.
func TestNativeRunsMLPAtFreivalds(t *testing.T) {
	_, m, _ := zkTask(t)
	x, err := tensor.RandomInt8(5, m.Layers[0].In, 1)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := m.MarshalBinary()
	xb, _ := x.MarshalBinary()
	inputs := [][]byte{mb, xb}
	res, err := Native{}.Run(context.Background(), Task{JobID: "j", Kernel: tensor.KernelMLPInt8, Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := m.Trace(x)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := tr.MarshalBinary(); !bytes.Equal(res.Output, want) {
		t.Fatal("the output is not the model's trace")
	}
	if v, err := verify.CheckKernel(tensor.KernelMLPInt8, inputs, res.Output, [32]byte{1}, verify.DefaultRounds); err != nil || !v.OK {
		t.Fatalf("the node's trace: %+v, %v", v, err)
	}
	// The zk form's salted input is not a batch: the freivalds form refuses it.
	zkTask, _, _ := zkTask(t)
	zkTask.ZK = nil
	if _, err := (Native{}).Run(context.Background(), zkTask); !errors.Is(err, tensor.ErrEncoding) {
		t.Fatalf("a zk input at freivalds: err = %v, want ErrEncoding", err)
	}
}
