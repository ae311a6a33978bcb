package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

const trusted = "TrustedConsumer1111111111111111111111111111"

func newTestRuntime(t *testing.T, lim Limits) *Runtime {
	t.Helper()
	r, err := New(Options{Enabled: true, AllowedConsumers: []string{trusted}, WorkDir: t.TempDir(), Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// syncBuffer is a bytes.Buffer safe to share with the log goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusedUnlessEnabledForTheConsumer(t *testing.T) {
	if _, err := New(Options{AllowedConsumers: []string{trusted}}); !errors.Is(err, ErrDisabled) {
		t.Errorf("not enabled: err = %v, want ErrDisabled", err)
	}
	if _, err := New(Options{Enabled: true}); !errors.Is(err, ErrDisabled) {
		t.Errorf("enabled for no consumer: err = %v, want ErrDisabled", err)
	}
	var zero *Runtime
	if _, err := zero.Run(context.Background(), Job{ID: "j", Consumer: trusted, Command: []string{"true"}}); !errors.Is(err, ErrDisabled) {
		t.Errorf("nil runtime: err = %v, want ErrDisabled", err)
	}
	if _, err := (&Runtime{}).Run(context.Background(), Job{ID: "j", Consumer: trusted, Command: []string{"true"}}); !errors.Is(err, ErrDisabled) {
		t.Errorf("zero runtime: err = %v, want ErrDisabled", err)
	}
	r := newTestRuntime(t, Limits{})
	marker := filepath.Join(t.TempDir(), "ran")
	_, err := r.Run(context.Background(), Job{ID: "j", Consumer: "SomeoneElse", Command: []string{"touch", marker}})
	if !errors.Is(err, ErrConsumerNotAllowed) || !strings.Contains(err.Error(), "SomeoneElse") {
		t.Errorf("untrusted consumer: err = %v, want ErrConsumerNotAllowed naming it", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the untrusted consumer's command ran")
	}
	if r.Sandboxed() || r.Name() != "process" {
		t.Error("the process runtime must say it is not sandboxed")
	}
}

func TestRunReturnsOutputs(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Limits{})
	var logs syncBuffer
	res, err := r.Run(context.Background(), Job{ID: "upper", Consumer: trusted,
		Command: []string{"sh", "-c", `tr a-z A-Z < inputs/d/in.txt > outputs/out.txt && echo "home=$HOME pwd=$(pwd)" && echo oops >&2`},
		Inputs:  []jobio.File{{Path: "d/in.txt", Data: []byte("hello")}},
		Logs:    &logs,
	})
	if err != nil {
		t.Fatalf("%v\nlogs: %s", err, logs.String())
	}
	sum := sha256.Sum256([]byte("HELLO"))
	if len(res.Outputs) != 1 || string(res.Outputs[0].Data) != "HELLO" || res.Outputs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("outputs %+v", res.Outputs)
	}
	m := regexp.MustCompile(`home=(\S+) pwd=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil || m[1] != m[2] || !strings.HasPrefix(m[1], r.workDir) || !strings.Contains(logs.String(), "oops") {
		t.Errorf("logs %q: want HOME = the scratch dir under %s, and stderr", logs.String(), r.workDir)
	}
	if left, _ := filepath.Glob(filepath.Join(r.workDir, "job-*")); len(left) > 0 {
		t.Errorf("scratch left behind: %v", left)
	}
}

func TestEnvironmentIsScrubbed(t *testing.T) {
	t.Setenv("OMNISYNC_PARENT_SECRET", "must-not-leak")
	r := newTestRuntime(t, Limits{})
	var logs syncBuffer
	if _, err := r.Run(context.Background(), Job{ID: "env", Consumer: trusted, Command: []string{"env"},
		Env: []string{"GREETING=hi"}, Logs: &logs}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		k, _, _ := strings.Cut(line, "=")
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"GREETING", "HOME", "PATH", "TMPDIR"}; !slices.Equal(keys, want) {
		t.Errorf("the job saw %v, want exactly %v:\n%s", keys, want, logs.String())
	}
	if _, err := r.Run(context.Background(), Job{ID: "env", Consumer: trusted, Command: []string{"env"}, Env: []string{"HOME=/root"}}); !errors.Is(err, ErrRefused) {
		t.Errorf("a job setting HOME: err = %v, want ErrRefused", err)
	}
}

// TestTimeoutKillsTheProcessGroup runs a shell that leaves a sleeping grandchild and
// sleeps itself; the timeout must kill both.
func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Limits{Timeout: time.Second})
	var logs syncBuffer
	start := time.Now()
	_, err := r.Run(context.Background(), Job{ID: "sleepy", Consumer: trusted,
		Command: []string{"sh", "-c", "sleep 300 & echo grandchild=$!; sleep 300"}, Logs: &logs})
	if !errors.Is(err, ErrTimedOut) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want ErrTimedOut", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	m := regexp.MustCompile(`grandchild=(\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no grandchild pid in logs %q", logs.String())
	}
	pid, _ := strconv.Atoi(m[1])
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still running after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	if _, err := r.Run(ctx, Job{ID: "canceled", Consumer: trusted, Command: []string{"sleep", "300"}}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimedOut) {
		t.Errorf("canceled: err = %v, want context.Canceled", err)
	}
}

// alive reports a process that exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z")
}

func TestLimitsAreApplied(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Limits{CPUSeconds: 7, MemoryBytes: 64 << 20, OpenFiles: 99, FileBytes: 1 << 20})
	var logs syncBuffer
	if _, err := r.Run(context.Background(), Job{ID: "ulimit", Consumer: trusted,
		Command: []string{"sh", "-c", "ulimit -t; ulimit -d; ulimit -n; ulimit -f; ulimit -c"}, Logs: &logs}); err != nil {
		t.Fatal(err)
	}
	// dash prints seconds, KiB, count, 512-byte blocks, blocks.
	if got, want := strings.Fields(logs.String()), []string{"7", "65536", "99", "2048", "0"}; !slices.Equal(got, want) {
		t.Errorf("limits seen by the job %v, want %v", got, want)
	}
	if _, err := r.Run(context.Background(), Job{ID: "more", Consumer: trusted, Command: []string{"true"},
		Limits: Limits{OpenFiles: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	if got := (Limits{OpenFiles: 1 << 20, CPUSeconds: 3}).within(r.limits); got.OpenFiles != 99 || got.CPUSeconds != 3 {
		t.Errorf("a job may lower a limit, never raise it: %+v", got)
	}
}

var allocBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "omnisync-alloc")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "alloc")
	cmd := exec.Command("go", "build", "-o", bin, "./testdata/alloc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New(string(out))
	}
	return bin, nil
})

