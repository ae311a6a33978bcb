package process

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

var (
	// ErrDisabled is returned when the runtime was not enabled by the operator.
	ErrDisabled = errors.New("process runtime disabled: it does not sandbox the host; an operator must enable it and list the consumers it trusts")
	// ErrConsumerNotAllowed is returned for a job from a consumer the operator did not list.
	ErrConsumerNotAllowed = errors.New("consumer not allowed on the process runtime")
	// ErrRefused is returned for a malformed job: no command, a bad environment entry.
	ErrRefused = errors.New("job refused")
	// ErrTimedOut is the same value as jobio.ErrTimedOut.
	ErrTimedOut = jobio.ErrTimedOut
	// ErrExitStatus is the same value as jobio.ErrExitStatus, wrapped by *ExitError.
	ErrExitStatus = jobio.ErrExitStatus
)

// ExitError reports a non-zero exit or a kill by signal, with the end of the logs.
type ExitError = jobio.ExitError

// Limits bound one job; each is applied with setrlimit to the command and everything it
// starts. A zero field takes the operator's value; a job may ask for less, never more.
type Limits struct {
	CPUSeconds   uint64 // RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second later; default 3600
	MemoryBytes  uint64 // RLIMIT_DATA: heap and private writable mappings (not CUDA's address reservations); default 8 GiB
	AddressSpace uint64 // RLIMIT_AS, all mappings; default unset, since CUDA reserves far more than it uses
	OpenFiles    uint64 // RLIMIT_NOFILE; default 1024
	Processes    uint64 // RLIMIT_NPROC; counts all processes of the daemon's user, and root ignores it; default unset
	FileBytes    uint64 // RLIMIT_FSIZE, the size of any one file written; default OutputBytes
	OutputFiles  int    // files left in outputs/; default 1024
	OutputBytes  int64  // bytes left in outputs/; default 256 MiB
	LogBytes     int64  // bytes of stdout and stderr passed to Job.Logs; default 1 MiB
	Timeout      time.Duration
}

var builtinLimits = Limits{
	CPUSeconds: 3600, MemoryBytes: 8 << 30, OpenFiles: 1024,
	OutputFiles: jobio.DefaultMaxFiles, OutputBytes: jobio.DefaultMaxBytes, LogBytes: 1 << 20,
	Timeout: time.Hour,
}

// within takes each of l's fields where set and not above c's, else c's.
func (l Limits) within(c Limits) Limits {
	pick := func(a, b uint64) uint64 {
		if a > 0 && (b == 0 || a < b) {
			return a
		}
		return b
	}
	out := Limits{
		CPUSeconds:   pick(l.CPUSeconds, c.CPUSeconds),
		MemoryBytes:  pick(l.MemoryBytes, c.MemoryBytes),
		AddressSpace: pick(l.AddressSpace, c.AddressSpace),
		OpenFiles:    pick(l.OpenFiles, c.OpenFiles),
		Processes:    pick(l.Processes, c.Processes),
		FileBytes:    pick(l.FileBytes, c.FileBytes),
		OutputFiles:  int(pick(uint64(max(l.OutputFiles, 0)), uint64(max(c.OutputFiles, 0)))),
		OutputBytes:  int64(pick(uint64(max(l.OutputBytes, 0)), uint64(max(c.OutputBytes, 0)))),
		LogBytes:     int64(pick(uint64(max(l.LogBytes, 0)), uint64(max(c.LogBytes, 0)))),
		Timeout:      time.Duration(pick(uint64(max(l.Timeout, 0)), uint64(max(c.Timeout, 0)))),
	}
	return out
}

// Options configure a Runtime. The zero value is a disabled runtime.
type Options struct {
	// Enabled must be set: the operator accepts that jobs run unsandboxed on this host.
	Enabled bool
	// AllowedConsumers are the consumer addresses whose jobs may run; at least one.
	AllowedConsumers []string
	// WorkDir holds each job's scratch directory; default <os.TempDir>/omnisync-process.
	WorkDir string
	// Path is the PATH jobs get; default /usr/local/bin:/usr/bin:/bin.
	Path string
	// Limits are the operator's defaults and ceilings; zero fields take the built-in ones.
	Limits Limits
	// Now is the clock for Result.Elapsed; nil means time.Now.
	Now func() time.Time
}

