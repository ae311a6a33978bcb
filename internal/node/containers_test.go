package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/runtime/docker"
)

// dockerRuntime connects a docker runtime of its own instance name to the local engine,
// skipping the test or benchmark where no engine is reachable.
func dockerRuntime(tb testing.TB, instance string) *docker.Runtime {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := docker.New(ctx, docker.Options{Instance: instance, WorkDir: tb.TempDir()})
	if errors.Is(err, docker.ErrEngineUnreachable) {
		tb.Skipf("no docker engine reachable (%v): set DOCKER_HOST or start one to run this", err)
	} else if err != nil {
		tb.Fatal(err) // an engine answered but cannot be used: that is a failure
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// scratchImage builds the static program under testdata/<name> into an image FROM
// scratch, as the docker runtime's own tests do, and returns its tag and id. The tag
// carries a hash of the source and the Go version; Go's build cache and the engine's
// layer cache make a rebuild of an unchanged program quick.
func scratchImage(tb testing.TB, r *docker.Runtime, name string) (tag, id string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src, err := os.ReadFile(filepath.Join("testdata", name, "main.go"))
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.Sum256(append(src, goruntime.Version()...))
	tag = "omnisync-test/node-" + name + ":" + hex.EncodeToString(h[:6])
	exe := filepath.Join(tb.TempDir(), name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", exe, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		tb.Fatal(err)
	}
	if id, err = r.BuildScratchImage(ctx, tag, name, bin); err != nil {
		tb.Fatal(err)
	}
	return tag, id
}