// TestMemoryLimitMakesAllocationFail maps 256 MiB under a 64 MiB RLIMIT_DATA (refused),
// and under none (fine), with a helper built without the race detector, whose shadow
// memory would itself exceed the limit.
func TestMemoryLimitMakesAllocationFail(t *testing.T) {
	t.Parallel()
	bin, err := allocBin()
	if err != nil {
		t.Fatalf("building the alloc helper: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	r := newTestRuntime(t, Limits{MemoryBytes: 64 << 20})
	_, err = r.Run(context.Background(), Job{ID: "alloc", Consumer: trusted, Command: []string{bin, "256"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(ee.LogTail, "cannot allocate memory") {
		t.Fatalf("256 MiB under a 64 MiB limit: err = %v, want exit 3 saying cannot allocate memory", err)
	}
	roomy := newTestRuntime(t, Limits{MemoryBytes: 1 << 30})
	if _, err := roomy.Run(context.Background(), Job{ID: "alloc", Consumer: trusted, Command: []string{bin, "256"}}); err != nil {
		t.Errorf("256 MiB under a 1 GiB limit: %v", err)
	}
}

func TestNonZeroExitAndMissingCommand(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Limits{})
	_, err := r.Run(context.Background(), Job{ID: "exit", Consumer: trusted, Command: []string{"sh", "-c", "echo bye; exit 4"}})
	var ee *ExitError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExitStatus) || ee.Code != 4 || !strings.Contains(ee.LogTail, "bye") {
		t.Errorf("err = %v, want exit code 4 with its log", err)
	}
	_, err = r.Run(context.Background(), Job{ID: "missing", Consumer: trusted, Command: []string{"no-such-command-omnisync"}})
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(ee.LogTail, "not found") {
		t.Errorf("missing command: err = %v, want 127 saying not found", err)
	}
	_, err = r.Run(context.Background(), Job{ID: "xcpu", Consumer: trusted, Command: []string{"sh", "-c", "while :; do :; done"}, Limits: Limits{CPUSeconds: 1}})
	if !errors.As(err, &ee) || ee.Signal == "" || !strings.Contains(err.Error(), "CPU time limit") {
		t.Errorf("CPU hog: err = %v, want killed at the CPU time limit", err)
	}
}
