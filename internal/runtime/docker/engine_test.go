package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The engine tests share one connection and one set of test images, built once per test
// binary run from the static programs under testdata/ and reused across runs: an image is
// tagged omnisync-test/<name>:<hash of its source and the Go version>.

var testPrograms = []string{"prober", "hog", "sleeper", "worker"}

var engine struct {
	once   sync.Once
	c      *client
	err    error // engine unreachable: tests skip
	images map[string]string
	bErr   error // engine reachable but images could not be built: tests fail
}

// testEngine returns a client to the engine and the test images, skipping the test where
// no engine is reachable.
func testEngine(t *testing.T) (*client, map[string]string) {
	t.Helper()
	engine.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		engine.c, engine.err = dial(ctx, "")
		if engine.err == nil {
			engine.images, engine.bErr = buildTestImages(ctx, engine.c)
		}
	})
	if errors.Is(engine.err, ErrEngineUnreachable) {
		t.Skipf("no docker engine reachable at %s", strings.TrimPrefix(engine.err.Error(), ErrEngineUnreachable.Error()+" at "))
	} else if engine.err != nil {
		t.Fatal(engine.err) // an engine answered but cannot be used: that is a failure
	}
	if engine.bErr != nil {
		t.Fatalf("building test images: %v", engine.bErr)
	}
	return engine.c, engine.images
}

func buildTestImages(ctx context.Context, c *client) (map[string]string, error) {
	tags := map[string]string{}
	var missing []string
	for _, name := range testPrograms {
		src, err := os.ReadFile(filepath.Join("testdata", name, "main.go"))
		if err != nil {
			return nil, err
		}
		h := sha256.Sum256(append(src, runtime.Version()...))
		tags[name] = "omnisync-test/" + name + ":" + hex.EncodeToString(h[:6])
		if _, err := c.inspectImage(ctx, tags[name]); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return tags, nil
	}
	bin, err := os.MkdirTemp("", "omnisync-test-bin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bin)
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", bin + "/"}
	for _, name := range missing {
		args = append(args, "./testdata/"+name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	for _, name := range missing {
		exe, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			return nil, err
		}
		dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
		if err := buildImage(ctx, c, tags[name], map[string][]byte{"Dockerfile": []byte(dockerfile), name: exe}); err != nil {
			return nil, fmt.Errorf("docker build %s: %w", name, err)
		}
	}
	return tags, nil
}

// newTestRuntime starts a runtime whose instance name is the test's, so that parallel
// tests never remove each other's containers.
func newTestRuntime(t *testing.T, o Options) *Runtime {
	t.Helper()
	testEngine(t)
	if o.Instance == "" {
		o.Instance = instanceName(t)
	}
	if o.WorkDir == "" {
		o.WorkDir = t.TempDir()
	}
	r, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func instanceName(t *testing.T) string {
	return "test-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
}

// containersOf lists the containers carrying the runtime's label.
func containersOf(t *testing.T, r *Runtime) []string {
	t.Helper()
	ids, err := r.c.containersLabelled(context.Background(), LabelRuntime, r.instance)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
