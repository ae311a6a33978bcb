package docker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

var (
	// ErrEngineUnreachable is returned by New when no Docker engine answers.
	ErrEngineUnreachable = errors.New("docker engine unreachable")
	// ErrRefused is returned for a job the runtime's policy does not allow: a user it may
	// not run as, limits above the operator's ceilings, an environment that names GPUs, an
	// image that declares volumes, more GPUs than it has.
	ErrRefused = errors.New("job refused")
	// ErrImageRejected is returned for an image that is missing, or a tarball whose digest,
	// manifest or loaded id is not what the job names.
	ErrImageRejected = errors.New("image rejected")
	// ErrGPUsBusy is returned when the GPUs a job asks for are held by other jobs.
	ErrGPUsBusy = errors.New("GPUs busy")
	// ErrTimedOut is returned when the job ran past its timeout or ctx's deadline; the
	// container was killed and removed. The same value as jobio.ErrTimedOut.
	ErrTimedOut = jobio.ErrTimedOut
	// ErrOOMKilled is returned when the kernel killed the job at its memory limit.
	ErrOOMKilled = errors.New("killed at its memory limit (OOM)")
	// ErrExitStatus is wrapped by *ExitError, for a job that exited with a non-zero code.
	ErrExitStatus = jobio.ErrExitStatus
)

// ExitError reports a job that exited with a non-zero code, with the end of its logs.
type ExitError = jobio.ExitError

// Limits bound one job. In Options.Defaults a zero field means the built-in default; in a
// Job it means the operator's default; in Options.Max it means the built-in ceiling.
type Limits struct {
	MemoryBytes int64         // memory and memory+swap (so no swap); default 2 GiB
	NanoCPUs    int64         // CPU time in 1e-9 CPUs; default 1 CPU
	Pids        int64         // processes and threads; default 256
	TmpBytes    int64         // size of the /tmp tmpfs and of /dev/shm; default 64 MiB
	OutputFiles int           // files under /outputs; default 1024
	OutputBytes int64         // bytes under /outputs; default 256 MiB
	LogBytes    int64         // log bytes passed to Job.Logs; default 1 MiB
	Timeout     time.Duration // wall clock from start; default 10 minutes
}

var builtinDefaults = Limits{
	MemoryBytes: 2 << 30, NanoCPUs: 1e9, Pids: 256, TmpBytes: 64 << 20,
	OutputFiles: jobio.DefaultMaxFiles, OutputBytes: jobio.DefaultMaxBytes, LogBytes: 1 << 20,
	Timeout: 10 * time.Minute,
}

var builtinMax = Limits{
	MemoryBytes: 1 << 40, NanoCPUs: 1024e9, Pids: 1 << 15, TmpBytes: 16 << 30,
	OutputFiles: 1 << 16, OutputBytes: 16 << 30, LogBytes: 64 << 20, Timeout: 7 * 24 * time.Hour,
}

// unbounded is the ceiling that only catches negative limits.
var unbounded = Limits{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt, math.MaxInt64, math.MaxInt64, math.MaxInt64}

// merge fills l's zero fields from d.
func (l Limits) merge(d Limits) Limits {
	pick := func(a, b int64) int64 {
		if a > 0 {
			return a
		}
		return b
	}
	return Limits{
		MemoryBytes: pick(l.MemoryBytes, d.MemoryBytes),
		NanoCPUs:    pick(l.NanoCPUs, d.NanoCPUs),
		Pids:        pick(l.Pids, d.Pids),
		TmpBytes:    pick(l.TmpBytes, d.TmpBytes),
		OutputFiles: int(pick(int64(l.OutputFiles), int64(d.OutputFiles))),
		OutputBytes: pick(l.OutputBytes, d.OutputBytes),
		LogBytes:    pick(l.LogBytes, d.LogBytes),
		Timeout:     time.Duration(pick(int64(l.Timeout), int64(d.Timeout))),
	}
}