// Job is one command to run.
type Job struct {
	ID       string
	Consumer string   // must be in Options.AllowedConsumers
	Command  []string // argv; argv[0] is looked up in the job's PATH
	Env      []string // KEY=VALUE, added to PATH, HOME and TMPDIR; may replace PATH only
	Inputs   []jobio.File
	Limits   Limits
	Logs     io.Writer // stdout and stderr, interleaved, up to Limits.LogBytes
}

// Result is what a finished job left.
type Result struct {
	ExitCode int
	Elapsed  time.Duration
	Outputs  []jobio.Output
	LogTail  []byte
}

// Runtime runs jobs as child processes. Safe for concurrent use.
type Runtime struct {
	enabled   bool
	consumers []string
	workDir   string
	path      string
	limits    Limits
	self      string // this binary, re-executed as the rlimit shim
	now       func() time.Time
}

// New checks the options and removes scratch directories a previous run left.
func New(o Options) (*Runtime, error) {
	if !o.Enabled {
		return nil, ErrDisabled
	}
	if len(o.AllowedConsumers) == 0 || slices.Contains(o.AllowedConsumers, "") {
		return nil, fmt.Errorf("%w: AllowedConsumers must list the trusted consumer addresses", ErrDisabled)
	}
	if err := supported(); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	r := &Runtime{enabled: true, consumers: slices.Clone(o.AllowedConsumers), workDir: o.WorkDir, path: o.Path,
		limits: o.Limits.within(builtinLimits), self: self, now: o.Now}
	if r.limits.FileBytes == 0 {
		r.limits.FileBytes = uint64(r.limits.OutputBytes)
	}
	if r.workDir == "" {
		r.workDir = filepath.Join(os.TempDir(), "omnisync-process")
	}
	if r.path == "" {
		r.path = "/usr/local/bin:/usr/bin:/bin"
	}
	if r.now == nil {
		r.now = time.Now
	}
	if err := os.MkdirAll(r.workDir, 0o700); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	left, _ := filepath.Glob(filepath.Join(r.workDir, "job-*"))
	for _, d := range left {
		_ = jobio.RemoveAll(d)
	}
	return r, nil
}

// Name identifies the runtime in logs and heartbeats.
func (*Runtime) Name() string { return "process" }

// Sandboxed is false: node status must say that this host runs jobs unsandboxed.
func (*Runtime) Sandboxed() bool { return false }

// Run runs the job's command to completion and returns its outputs. ctx's cancellation or
// deadline, or the job's timeout, kills the command's whole process group.
func (r *Runtime) Run(ctx context.Context, job Job) (Result, error) {
	if r == nil || !r.enabled {
		return Result{}, fmt.Errorf("job %s: %w", job.ID, ErrDisabled)
	}
	if !slices.Contains(r.consumers, job.Consumer) {
		return Result{}, fmt.Errorf("job %s: %w: %q", job.ID, ErrConsumerNotAllowed, job.Consumer)
	}
	res, err := r.run(ctx, job)
	if err != nil {
		return res, fmt.Errorf("job %s: %w", job.ID, err)
	}
	return res, nil
}

// maxEnvBytes bounds the environment the shim reads from its pipe.
const maxEnvBytes = 1 << 20

func (r *Runtime) env(job Job, scratch string) ([]string, error) {
	env := []string{"PATH=" + r.path, "HOME=" + scratch, "TMPDIR=" + filepath.Join(scratch, "tmp")}
	for _, kv := range job.Env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "" || strings.ContainsRune(kv, 0):
			return nil, fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrRefused, kv)
		case k == "HOME" || k == "TMPDIR":
			return nil, fmt.Errorf("%w: env %s is set by the runtime", ErrRefused, k)
		case k == "PATH":
			env[0] = kv
		default:
			env = append(env, kv)
		}
	}
	if n := len(strings.Join(env, "\x00")); n > maxEnvBytes {
		return nil, fmt.Errorf("%w: environment of %d bytes (at most %d)", ErrRefused, n, maxEnvBytes)
	}
	return env, nil
}

