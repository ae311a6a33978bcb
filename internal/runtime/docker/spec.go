package docker

import (
	"fmt"
	"strings"
)

// containerSpec is the body of POST /containers/create, limited to the fields the runtime
// sets. Every field that weakens isolation is absent, so it keeps the engine's safe zero.
type containerSpec struct {
	Image           string
	Entrypoint      []string `json:",omitempty"`
	Cmd             []string `json:",omitempty"`
	Env             []string
	User            string
	Labels          map[string]string
	NetworkDisabled bool
	Healthcheck     healthcheck
	HostConfig      hostConfig
}

type healthcheck struct{ Test []string }

type hostConfig struct {
	NetworkMode    string
	ReadonlyRootfs bool
	CapDrop        []string
	SecurityOpt    []string
	Privileged     bool
	IpcMode        string
	CgroupnsMode   string
	PidsLimit      int64
	Memory         int64
	MemorySwap     int64
	NanoCPUs       int64 `json:"NanoCpus"`
	ShmSize        int64
	Tmpfs          map[string]string
	Mounts         []mount
	DeviceRequests []deviceRequest `json:",omitempty"`
	Ulimits        []ulimit
	LogConfig      logConfig
	RestartPolicy  struct{ Name string }
}

type mount struct {
	Type        string
	Source      string
	Target      string
	ReadOnly    bool
	BindOptions struct{ Propagation string }
}

type deviceRequest struct {
	Driver       string
	Count        int
	DeviceIDs    []string
	Capabilities [][]string
}

type ulimit struct {
	Name       string
	Soft, Hard int64
}

type logConfig struct {
	Type   string
	Config map[string]string
}

// Label keys on every container the runtime creates.
const (
	LabelRuntime  = "omnisync.runtime"  // the runtime instance; New removes its leftovers
	LabelJob      = "omnisync.job"      // the job id
	LabelConsumer = "omnisync.consumer" // the consumer's address
)

// specInput is everything buildSpec needs, already validated.
type specInput struct {
	instance   string
	job        Job
	imageID    string
	user       string
	limits     Limits
	gpus       []string
	inputsDir  string
	outputsDir string
}

// buildSpec turns a validated job into the container the engine is asked to create. It is
// pure, so that the hardening it writes down is checked by unit tests without an engine.
func buildSpec(in specInput) containerSpec {
	s := containerSpec{
		Image:           in.imageID,
		Env:             append([]string{}, in.job.Env...),
		User:            in.user,
		NetworkDisabled: true,
		Healthcheck:     healthcheck{Test: []string{"NONE"}},
		Labels: map[string]string{
			LabelRuntime:  in.instance,
			LabelJob:      in.job.ID,
			LabelConsumer: in.job.Consumer,
		},
	}
	if len(in.job.Command) > 0 {
		s.Entrypoint, s.Cmd = in.job.Command[:1], in.job.Command[1:]
	}
	// The NVIDIA container hook reads these from the environment, including the image's:
	// pin them so that only a device request can expose a GPU, and only the ones granted.
	visible := "void"
	if len(in.gpus) > 0 {
		visible = strings.Join(in.gpus, ",")
	}
	s.Env = append(s.Env, "NVIDIA_VISIBLE_DEVICES="+visible, "NVIDIA_DRIVER_CAPABILITIES=compute,utility")

	lim := in.limits
	h := &s.HostConfig
	h.NetworkMode = "none"
	h.ReadonlyRootfs = true
	h.CapDrop = []string{"ALL"}
	h.SecurityOpt = []string{"no-new-privileges:true"}
	h.IpcMode = "private"
	h.CgroupnsMode = "private"
	h.PidsLimit = lim.Pids
	h.Memory = lim.MemoryBytes
	h.MemorySwap = lim.MemoryBytes // equal to Memory: no swap
	h.NanoCPUs = lim.NanoCPUs
	h.ShmSize = lim.TmpBytes
	h.Tmpfs = map[string]string{"/tmp": fmt.Sprintf("rw,noexec,nosuid,nodev,size=%d", lim.TmpBytes)}
	h.Mounts = []mount{
		{Type: "bind", Source: in.inputsDir, Target: "/inputs", ReadOnly: true},
		{Type: "bind", Source: in.outputsDir, Target: "/outputs"},
	}
	for i := range h.Mounts {
		h.Mounts[i].BindOptions.Propagation = "rprivate"
	}
	if len(in.gpus) > 0 {
		h.DeviceRequests = []deviceRequest{{
			Driver:       "nvidia",
			DeviceIDs:    append([]string{}, in.gpus...),
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	h.Ulimits = []ulimit{{Name: "core", Soft: 0, Hard: 0}, {Name: "nofile", Soft: 4096, Hard: 4096}}
	h.LogConfig = logConfig{Type: "json-file", Config: map[string]string{
		"max-size": fmt.Sprint(max(lim.LogBytes, 1<<20)), "max-file": "1",
	}}
	h.RestartPolicy.Name = "no"
	return s
}