// exceeds names the first field of l above ceiling c, or "".
func (l Limits) exceeds(c Limits) string {
	for _, f := range []struct {
		name   string
		v, max int64
	}{
		{"memory", l.MemoryBytes, c.MemoryBytes}, {"cpus", l.NanoCPUs, c.NanoCPUs}, {"pids", l.Pids, c.Pids},
		{"tmp", l.TmpBytes, c.TmpBytes}, {"output files", int64(l.OutputFiles), int64(c.OutputFiles)},
		{"output bytes", l.OutputBytes, c.OutputBytes}, {"log bytes", l.LogBytes, c.LogBytes},
		{"timeout", int64(l.Timeout), int64(c.Timeout)},
	} {
		if f.v < 0 || f.v > f.max {
			return fmt.Sprintf("%s %d (ceiling %d)", f.name, f.v, f.max)
		}
	}
	return ""
}

// Options configure a Runtime.
type Options struct {
	// Host is the engine's socket, unix:///path; empty means $DOCKER_HOST, else DefaultHost.
	Host string
	// Instance names this runtime in the LabelRuntime label. Runtimes sharing an engine
	// (the devnet runs several nodes on one) must use distinct names: New removes every
	// container carrying its own. Default "default".
	Instance string
	// WorkDir holds each job's inputs and outputs while it runs. The engine must see it at
	// the same path (it is bind-mounted). Default: <os.TempDir>/omnisync-docker-<Instance>.
	WorkDir string
	// GPUs are the device ids (indices or UUIDs, as nvidia-smi prints them) this runtime may
	// hand to jobs, each to one job at a time.
	GPUs []string
	// DefaultUser is the uid:gid jobs run as; default 65534:65534 (nobody). Never root.
	DefaultUser string
	// AllowedUsers are the other numeric uid:gid pairs a job may ask for. Listing one with
	// uid or gid 0 is the only way a job runs as root (still without capabilities).
	AllowedUsers []string
	// Defaults fill the limits a job leaves zero; Max are ceilings a job may not exceed.
	Defaults, Max Limits
	// MaxArchiveBytes caps an image tarball; default 32 GiB.
	MaxArchiveBytes int64
	// Now is the clock for Result.Elapsed; nil means time.Now.
	Now func() time.Time
}

// Image names the image a job runs. Set Ref, ID or both for an image already on the node;
// add Archive and ArchiveSHA256 to load it from a `docker save` tarball first.
type Image struct {
	Ref           string // name:tag; when an archive is given, the only tag it may carry
	ID            string // sha256:<hex>, the image id the job must run; strongly advised
	Archive       string // path on this host of a `docker save` tarball
	ArchiveSHA256 string // lowercase hex sha256 of the whole tarball, checked before loading
}

// Job is one container job.
type Job struct {
	ID         string
	Consumer   string // the consumer's address, recorded on the container
	Image      Image
	Command    []string // replaces the image's entrypoint and command when non-empty
	Env        []string // KEY=VALUE; NVIDIA_* is reserved for the runtime
	User       string   // uid:gid; empty means Options.DefaultUser
	Inputs     []jobio.File
	GPUs       int      // how many GPUs; or
	GPUDevices []string // exactly these (must be among Options.GPUs)
	Limits     Limits
	Logs       io.Writer // receives stdout and stderr as they come, up to Limits.LogBytes
}

// Result is what a finished job left.
type Result struct {
	ImageID    string
	GPUDevices []string
	ExitCode   int
	Elapsed    time.Duration
	Outputs    []jobio.Output // sorted by path, each with its sha256
	LogTail    []byte         // the last few KiB of stdout and stderr
}

// Runtime runs container jobs on one Docker engine. It is safe for concurrent use.
type Runtime struct {
	c        *client
	instance string
	workDir  string
	user     string
	users    []string
	defaults Limits
	max      Limits
	maxArch  int64
	gpus     *gpuPool
	now      func() time.Time
}