func (r *Runtime) run(ctx context.Context, job Job) (Result, error) {
	if len(job.Command) == 0 || slices.ContainsFunc(job.Command, func(a string) bool { return strings.ContainsRune(a, 0) }) {
		return Result{}, fmt.Errorf("%w: no command, or a NUL in it", ErrRefused)
	}
	lim := job.Limits.within(r.limits)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	h := sha256.Sum256([]byte(job.ID))
	scratch := filepath.Join(r.workDir, "job-"+hex.EncodeToString(h[:6])+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(scratch, 0o700); err != nil {
		return Result{}, err
	}
	defer jobio.RemoveAll(scratch)
	env, err := r.env(job, scratch)
	if err != nil {
		return Result{}, err
	}
	if err := jobio.WriteInputs(filepath.Join(scratch, "inputs"), job.Inputs); err != nil {
		return Result{}, err
	}
	for _, d := range []string{"outputs", "tmp"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o700); err != nil {
			return Result{}, err
		}
	}

	// stdout and stderr share one pipe, read here, so that Wait returns when the command
	// exits even if something it started still holds the pipe.
	logR, logW, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	defer logR.Close()
	// The environment travels on fd 3, not in the shim's own environment, so nothing in it
	// (LD_PRELOAD, say) acts before the limits are set.
	envR, envW, err := os.Pipe()
	if err != nil {
		logW.Close()
		return Result{}, err
	}
	cmd := &exec.Cmd{
		Path:        r.self,
		Args:        append(append([]string{shimName}, shimArgs(lim)...), append([]string{"--"}, job.Command...)...),
		Env:         []string{},
		Dir:         scratch,
		Stdout:      logW,
		Stderr:      logW,
		ExtraFiles:  []*os.File{envR},
		SysProcAttr: sysProcAttr(),
	}
	start := r.now()
	err = cmd.Start()
	logW.Close()
	envR.Close()
	if err != nil {
		envW.Close()
		return Result{}, fmt.Errorf("starting %s: %w", job.Command[0], err)
	}
	go func() {
		_, _ = io.WriteString(envW, strings.Join(env, "\x00"))
		envW.Close()
	}()
	sink := jobio.NewLogSink(job.Logs, lim.LogBytes)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		_, _ = io.Copy(sink, logR)
	}()

	runCtx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-waited:
	case <-runCtx.Done():
		killGroup(cmd.Process.Pid)
		waitErr = <-waited
	}
	res := Result{Elapsed: r.now().Sub(start)}
	// Whatever the command left running in its group goes with it.
	killGroup(cmd.Process.Pid)
	select {
	case <-logsDone:
	case <-time.After(2 * time.Second): // a process that left the group holds the pipe
		logR.Close()
		<-logsDone
	}
	res.LogTail = sink.Tail()

	if runCtx.Err() != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return res, fmt.Errorf("canceled: %w", ctx.Err())
		}
		return res, fmt.Errorf("%w (job timeout %v): %w", ErrTimedOut, lim.Timeout, context.DeadlineExceeded)
	}
	res.ExitCode = cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return res, waitErr
	}
	// Outputs are collected for a non-zero exit too (not for a kill by signal): the job
	// ran to its end, and what it left is the consumer's.
	if ee == nil || ee.ProcessState.Exited() {
		if res.Outputs, err = jobio.Collect(filepath.Join(scratch, "outputs"), jobio.Limits{MaxFiles: lim.OutputFiles, MaxBytes: lim.OutputBytes}); err != nil {
			return res, err
		}
	}
	if ee != nil {
		e := &ExitError{JobID: job.ID, Code: res.ExitCode, LogTail: string(res.LogTail)}
		e.Signal, e.Reason = signalOf(ee.ProcessState, lim)
		return res, e
	}
	return res, nil
}
