// Package runtime runs workloads for the node daemon behind one small interface. The
// native runtime executes the built-in verifiable tensor kernels in-process, for hosts
// without Docker and for tests, and proves the zk level's MLPs (internal/zk); a Docker runtime (the only code allowed to import the
// Docker client) joins it behind the same interface.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/zk"
)

// Task is one workload to run: a kernel name and its input blobs, already fetched and
// integrity-checked. ZK is the statement a zk job's proof must match (its spec's). It is
// also how Native tells the mlp-int8 kernel's two forms apart: a spec carries a statement
// exactly when its level is zk (api.JobSpec.Validate), so a task with one is proved and a
// task without one runs the freivalds form, [model, X] to a tensor.MLPTrace.
type Task struct {
	JobID  string
	Kernel string
	Inputs [][]byte
	ZK     *api.ZKStatement
}

// Result is a workload's output and the accelerator time it used. Device says where a
// native kernel ran ("cpu", or the GPU's name) and why not on the GPU if it fell back.
type Result struct {
	Output    []byte
	GPUMillis uint64
	Device    string
}

// Runtime runs tasks. Run must honour ctx: cancellation or a deadline stops the work.
type Runtime interface {
	Name() string
	Run(ctx context.Context, t Task) (Result, error)
}

// ErrUnsupported is returned for a task the runtime cannot run.
var ErrUnsupported = errors.New("unsupported workload")

// Native runs tensor kernels in-process, the mlp-int8 kernel's freivalds form among them;
// its zk form needs ZK.
type Native struct {
	// Now is the clock used to measure run time; nil means time.Now.
	Now func() time.Time
	// ZK holds the Groth16 keys the mlp-int8 kernel proves with (zk.go); nil means this
	// runtime does not take zk jobs (it still runs mlp-int8 at the freivalds level).
	ZK *zk.KeyCache
	// GPU, when set, computes the matmul-int8 kernel's product (a cuda.Device); nil, and
	// every other kernel, compute on the CPU. A product the GPU fails to compute is
	// computed on the CPU: the output is the same either way, exact int32 sums.
	GPU GPU
}

// GPU multiplies int8 matrices exactly, as tensor.MatMulInt8 does.
type GPU interface {
	Name() string
	MatMulInt8(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error)
}

// Name identifies the runtime in logs and heartbeats.
func (Native) Name() string { return "native" }

// Run executes the kernel. The kernels are not interruptible, so a task that overruns
// its deadline runs to completion in the background and its result is discarded.
func (n Native) Run(ctx context.Context, t Task) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("job %s: %w", t.JobID, err)
	}
	now := n.Now
	if now == nil {
		now = time.Now
	}
	type outcome struct {
		out    []byte
		device string
		err    error
	}
	done := make(chan outcome, 1)
	start := now()
	device := "cpu"
	run := func() ([]byte, error) { return tensor.RunKernel(t.Kernel, t.Inputs) }
	if t.Kernel == tensor.KernelMatMulInt8 && n.GPU != nil {
		run = func() ([]byte, error) {
			out, on, err := matMulOnGPU(n.GPU, t.Inputs)
			device = on
			return out, err
		}
	}
	if t.Kernel == tensor.KernelMLPInt8 && t.ZK != nil {
		if n.ZK == nil {
			return Result{}, fmt.Errorf("%w: job %s is a zk job and this runtime has no zk keys", ErrUnsupported, t.JobID)
		}
		run = func() ([]byte, error) { return proveMLP(n.ZK, t) }
	}
	go func() {
		out, err := run()
		done <- outcome{out, device, err}
	}()
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("job %s: %w", t.JobID, ctx.Err())
	case o := <-done:
		if o.err != nil {
			if errors.Is(o.err, tensor.ErrUnknownKernel) {
				return Result{}, fmt.Errorf("%w: %v", ErrUnsupported, o.err)
			}
			return Result{}, fmt.Errorf("job %s: %w", t.JobID, o.err)
		}
		ms := now().Sub(start).Milliseconds()
		return Result{Output: o.out, GPUMillis: uint64(max(ms, 1)), Device: o.device}, nil
	}
}

// matMulOnGPU runs the matmul-int8 kernel with gpu's product, or tensor.MatMulInt8's where
// the GPU fails; it returns the output and where it was computed.
func matMulOnGPU(gpu GPU, inputs [][]byte) ([]byte, string, error) {
	a, b, err := tensor.DecodeMatMulInt8Inputs(inputs)
	if err != nil {
		return nil, "cpu", err
	}
	c, gerr := gpu.MatMulInt8(a, b)
	on := gpu.Name()
	if gerr != nil {
		on = "cpu (the GPU failed: " + gerr.Error() + ")"
		if c, err = tensor.MatMulInt8(a, b); err != nil {
			return nil, on, err
		}
	}
	out, err := c.MarshalBinary()
	return out, on, err
}