// New connects to the engine, checks the options, and removes the containers and job
// directories a previous runtime of the same instance left behind.
func New(ctx context.Context, o Options) (*Runtime, error) {
	r := &Runtime{instance: o.Instance, workDir: o.WorkDir, user: o.DefaultUser, users: o.AllowedUsers,
		maxArch: o.MaxArchiveBytes, now: o.Now}
	if r.instance == "" {
		r.instance = "default"
	}
	if r.workDir == "" {
		r.workDir = filepath.Join(os.TempDir(), "omnisync-docker-"+r.instance)
	}
	if r.user == "" {
		r.user = "65534:65534"
	}
	if r.maxArch <= 0 {
		r.maxArch = 32 << 30
	}
	if r.now == nil {
		r.now = time.Now
	}
	if uid, gid, err := parseUser(r.user); err != nil {
		return nil, err
	} else if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("docker runtime: default user %q is root; list it in AllowedUsers instead", r.user)
	}
	for _, u := range r.users {
		if _, _, err := parseUser(u); err != nil {
			return nil, err
		}
	}
	r.max = o.Max.merge(builtinMax)
	if f := r.max.exceeds(builtinMax); f != "" {
		return nil, fmt.Errorf("docker runtime: Max %s", f)
	}
	r.defaults = o.Defaults.merge(builtinDefaults)
	r.defaults = r.defaults.clamp(r.max)
	var err error
	if r.gpus, err = newGPUPool(o.GPUs); err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	if err := os.MkdirAll(r.workDir, 0o700); err != nil {
		return nil, fmt.Errorf("docker runtime: %w", err)
	}
	if r.c, err = dial(ctx, o.Host); err != nil {
		return nil, err
	}
	if err := r.removeLeftovers(ctx); err != nil {
		r.c.close()
		return nil, err
	}
	return r, nil
}

// clamp lowers each of l's fields to at most c's.
func (l Limits) clamp(c Limits) Limits {
	return Limits{
		MemoryBytes: min(l.MemoryBytes, c.MemoryBytes), NanoCPUs: min(l.NanoCPUs, c.NanoCPUs),
		Pids: min(l.Pids, c.Pids), TmpBytes: min(l.TmpBytes, c.TmpBytes),
		OutputFiles: min(l.OutputFiles, c.OutputFiles), OutputBytes: min(l.OutputBytes, c.OutputBytes),
		LogBytes: min(l.LogBytes, c.LogBytes), Timeout: min(l.Timeout, c.Timeout),
	}
}

// Name identifies the runtime in logs and heartbeats.
func (*Runtime) Name() string { return "docker" }

// Sandboxed reports that jobs run isolated from the host.
func (*Runtime) Sandboxed() bool { return true }

// APIVersion is the Engine API version agreed with the engine, e.g. "v1.41".
func (r *Runtime) APIVersion() string { return r.c.version }

// Close releases the engine connections. Jobs still running are not stopped.
func (r *Runtime) Close() error {
	r.c.close()
	return nil
}

func (r *Runtime) removeLeftovers(ctx context.Context) error {
	ids, err := r.c.containersLabelled(ctx, LabelRuntime, r.instance)
	if err != nil {
		return fmt.Errorf("docker runtime: listing leftover containers: %w", err)
	}
	for _, id := range ids {
		if err := r.c.removeContainer(ctx, id); err != nil {
			return fmt.Errorf("docker runtime: removing leftover container %.12s: %w", id, err)
		}
	}
	dirs, err := filepath.Glob(filepath.Join(r.workDir, "job-*"))
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := jobio.RemoveAll(d); err != nil {
			return fmt.Errorf("docker runtime: removing leftover job dir: %w", err)
		}
	}
	return nil
}

// parseUser reads a numeric uid:gid.
func parseUser(u string) (uid, gid int, err error) {
	a, b, ok := strings.Cut(u, ":")
	uid, err1 := strconv.Atoi(a)
	gid, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 || strconv.Itoa(uid) != a || strconv.Itoa(gid) != b {
		return 0, 0, fmt.Errorf("%w: user %q is not a numeric uid:gid", ErrRefused, u)
	}
	return uid, gid, nil
}

