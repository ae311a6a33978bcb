package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

// syncBuffer is a bytes.Buffer safe for the log goroutine and the test to share.
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

func TestRunReturnsOutputsWithTheirDigests(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	var logs syncBuffer
	res, err := r.Run(context.Background(), Job{
		ID: "outputs", Consumer: "consumer-a", Image: Image{Ref: images["worker"]},
		Env:    []string{"GREETING=hello from the job"},
		Inputs: []jobio.File{{Path: "a.txt", Data: []byte("abcdef")}, {Path: "dir/b.bin", Data: []byte{1, 2, 3}}},
		Logs:   &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt.rev": "fedcba", "dir_b.bin.rev": "\x03\x02\x01", "sub/env.txt": "hello from the job"}
	if len(res.Outputs) != len(want) {
		t.Fatalf("outputs %+v, want %v", res.Outputs, want)
	}
	for _, o := range res.Outputs {
		sum := sha256.Sum256([]byte(want[o.Path]))
		if string(o.Data) != want[o.Path] || o.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("output %s = %q (sha256 %s), want %q (%x)", o.Path, o.Data, o.SHA256, want[o.Path], sum)
		}
	}
	for _, line := range []string{"worker: starting", "worker: a line on stderr", "worker: done, exiting 0"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("logs lack %q:\n%s", line, logs.String())
		}
	}
	if res.ExitCode != 0 || !strings.HasPrefix(res.ImageID, "sha256:") {
		t.Errorf("result %+v", res)
	}
	if left := containersOf(t, r); len(left) > 0 {
		t.Errorf("containers left after the job: %v", left)
	}
	if dirs, _ := filepath.Glob(filepath.Join(r.workDir, "job-*")); len(dirs) > 0 {
		t.Errorf("job directories left: %v", dirs)
	}
}

// report mirrors testdata/prober's output.
type report struct {
	UID, GID, EUID int
	Status         map[string]string
	Interfaces     []string
	Dial           map[string]string
	Read           map[string]string
	Write          map[string]string
	ExecFromTmp    string
	Setuid0        string
	Mount          string
}

