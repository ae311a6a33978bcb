package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/runtime/docker"
)

// ProbeDocker reports whether a Docker engine answers at $DOCKER_HOST or the default
// socket; the error says why not.
func ProbeDocker(ctx context.Context) error {
	r, err := docker.New(ctx, docker.Options{Instance: "devnet-probe", WorkDir: filepath.Join(os.TempDir(), "omnisync-devnet-probe")})
	if err != nil {
		return err
	}
	return r.Close()
}

// dockerFor starts the Docker runtime of the node or validator id: its own instance (so no
// daemon removes another's containers when it starts) in a work directory under the
// devnet's home.
func (d *Devnet) dockerFor(ctx context.Context, id string) (*docker.Runtime, error) {
	short := keys.Address(id).Short()
	return docker.New(ctx, docker.Options{
		Instance: "devnet-" + short,
		WorkDir:  filepath.Join(d.opts.Home, "docker", short),
	})
}

//go:embed demoimage/main.go
var demoImageSource []byte

// demoText is the container demo's input.
const demoText = `Idle GPUs anywhere in the world, rented out to AI developers.
Every result verified, every payment settled on a BFT chain.
A container job runs on three nodes of distinct operators; the nodes
are paid when two of the three outputs agree, and the consumer gets
back whatever the job did not use.
`

// ContainerOutcome is what the container demo did.
type ContainerOutcome struct {
	JobID        string        `json:"job_id"`
	Status       string        `json:"status"`
	Verified     bool          `json:"verified"`
	Image        string        `json:"image"`
	ImageID      string        `json:"image_id"`
	ResultDigest string        `json:"result_digest"`
	Replicas     []api.Replica `json:"replicas"`
	Payment      *api.Payment  `json:"payment,omitempty"`
	ExitCode     int           `json:"exit_code"`
	Files        []string      `json:"files"`
	Summary      string        `json:"summary"`
	Seconds      float64       `json:"seconds_submit_to_settled"`
	Events       []api.Event   `json:"events,omitempty"`
}

// ErrNoContainers means the devnet's nodes run no container jobs: it started without a
// Docker engine.
var ErrNoContainers = errors.New("the devnet's nodes run no container jobs")

// RunContainerDemo builds the demo image (a static wordcount program FROM scratch; it needs
// the Go toolchain, as `go run` does), submits it as a redundant container job, follows it
// to settlement and unpacks its verified output.
func (d *Devnet) RunContainerDemo(ctx context.Context, onUpdate func(api.Job)) (ContainerOutcome, error) {
	if d.docker == nil {
		return ContainerOutcome{}, ErrNoContainers
	}
	d.opts.Progress("building the demo image (a static Go program FROM scratch)")
	tag, id, err := d.buildDemoImage(ctx)
	if err != nil {
		return ContainerOutcome{}, err
	}
	o := ContainerOutcome{Image: tag, ImageID: id}
	spec := api.JobSpec{
		Workload: api.Workload{Kind: api.WorkloadContainer, Image: tag, ImageID: id, Command: []string{"/wordcount"}},
		Inputs:   []api.Input{{Name: "text.txt", Digest: api.DigestOf([]byte(demoText)), Size: int64(len(demoText))}},
		// No GPU: the devnet's GPUs are simulated.
		Resources:       api.Resources{GPUs: 0, CPUMilli: 500, MemoryMiB: 64},
		Placement:       api.Placement{LatE6: 52_520_000, LonE6: 13_400_000},
		MaxPricePerHour: 3 * omni,
		Budget:          1 * omni,
		TimeoutSeconds:  120,
		Verification:    api.VerifyRedundant,
	}
	c := api.NewClient(d.RESTURL())
	start := time.Now()
	job, err := SubmitSigned(ctx, c, d.Keys.Consumer, ChainID, spec, map[string][]byte{"text.txt": []byte(demoText)})
	if err != nil {
		return o, fmt.Errorf("submit container job: %w", err)
	}
	if onUpdate != nil {
		onUpdate(job)
	}
	if job, err = c.WaitJob(ctx, job.ID, onUpdate); err != nil {
		return o, fmt.Errorf("follow container job %s: %w", job.ID, err)
	}
	o.JobID, o.Status, o.Verified, o.ResultDigest = job.ID, job.Status, job.Verified, job.ResultDigest
	o.Replicas, o.Payment, o.Events, o.Seconds = job.Replicas, job.Payment, job.Events, time.Since(start).Seconds()
	if job.Status != api.StatusSettled {
		return o, nil
	}
	return o, d.readContainerOutput(ctx, c, d.Keys.Consumer, &o)
}

// readContainerOutput downloads the settled output with a signed request, checks its
// digest and unpacks it.
func (d *Devnet) readContainerOutput(ctx context.Context, c *api.Client, key ed25519.PrivateKey, o *ContainerOutcome) error {
	consumer := string(keys.AddressOfKey(key))
	out, err := c.JobOutput(ctx, o.JobID, api.SignOutputAuth(key, consumer, o.JobID, time.Minute, time.Now()))
	if err != nil {
		return fmt.Errorf("download output of %s: %w", o.JobID, err)
	}
	if out.Digest != o.ResultDigest || api.DigestOf(out.Data) != o.ResultDigest {
		return fmt.Errorf("output of %s has digest %s, the chain settled %s", o.JobID, api.DigestOf(out.Data), o.ResultDigest)
	}
	co, err := api.UnpackOutput(out.Data, 1024, 64<<20)
	if err != nil {
		return err
	}
	o.ExitCode = co.ExitCode
	for _, f := range co.Files {
		o.Files = append(o.Files, f.Path)
		if f.Path == "summary.txt" {
			o.Summary = string(f.Data)
		}
	}
	d.opts.Progress(fmt.Sprintf("consumer downloaded the output archive: %d bytes, digest matches the settled result, exit code %d, files %v",
		out.Size, co.ExitCode, o.Files))
	return nil
}

// buildDemoImage compiles the demo program statically and builds it into an image tagged
// by the hash of its source, so a run after the first reuses Go's build cache and the
// engine's layers.
func (d *Devnet) buildDemoImage(ctx context.Context) (tag, id string, err error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("%w: building the demo image needs the Go toolchain on PATH", ErrNoContainers)
	}
	sum := sha256.Sum256(demoImageSource)
	tag = "omnisync-demo/wordcount:" + hex.EncodeToString(sum[:6])
	dir := filepath.Join(d.opts.Home, "demo-image")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), demoImageSource, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module wordcount\n\ngo 1.22\n"), 0o600); err != nil {
		return "", "", err
	}
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, gobin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s", "-o", "wordcount", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build the demo program: %v\n%s", err, strings.TrimSpace(string(out)))
	}
	exe, err := os.ReadFile(filepath.Join(dir, "wordcount"))
	if err != nil {
		return "", "", err
	}
	if id, err = d.docker.BuildScratchImage(bctx, tag, "wordcount", exe); err != nil {
		return "", "", err
	}
	return tag, id, nil
}