// plan checks a job against the runtime's policy and returns its user and limits.
func (r *Runtime) plan(job Job) (user string, lim Limits, err error) {
	if job.ID == "" || len(job.ID) > 256 {
		return "", Limits{}, fmt.Errorf("%w: job id %q", ErrRefused, job.ID)
	}
	user = job.User
	if user == "" {
		user = r.user
	}
	if _, _, err := parseUser(user); err != nil {
		return "", Limits{}, err
	}
	if user != r.user && !slices.Contains(r.users, user) {
		return "", Limits{}, fmt.Errorf("%w: user %s is not allowed on this node", ErrRefused, user)
	}
	for _, kv := range job.Env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "" || strings.ContainsRune(kv, 0):
			return "", Limits{}, fmt.Errorf("%w: env entry %q is not KEY=VALUE", ErrRefused, kv)
		case strings.HasPrefix(k, "NVIDIA_"):
			return "", Limits{}, fmt.Errorf("%w: env %s: NVIDIA_* is set by the runtime", ErrRefused, k)
		}
	}
	for _, a := range job.Command {
		if strings.ContainsRune(a, 0) {
			return "", Limits{}, fmt.Errorf("%w: command holds a NUL byte", ErrRefused)
		}
	}
	if f := job.Limits.exceeds(unbounded); f != "" {
		return "", Limits{}, fmt.Errorf("%w: %s", ErrRefused, f)
	}
	lim = job.Limits.merge(r.defaults)
	if f := lim.exceeds(r.max); f != "" {
		return "", Limits{}, fmt.Errorf("%w: %s", ErrRefused, f)
	}
	if lim.MemoryBytes < 6<<20 {
		return "", Limits{}, fmt.Errorf("%w: memory %d is below the engine's 6 MiB minimum", ErrRefused, lim.MemoryBytes)
	}
	return user, lim, nil
}

// Run runs the job to completion and returns its outputs. ctx's cancellation or deadline,
// or the job's timeout, kills and removes the container. Errors wrap the package's
// sentinels: ErrTimedOut, ErrOOMKilled, ErrExitStatus (an *ExitError), ErrRefused,
// ErrImageRejected, ErrGPUsBusy, jobio.ErrOutputRejected, jobio.ErrOutputTooLarge.
func (r *Runtime) Run(ctx context.Context, job Job) (Result, error) {
	c, err := r.prepare(ctx, job)
	if err != nil {
		return Result{}, fmt.Errorf("job %s: %w", job.ID, err)
	}
	defer c.cleanup()
	res, err := r.execute(ctx, c)
	if err != nil {
		return res, fmt.Errorf("job %s: %w", job.ID, err)
	}
	return res, nil
}

// prepared is a created container and what must be undone for it.
type prepared struct {
	job     Job
	limits  Limits
	imageID string
	gpus    []string
	dir     string
	id      string
	cleanup func()
}

// prepare resolves the image, grants GPUs, lays out the job directory and creates the
// container, without starting it. On error it has undone what it did.
func (r *Runtime) prepare(ctx context.Context, job Job) (p *prepared, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(undo) {
				f()
			}
		}
	}()
	user, lim, err := r.plan(job)
	if err != nil {
		return nil, err
	}
	img, err := r.resolveImage(ctx, job.Image)
	if err != nil {
		return nil, err
	}
	if len(img.Config.Volumes) > 0 {
		return nil, fmt.Errorf("%w: image declares volumes %v, which would be writable outside /outputs", ErrRefused, slices.Sorted(maps.Keys(img.Config.Volumes)))
	}
	gpus, err := r.gpus.acquire(job.ID, job.GPUs, job.GPUDevices)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { r.gpus.release(gpus) })

	dir, err := r.jobDir(job, user)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = jobio.RemoveAll(dir) })

	spec := buildSpec(specInput{instance: r.instance, job: job, imageID: img.ID, user: user, limits: lim, gpus: gpus,
		inputsDir: filepath.Join(dir, "inputs"), outputsDir: filepath.Join(dir, "outputs")})
	id, err := r.c.createContainer(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("creating container: %w", err)
	}
	undo = append(undo, func() {
		// The job's ctx may be done: removal must still happen.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = r.c.removeContainer(cctx, id)
	})
	p = &prepared{job: job, limits: lim, imageID: img.ID, gpus: gpus, dir: dir, id: id}
	p.cleanup = func() {
		for _, f := range slices.Backward(undo) {
			f()
		}
	}
	return p, nil
}