// TestContainerIsConfined runs a prober that tries what a hostile job would: reach the
// network (a listener on every host address), read a host file, write outside /outputs,
// exec from /tmp, regain privileges.
func TestContainerIsConfined(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})

	secret := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(secret, []byte("the host's"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	var dial []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			dial = append(dial, net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port)))
		}
	}

	res, err := r.Run(context.Background(), Job{
		ID: "confined", Image: Image{Ref: images["prober"]},
		Env:    []string{"PROBE_DIAL=" + strings.Join(dial, ","), "PROBE_READ=" + secret},
		Inputs: []jobio.File{{Path: "in.txt", Data: []byte("x")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	for _, o := range res.Outputs {
		if o.Path == "report.json" {
			if err := json.Unmarshal(o.Data, &rep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rep.Status == nil {
		t.Fatalf("no report in outputs %+v", res.Outputs)
	}
	t.Logf("prober report: %+v", rep)

	if rep.UID != 65534 || rep.EUID != 65534 || rep.GID != 65534 {
		t.Errorf("runs as uid %d euid %d gid %d, want 65534", rep.UID, rep.EUID, rep.GID)
	}
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if rep.Status[k] != "0000000000000000" {
			t.Errorf("%s = %q, want no capabilities", k, rep.Status[k])
		}
	}
	if rep.Status["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs = %q", rep.Status["NoNewPrivs"])
	}
	if !slices.Equal(rep.Interfaces, []string{"lo"}) {
		t.Errorf("interfaces %v, want only lo", rep.Interfaces)
	}
	if len(rep.Dial) < 3 {
		t.Errorf("dialled only %v", rep.Dial)
	}
	for a, res := range rep.Dial {
		if res == "ok" {
			t.Errorf("connected to %s", a)
		}
	}
	for p, res := range rep.Read {
		if res == "ok" {
			t.Errorf("read host path %s", p)
		}
	}
	for p, res := range rep.Write {
		wantOK := p == "/outputs/probe" || p == "/tmp/probe"
		if (res == "ok") != wantOK {
			t.Errorf("write %s: %s (want it to %s)", p, res, map[bool]string{true: "succeed", false: "fail"}[wantOK])
		}
	}
	for what, res := range map[string]string{"exec from /tmp": rep.ExecFromTmp, "setuid(0)": rep.Setuid0, "mount": rep.Mount} {
		if res == "ok" {
			t.Errorf("%s succeeded", what)
		}
	}
}

func TestTimeoutAndCancellationKillTheContainer(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	for _, tc := range []struct {
		name     string
		timeout  time.Duration
		cancelIn time.Duration
		want     error
		notWant  error
	}{
		{name: "job timeout", timeout: time.Second, want: ErrTimedOut},
		{name: "ctx canceled", timeout: time.Minute, cancelIn: time.Second, want: context.Canceled, notWant: ErrTimedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelIn > 0 {
				time.AfterFunc(tc.cancelIn, cancel)
			}
			var logs syncBuffer
			start := time.Now()
			_, err := r.Run(ctx, Job{ID: "sleepy", Image: Image{Ref: images["sleeper"]}, Limits: Limits{Timeout: tc.timeout}, Logs: &logs})
			took := time.Since(start)
			if !errors.Is(err, tc.want) || tc.notWant != nil && errors.Is(err, tc.notWant) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if tc.want == ErrTimedOut && !strings.Contains(err.Error(), "timed out") {
				t.Errorf("error %q does not say timed out", err)
			}
			if took > 10*time.Second {
				t.Errorf("took %v to stop", took)
			}
			if !strings.Contains(logs.String(), "sleeping") {
				t.Errorf("logs %q", logs.String())
			}
			if left := containersOf(t, r); len(left) > 0 {
				t.Errorf("containers left: %v", left)
			}
		})
	}
}

func TestMemoryHogIsReportedOOM(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	_, err := r.Run(context.Background(), Job{ID: "hog", Image: Image{Ref: images["hog"]},
		Limits: Limits{MemoryBytes: 32 << 20, Timeout: 30 * time.Second}})
	if !errors.Is(err, ErrOOMKilled) {
		t.Fatalf("err = %v, want ErrOOMKilled", err)
	}
}

func TestNonZeroExitReportsCodeAndLogTail(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	res, err := r.Run(context.Background(), Job{ID: "exit3", Image: Image{Ref: images["worker"]}, Command: []string{"/worker", "3"}})
	var ee *ExitError
	if !errors.As(err, &ee) || !errors.Is(err, ErrExitStatus) || ee.Code != 3 || res.ExitCode != 3 {
		t.Fatalf("err = %v, want exit code 3", err)
	}
	if !strings.Contains(ee.LogTail, "worker: done, exiting 3") || !strings.Contains(err.Error(), "exiting 3") {
		t.Errorf("log tail %q", ee.LogTail)
	}
}

func TestOutputsOverTheirCapAreRefused(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	_, err := r.Run(context.Background(), Job{ID: "big", Image: Image{Ref: images["worker"]},
		Inputs: []jobio.File{{Path: "a", Data: bytes.Repeat([]byte("x"), 100)}}, Limits: Limits{OutputBytes: 50}})
	if !errors.Is(err, jobio.ErrOutputTooLarge) {
		t.Fatalf("err = %v, want ErrOutputTooLarge", err)
	}
}

// TestGPUJobGetsExactlyItsDeviceRequest creates containers without starting them (this
// machine has no GPU or NVIDIA runtime) and reads back what the engine recorded.
func TestGPUJobGetsExactlyItsDeviceRequest(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	r := newTestRuntime(t, Options{GPUs: []string{"0", "1", "2"}})
	ctx := context.Background()
	inspect := func(p *prepared) (reqs []deviceRequest, env []string) {
		t.Helper()
		st, err := r.c.inspectContainer(ctx, p.id)
		if err != nil {
			t.Fatal(err)
		}
		var hc struct{ DeviceRequests []deviceRequest }
		if err := json.Unmarshal(st.HostConfig, &hc); err != nil {
			t.Fatal(err)
		}
		var cfg struct{ Config struct{ Env []string } }
		resp, err := r.c.do(ctx, http.MethodGet, "/containers/"+p.id+"/json", nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &cfg); err != nil {
			t.Fatal(err)
		}
		return hc.DeviceRequests, cfg.Config.Env
	}
	job := func(id string, n int, ids ...string) Job {
		return Job{ID: id, Image: Image{Ref: images["worker"]}, GPUs: n, GPUDevices: ids}
	}

	two, err := r.prepare(ctx, job("two", 2))
	if err != nil {
		t.Fatal(err)
	}
	defer two.cleanup()
	reqs, env := inspect(two)
	want := []deviceRequest{{Driver: "nvidia", DeviceIDs: []string{"0", "1"}, Capabilities: [][]string{{"gpu"}}}}
	if !jsonEqual(reqs, want) || !slices.Contains(env, "NVIDIA_VISIBLE_DEVICES=0,1") {
		t.Errorf("device requests %+v env %v, want %+v", reqs, env, want)
	}

	if _, err := r.prepare(ctx, job("greedy", 2)); !errors.Is(err, ErrGPUsBusy) {
		t.Errorf("a second job asking for 2 of the 1 free GPUs: err = %v, want ErrGPUsBusy", err)
	}
	if _, err := r.prepare(ctx, job("thief", 0, "1")); !errors.Is(err, ErrGPUsBusy) {
		t.Errorf("a job naming a held GPU: err = %v, want ErrGPUsBusy", err)
	}
	if _, err := r.prepare(ctx, job("unknown", 0, "7")); !errors.Is(err, ErrRefused) {
		t.Errorf("a job naming an unconfigured GPU: err = %v, want ErrRefused", err)
	}
	named, err := r.prepare(ctx, job("named", 0, "2"))
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ = inspect(named)
	if len(reqs) != 1 || !slices.Equal(reqs[0].DeviceIDs, []string{"2"}) || reqs[0].Count != 0 {
		t.Errorf("named device request %+v, want exactly GPU 2", reqs)
	}
	named.cleanup()

	none, err := r.prepare(ctx, job("cpu-only", 0))
	if err != nil {
		t.Fatal(err)
	}
	reqs, env = inspect(none)
	none.cleanup()
	if len(reqs) != 0 || !slices.Contains(env, "NVIDIA_VISIBLE_DEVICES=void") {
		t.Errorf("a job asking for no GPU: device requests %+v env %v", reqs, env)
	}

	two.cleanup()
	if again, err := r.prepare(ctx, job("after", 3)); err != nil {
		t.Errorf("all GPUs released, a job asking for 3: %v", err)
	} else {
		again.cleanup()
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestLeftoversAreRemovedOnStart abandons a created container and a running one, as a
// crash would, and checks a new runtime of the same instance removes both, and its job
// directories, while another instance's container survives.
func TestLeftoversAreRemovedOnStart(t *testing.T) {
	t.Parallel()
	_, images := testEngine(t)
	work := t.TempDir()
	crashed := newTestRuntime(t, Options{WorkDir: work})
	bystander := newTestRuntime(t, Options{Instance: instanceName(t) + "-bystander"})
	ctx := context.Background()

	created, err := crashed.prepare(ctx, Job{ID: "created", Image: Image{Ref: images["sleeper"]}})
	if err != nil {
		t.Fatal(err)
	}
	running, err := crashed.prepare(ctx, Job{ID: "running", Image: Image{Ref: images["sleeper"]}})
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.c.startContainer(ctx, running.id); err != nil {
		t.Fatal(err)
	}
	other, err := bystander.prepare(ctx, Job{ID: "other", Image: Image{Ref: images["sleeper"]}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.cleanup()
	if n := len(containersOf(t, crashed)); n != 2 {
		t.Fatalf("%d containers before the restart, want 2", n)
	}

	restarted := newTestRuntime(t, Options{WorkDir: work})
	if left := containersOf(t, restarted); len(left) > 0 {
		t.Errorf("containers left after the restart: %v", left)
	}
	for _, id := range []string{created.id, running.id} {
		if _, err := restarted.c.inspectContainer(ctx, id); !isNotFound(err) {
			t.Errorf("container %.12s: %v, want it gone", id, err)
		}
	}
	if dirs, _ := filepath.Glob(filepath.Join(work, "job-*")); len(dirs) > 0 {
		t.Errorf("job directories left: %v", dirs)
	}
	if _, err := bystander.c.inspectContainer(ctx, other.id); err != nil {
		t.Errorf("another instance's container: %v", err)
	}
}
