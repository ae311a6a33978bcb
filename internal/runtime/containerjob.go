package runtime

import (
	"context"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

// NewContainerTask is the task that runs spec's container workload for the job jobID of
// consumer, given inputs, the blobs spec.Inputs name, in their order. The input the
// workload names as its image archive is the image to load, every other one a file in
// the job's inputs directory. The node that runs a job and a validator that audits it
// both build the task here, so that the audit runs what the node ran.
func NewContainerTask(jobID, consumer string, spec api.JobSpec, timeout time.Duration, inputs [][]byte) ContainerTask {
	w, rsc := spec.Workload, spec.Resources
	task := ContainerTask{
		JobID: jobID, Consumer: consumer, Image: w.Image, ImageID: w.ImageID, Command: w.Command, Env: w.Env,
		GPUs: rsc.GPUs, CPUMilli: rsc.CPUMilli, MemoryMiB: rsc.MemoryMiB, Timeout: timeout,
	}
	for i, in := range spec.Inputs {
		if in.Name == w.ImageArchive {
			task.ImageArchive = inputs[i]
			continue
		}
		task.Inputs = append(task.Inputs, jobio.File{Path: in.Name, Data: inputs[i]})
	}
	return task
}

// RunContainerJob runs t in c and returns what its result is committed as: Output, the
// canonical archive of what the job left and its exit code (api.PackOutput), whose
// digest two honest runs of a deterministic job share; and GPUMillis, the run's wall
// time (at least 1 ms) on each job slot it held (its GPUs, at least one). The exit code
// comes back too; a non-zero one is a result, not an error.
func RunContainerJob(ctx context.Context, c Container, t ContainerTask) (Result, int, error) {
	cr, err := c.RunContainer(ctx, t)
	if err != nil {
		return Result{}, 0, err
	}
	files := make([]api.OutputFile, len(cr.Outputs))
	for i, o := range cr.Outputs {
		files[i] = api.OutputFile{Path: o.Path, Data: o.Data}
	}
	archive, err := api.PackOutput(api.ContainerOutput{ExitCode: cr.ExitCode, Files: files})
	if err != nil {
		return Result{}, 0, err
	}
	slots := api.Resources{GPUs: t.GPUs}.Slots()
	ms := uint64(max(cr.Elapsed.Milliseconds(), 1)) * uint64(slots)
	return Result{Output: archive, GPUMillis: ms}, cr.ExitCode, nil
}