// jobDir makes <workDir>/job-<hash>-<random>/{inputs,outputs}: inputs read-only, outputs
// owned by the job's user (or, when the daemon may not chown, writable by all inside a
// directory only the daemon can enter).
func (r *Runtime) jobDir(job Job, user string) (string, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	h := sha256.Sum256([]byte(job.ID))
	dir := filepath.Join(r.workDir, "job-"+hex.EncodeToString(h[:6])+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if err := jobio.WriteInputs(filepath.Join(dir, "inputs"), job.Inputs); err != nil {
		_ = jobio.RemoveAll(dir)
		return "", err
	}
	out := filepath.Join(dir, "outputs")
	if err := os.Mkdir(out, 0o700); err != nil {
		_ = jobio.RemoveAll(dir)
		return "", err
	}
	uid, gid, _ := parseUser(user)
	if err := os.Chown(out, uid, gid); err != nil {
		if err := os.Chmod(out, 0o777); err != nil {
			_ = jobio.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// execute starts the prepared container, streams its logs, watches its outputs, and waits.
func (r *Runtime) execute(ctx context.Context, p *prepared) (Result, error) {
	res := Result{ImageID: p.imageID, GPUDevices: p.gpus}
	runCtx, cancel := context.WithTimeout(ctx, p.limits.Timeout)
	defer cancel()
	bg := context.WithoutCancel(ctx) // for the calls that must outlive runCtx

	wait, err := r.c.waitContainer(runCtx, p.id)
	if err != nil {
		return res, r.stopped(ctx, runCtx, p, fmt.Errorf("waiting for container: %w", err))
	}
	start := r.now()
	if err := r.c.startContainer(runCtx, p.id); err != nil {
		return res, r.stopped(ctx, runCtx, p, fmt.Errorf("starting container: %w", err))
	}

	sink := jobio.NewLogSink(p.job.Logs, p.limits.LogBytes)
	logsCtx, stopLogs := context.WithCancel(bg)
	defer stopLogs()
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		rc, err := r.c.logs(logsCtx, p.id)
		if err != nil {
			return
		}
		defer rc.Close()
		_ = Demux(rc, sink, sink)
	}()

	outputs := filepath.Join(p.dir, "outputs")
	outLim := jobio.Limits{MaxFiles: p.limits.OutputFiles, MaxBytes: p.limits.OutputBytes}
	watchDone := make(chan struct{})
	var flood error // set by the watcher before it kills the container
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-watchDone:
				return
			case <-t.C:
				if _, _, err := jobio.Usage(outputs, outLim); errors.Is(err, jobio.ErrOutputTooLarge) {
					flood = err
					kctx, kcancel := context.WithTimeout(bg, 10*time.Second)
					_ = r.c.killContainer(kctx, p.id)
					kcancel()
					return
				}
			}
		}
	}()

	code, waitErr := wait()
	res.Elapsed = r.now().Sub(start)
	close(watchDone)
	watchWG.Wait()
	if runCtx.Err() != nil {
		kctx, kcancel := context.WithTimeout(bg, 10*time.Second)
		_ = r.c.killContainer(kctx, p.id)
		kcancel()
	}
	// The log stream ends when the container stops; give it a moment to drain.
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
		stopLogs()
		<-logsDone
	}
	res.LogTail = sink.Tail()

	if err := r.stopped(ctx, runCtx, p, nil); err != nil {
		return res, err
	}
	if flood != nil {
		return res, flood
	}
	if waitErr != nil {
		return res, fmt.Errorf("waiting for container: %w", waitErr)
	}
	ictx, icancel := context.WithTimeout(bg, 10*time.Second)
	st, err := r.c.inspectContainer(ictx, p.id)
	icancel()
	if err != nil {
		return res, fmt.Errorf("inspecting container: %w", err)
	}
	res.ExitCode = code
	if st.State.OOMKilled {
		return res, fmt.Errorf("%w (memory limit %d bytes, exit code %d)", ErrOOMKilled, p.limits.MemoryBytes, code)
	}
	// Outputs are collected for a non-zero exit too: the job ran to its end, and what it
	// left (a partial result, an error report) is the consumer's.
	if res.Outputs, err = jobio.Collect(outputs, outLim); err != nil {
		return res, err
	}
	if code != 0 {
		return res, &ExitError{JobID: p.job.ID, Code: code, LogTail: string(res.LogTail)}
	}
	return res, nil
}

// stopped turns a done runCtx into the job's error, killing the container first: the
// job's own timeout or ctx's deadline is ErrTimedOut, ctx's cancellation is
// context.Canceled. With runCtx live it returns cause.
func (r *Runtime) stopped(ctx, runCtx context.Context, p *prepared, cause error) error {
	if runCtx.Err() == nil {
		return cause
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = r.c.killContainer(kctx, p.id)
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("canceled: %w", ctx.Err())
	}
	return fmt.Errorf("%w (job timeout %v): %w", ErrTimedOut, p.limits.Timeout, context.DeadlineExceeded)
}
