package docker

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBuildSpecIsHardened(t *testing.T) {
	lim := builtinDefaults
	s := buildSpec(specInput{instance: "n1", job: Job{ID: "j", Consumer: "c", Command: []string{"/bin/run", "-x"}, Env: []string{"A=1"}},
		imageID: "sha256:abc", user: "65534:65534", limits: lim, inputsDir: "/w/in", outputsDir: "/w/out"})
	h := s.HostConfig
	checks := []struct {
		what string
		ok   bool
	}{
		{"image by id", s.Image == "sha256:abc"},
		{"command replaces entrypoint and cmd", slices.Equal(s.Entrypoint, []string{"/bin/run"}) && slices.Equal(s.Cmd, []string{"-x"})},
		{"no network", h.NetworkMode == "none" && s.NetworkDisabled},
		{"read-only root", h.ReadonlyRootfs},
		{"all capabilities dropped", slices.Equal(h.CapDrop, []string{"ALL"}) && !h.Privileged},
		{"no new privileges", slices.Equal(h.SecurityOpt, []string{"no-new-privileges:true"})},
		{"non-root user", s.User == "65534:65534"},
		{"pids limit", h.PidsLimit == lim.Pids && h.PidsLimit > 0},
		{"memory without swap", h.Memory == lim.MemoryBytes && h.MemorySwap == h.Memory},
		{"cpu limit", h.NanoCPUs == lim.NanoCPUs},
		{"small noexec /tmp", h.Tmpfs["/tmp"] == "rw,noexec,nosuid,nodev,size=67108864"},
		{"inputs read-only", h.Mounts[0] == mount{Type: "bind", Source: "/w/in", Target: "/inputs", ReadOnly: true, BindOptions: struct{ Propagation string }{"rprivate"}}},
		{"one writable outputs", h.Mounts[1].Target == "/outputs" && !h.Mounts[1].ReadOnly && len(h.Mounts) == 2},
		{"no GPU unless asked", len(h.DeviceRequests) == 0 && slices.Contains(s.Env, "NVIDIA_VISIBLE_DEVICES=void")},
		{"private cgroup and ipc namespaces", h.CgroupnsMode == "private" && h.IpcMode == "private"},
		{"labels", s.Labels[LabelRuntime] == "n1" && s.Labels[LabelJob] == "j" && s.Labels[LabelConsumer] == "c"},
		{"no healthcheck exec", slices.Equal(s.Healthcheck.Test, []string{"NONE"})},
		{"no restart", h.RestartPolicy.Name == "no"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: spec %+v", c.what, s)
		}
	}
}

func TestPlanRefusesWhatPolicyForbids(t *testing.T) {
	r := &Runtime{user: "65534:65534", users: []string{"1000:1000"}, defaults: builtinDefaults, max: builtinDefaults}
	ok := Job{ID: "j"}
	for _, tc := range []struct {
		name string
		edit func(*Job)
	}{
		{"root", func(j *Job) { j.User = "0:0" }},
		{"unlisted user", func(j *Job) { j.User = "1001:1001" }},
		{"named user", func(j *Job) { j.User = "nobody" }},
		{"GPU env", func(j *Job) { j.Env = []string{"NVIDIA_VISIBLE_DEVICES=all"} }},
		{"bad env", func(j *Job) { j.Env = []string{"NOEQUALS"} }},
		{"memory over ceiling", func(j *Job) { j.Limits.MemoryBytes = builtinDefaults.MemoryBytes + 1 }},
		{"timeout over ceiling", func(j *Job) { j.Limits.Timeout = time.Hour }},
		{"negative pids", func(j *Job) { j.Limits.Pids = -1 }},
		{"no id", func(j *Job) { j.ID = "" }},
	} {
		j := ok
		tc.edit(&j)
		if _, _, err := r.plan(j); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: err = %v, want ErrRefused", tc.name, err)
		}
	}
	if u, lim, err := r.plan(Job{ID: "j", User: "1000:1000"}); err != nil || u != "1000:1000" || lim != builtinDefaults {
		t.Errorf("allowed user: %q %+v %v", u, lim, err)
	}
}

func TestCheckRef(t *testing.T) {
	for _, ref := range []string{"pytorch/pytorch:2.5", "sha256:" + strings.Repeat("a", 64), "reg.example:5000/a/b@sha256:00"} {
		if err := checkRef(ref); err != nil {
			t.Errorf("%q: %v", ref, err)
		}
	}
	for _, ref := range []string{"", "../containers/x", "a//b", "/a", "a b", "a?x=1", "a#b", "a%2f"} {
		if err := checkRef(ref); err == nil {
			t.Errorf("%q accepted", ref)
		}
	}
}

func TestChooseVersion(t *testing.T) {
	for _, tc := range []struct{ max, min, want string }{
		{"1.41", "1.12", "1.41"}, {"1.47", "1.24", "1.41"}, {"1.51", "1.44", "1.44"}, {"1.40", "1.12", ""},
	} {
		got, err := chooseVersion(tc.max, tc.min)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("engine %s..%s: %q %v, want %q", tc.min, tc.max, got, err, tc.want)
		}
	}
}

func TestGPUPoolNeverSharesADevice(t *testing.T) {
	p, err := newGPUPool([]string{"0", "1", "2", "3"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				got, err := p.acquire("job", 1+(w+i)%3, nil)
				if errors.Is(err, ErrGPUsBusy) {
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range got {
					if held[d] {
						t.Errorf("GPU %s handed out twice", d)
					}
					held[d] = true
				}
				mu.Unlock()
				mu.Lock()
				for _, d := range got {
					delete(held, d)
				}
				mu.Unlock()
				p.release(got)
			}
		}()
	}
	wg.Wait()
	if _, err := p.acquire("j", 5, nil); !errors.Is(err, ErrRefused) {
		t.Errorf("more GPUs than configured: %v", err)
	}
	if _, err := p.acquire("j", 2, []string{"0"}); !errors.Is(err, ErrRefused) {
		t.Errorf("count and ids disagree: %v", err)
	}
	if _, err := newGPUPool([]string{"0", "0"}); err == nil {
		t.Error("a device listed twice was accepted")
	}
}
