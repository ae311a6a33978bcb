package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

// ranFor is a Container whose every run leaves one file and took elapsed.
type ranFor time.Duration

func (ranFor) Name() string    { return "ran-for" }
func (ranFor) Sandboxed() bool { return true }
func (r ranFor) RunContainer(context.Context, ContainerTask) (ContainerResult, error) {
	return ContainerResult{ExitCode: 3, Outputs: []jobio.Output{{Path: "out", Data: []byte("x")}}, Elapsed: time.Duration(r)}, nil
}

func TestNewContainerTaskLoadsTheImageArchiveInput(t *testing.T) {
	spec := api.JobSpec{
		Workload:  api.Workload{Kind: api.WorkloadContainer, Image: "wc:1", ImageArchive: "image.tar", Command: []string{"/wc"}},
		Inputs:    []api.Input{{Name: "image.tar"}, {Name: "text"}},
		Resources: api.Resources{GPUs: 2, CPUMilli: 500, MemoryMiB: 64},
	}
	task := NewContainerTask("job-1", "alice", spec, time.Minute, [][]byte{[]byte("tarball"), []byte("words")})
	if string(task.ImageArchive) != "tarball" || len(task.Inputs) != 1 || task.Inputs[0].Path != "text" || string(task.Inputs[0].Data) != "words" {
		t.Fatalf("image archive %q, inputs %+v: want the archive loaded, the text a file", task.ImageArchive, task.Inputs)
	}
	if task.JobID != "job-1" || task.Consumer != "alice" || task.GPUs != 2 || task.CPUMilli != 500 || task.MemoryMiB != 64 || task.Timeout != time.Minute {
		t.Fatalf("task %+v", task)
	}
}

// The committed output is the canonical archive, exit code included; the time is billed
// on every slot the job held, at least 1 ms.
func TestRunContainerJobPacksTheArchiveAndBillsEverySlot(t *testing.T) {
	want, _ := api.PackOutput(api.ContainerOutput{ExitCode: 3, Files: []api.OutputFile{{Path: "out", Data: []byte("x")}}})
	for _, tc := range []struct {
		elapsed time.Duration
		gpus    int
		ms      uint64
	}{{1500 * time.Millisecond, 0, 1500}, {1500 * time.Millisecond, 2, 3000}, {0, 0, 1}, {0, 4, 4}} {
		out, exit, err := RunContainerJob(context.Background(), ranFor(tc.elapsed), ContainerTask{GPUs: tc.gpus})
		if err != nil || exit != 3 || string(out.Output) != string(want) || out.GPUMillis != tc.ms {
			t.Errorf("%v on %d GPUs: exit %d, %d ms, %v; want exit 3, %d ms and the canonical archive", tc.elapsed, tc.gpus, exit, out.GPUMillis, err, tc.ms)
		}
	}
}
