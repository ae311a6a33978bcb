package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/docker"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
	"github.com/omnisync/omnisync/internal/runtime/process"
)

// ContainerTask is one container workload, its inputs already fetched and checked against
// the digests the consumer signed.
type ContainerTask struct {
	JobID    string
	Consumer string
	Image    string // name:tag
	ImageID  string // sha256:<hex>; empty runs whatever Image names on this node
	// ImageArchive is a `docker save` tarball of the image, carried as an input, or nil.
	ImageArchive []byte
	Command      []string
	Env          []string
	Inputs       []jobio.File
	GPUs         int
	CPUMilli     uint64 // 0: the runtime's default
	MemoryMiB    uint64 // 0: the runtime's default
	Timeout      time.Duration
	Logs         io.Writer // stdout and stderr as they come; may be nil
}

// ContainerResult is what a container workload left. A non-zero exit is a result, not an
// error: the job ran, and its exit code is part of its output.
type ContainerResult struct {
	ExitCode int
	Outputs  []jobio.Output
	LogTail  []byte
	Elapsed  time.Duration
}

// Container runs container workloads: the docker runtime (a hardened container per job)
// or the process runtime (a child process, for trusted consumers on hosts without Docker).
type Container interface {
	Name() string
	// Sandboxed reports whether jobs are isolated from the host; node status shows it.
	Sandboxed() bool
	RunContainer(ctx context.Context, t ContainerTask) (ContainerResult, error)
}

// Docker adapts the docker runtime to Container.
func Docker(r *docker.Runtime) Container { return dockerContainer{r} }

type dockerContainer struct{ r *docker.Runtime }

func (d dockerContainer) Name() string    { return d.r.Name() }
func (d dockerContainer) Sandboxed() bool { return d.r.Sandboxed() }

func (d dockerContainer) RunContainer(ctx context.Context, t ContainerTask) (ContainerResult, error) {
	img := docker.Image{Ref: t.Image, ID: t.ImageID}
	if t.ImageArchive != nil {
		path, sum, cleanup, err := spill(t.JobID, t.ImageArchive)
		if err != nil {
			return ContainerResult{}, err
		}
		defer cleanup()
		img.Archive, img.ArchiveSHA256 = path, sum
	}
	lim := docker.Limits{
		MemoryBytes: int64(t.MemoryMiB) << 20, NanoCPUs: int64(t.CPUMilli) * 1e6, Timeout: t.Timeout,
	}
	res, err := d.r.Run(ctx, docker.Job{
		ID: t.JobID, Consumer: t.Consumer, Image: img, Command: t.Command, Env: t.Env,
		Inputs: t.Inputs, GPUs: t.GPUs, Limits: lim, Logs: t.Logs,
	})
	return exitAsResult(ContainerResult{ExitCode: res.ExitCode, Outputs: res.Outputs, LogTail: res.LogTail, Elapsed: res.Elapsed}, err)
}

// Process adapts the process runtime to Container. It runs the task's command on the host
// and ignores its image; the host's GPUs are visible to the command as they are to the
// daemon. The operator who enabled the runtime accepted that for the consumers it lists.
func Process(r *process.Runtime) Container { return processContainer{r} }

type processContainer struct{ r *process.Runtime }

func (p processContainer) Name() string    { return p.r.Name() }
func (p processContainer) Sandboxed() bool { return p.r.Sandboxed() }

func (p processContainer) RunContainer(ctx context.Context, t ContainerTask) (ContainerResult, error) {
	lim := process.Limits{MemoryBytes: t.MemoryMiB << 20, Timeout: t.Timeout}
	res, err := p.r.Run(ctx, process.Job{
		ID: t.JobID, Consumer: t.Consumer, Command: t.Command, Env: t.Env, Inputs: t.Inputs, Limits: lim, Logs: t.Logs,
	})
	return exitAsResult(ContainerResult{ExitCode: res.ExitCode, Outputs: res.Outputs, LogTail: res.LogTail, Elapsed: res.Elapsed}, err)
}

// exitAsResult turns a non-zero exit, which both runtimes report as an *jobio.ExitError,
// into a result with its outputs: the job ran to its end. Every other error stands.
func exitAsResult(res ContainerResult, err error) (ContainerResult, error) {
	var exit *jobio.ExitError
	if errors.As(err, &exit) && exit.Signal == "" {
		res.ExitCode = exit.Code
		return res, nil
	}
	return res, err
}

// spill writes an image tarball to a private temporary file for the engine to load.
func spill(jobID string, data []byte) (path, sha string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "omnisync-image-"+jobID+"-")
	if err != nil {
		return "", "", nil, err
	}
	path = filepath.Join(dir, "image.tar")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	return path, sha256Hex(data), func() { os.RemoveAll(dir) }, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
