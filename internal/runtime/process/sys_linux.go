//go:build linux

package process

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// shimName is argv[0] of the daemon binary re-executed to set rlimits.
const shimName = "omnisync-process-shim"

// rlimitNproc is RLIMIT_NPROC on linux/amd64 and arm64; package syscall does not name it.
const rlimitNproc = 6

func init() {
	if len(os.Args) > 0 && os.Args[0] == shimName {
		os.Exit(shim(os.Args[1:], os.NewFile(3, "env"), os.Stderr))
	}
}

func supported() error { return nil }

func sysProcAttr() *syscall.SysProcAttr {
	// Its own process group, so the timeout can kill everything the job starts; SIGKILL
	// if the daemon dies, so a job never outlives it unwatched.
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// rlimits maps the shim's argument names to resources.
var rlimits = []struct {
	name     string
	resource int
	get      func(Limits) uint64
}{
	{"cpu", syscall.RLIMIT_CPU, func(l Limits) uint64 { return l.CPUSeconds }},
	{"data", syscall.RLIMIT_DATA, func(l Limits) uint64 { return l.MemoryBytes }},
	{"as", syscall.RLIMIT_AS, func(l Limits) uint64 { return l.AddressSpace }},
	{"nofile", syscall.RLIMIT_NOFILE, func(l Limits) uint64 { return l.OpenFiles }},
	{"nproc", rlimitNproc, func(l Limits) uint64 { return l.Processes }},
	{"fsize", syscall.RLIMIT_FSIZE, func(l Limits) uint64 { return l.FileBytes }},
}

// shimArgs encodes the limits for the shim: name=value for each one set, and core=0.
func shimArgs(l Limits) []string {
	args := []string{"core=0"}
	for _, r := range rlimits {
		if v := r.get(l); v > 0 {
			args = append(args, r.name+"="+strconv.FormatUint(v, 10))
		}
	}
	return args
}

// shim runs in the re-executed binary: it reads the job's environment from envFile, sets
// the limits named in args (name=value ... -- argv), and execs argv. It returns only on
// failure, with exit code 127.
func shim(args []string, envFile *os.File, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "omnisync process shim: "+format+"\n", a...)
		return 127
	}
	sep := slices.Index(args, "--")
	if sep < 0 || sep == len(args)-1 {
		return fail("usage: %s name=value... -- command [args]", shimName)
	}
	raw, err := io.ReadAll(io.LimitReader(envFile, maxEnvBytes))
	envFile.Close()
	if err != nil {
		return fail("reading the environment: %v", err)
	}
	var env []string
	if len(raw) > 0 {
		env = strings.Split(string(raw), "\x00")
	}
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "PATH" {
			os.Setenv("PATH", v) // for LookPath
		}
	}
	argv := args[sep+1:]
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fail("%v", err)
	}
	for _, a := range args[:sep] {
		name, val, _ := strings.Cut(a, "=")
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fail("limit %q: %v", a, err)
		}
		res := -1
		if name == "core" {
			res = syscall.RLIMIT_CORE
		}
		for _, r := range rlimits {
			if r.name == name {
				res = r.resource
			}
		}
		if res < 0 {
			return fail("unknown limit %q", name)
		}
		lim := syscall.Rlimit{Cur: v, Max: v}
		if res == syscall.RLIMIT_CPU {
			lim.Max = v + 1 // SIGXCPU first, SIGKILL a second later
		}
		if err := syscall.Setrlimit(res, &lim); err != nil {
			return fail("setrlimit %s=%d: %v", name, v, err)
		}
	}
	err = syscall.Exec(path, argv, env)
	return fail("exec %s: %v", path, err)
}

// signalOf names the signal that killed the command, and the limit it means, if any.
func signalOf(ps *os.ProcessState, lim Limits) (signal, reason string) {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return "", ""
	}
	switch ws.Signal() {
	case syscall.SIGXCPU:
		reason = fmt.Sprintf("CPU time limit of %d s", lim.CPUSeconds)
	case syscall.SIGXFSZ:
		reason = fmt.Sprintf("file size limit of %d bytes", lim.FileBytes)
	}
	return ws.Signal().String(), reason
}
