// Command prober runs inside the hardened container and reports, as JSON on stdout and in
// /outputs/report.json, what it could and could not do: the docker tests assert on it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

type report struct {
	UID, GID, EUID int
	Status         map[string]string // selected /proc/self/status lines
	Interfaces     []string
	Dial           map[string]string // address -> "ok" or the error
	Read           map[string]string // path -> "ok" or the error
	Write          map[string]string // path -> "ok" or the error
	ExecFromTmp    string
	Setuid0        string
	Mount          string
}

func result(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func main() {
	r := report{UID: os.Getuid(), GID: os.Getgid(), EUID: os.Geteuid(),
		Status: map[string]string{}, Dial: map[string]string{}, Read: map[string]string{}, Write: map[string]string{}}

	if f, err := os.Open("/proc/self/status"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, ok := strings.Cut(s.Text(), ":")
			if ok && (strings.HasPrefix(k, "Cap") || k == "NoNewPrivs" || k == "Seccomp" || k == "Uid" || k == "Gid") {
				r.Status[k] = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		r.Interfaces = append(r.Interfaces, i.Name)
	}
	for _, a := range append([]string{"1.1.1.1:53", "8.8.8.8:53"}, split(os.Getenv("PROBE_DIAL"))...) {
		c, err := net.DialTimeout("tcp", a, 2*time.Second)
		if err == nil {
			c.Close()
		}
		r.Dial[a] = result(err)
	}
	for _, p := range append([]string{"/etc/shadow", "/etc/passwd", "/var/run/docker.sock", "/root"}, split(os.Getenv("PROBE_READ"))...) {
		f, err := os.Open(p)
		if err == nil {
			_, err = f.Read(make([]byte, 1))
			if err == io.EOF {
				err = nil
			}
			f.Close()
		}
		r.Read[p] = result(err)
	}
	for _, p := range []string{"/probe", "/inputs/probe", "/etc/probe", "/bin/probe", "/tmp/probe", "/outputs/probe"} {
		r.Write[p] = result(os.WriteFile(p, []byte("x"), 0o644))
	}
	r.ExecFromTmp = execFromTmp()
	r.Setuid0 = result(syscall.Setuid(0))
	r.Mount = result(syscall.Mount("tmpfs", "/tmp", "tmpfs", 0, ""))

	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))
	if err := os.WriteFile("/outputs/report.json", out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write report:", err)
		os.Exit(1)
	}
}

// execFromTmp copies this binary to /tmp and runs it: the noexec tmpfs must refuse.
func execFromTmp() string {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return "read self: " + err.Error()
	}
	if err := os.WriteFile("/tmp/copy", self, 0o755); err != nil {
		return "write copy: " + err.Error()
	}
	return result(syscall.Exec("/tmp/copy", []string{"/tmp/copy", "-h"}, nil))
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
