package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/omnisync/omnisync/api"
)

// inlineLimit is how many input bytes job submit sends inside its request; larger inputs
// are streamed once the escrow is committed, with progress (the REST API takes request
// bodies of 16 MiB by default).
const inlineLimit = 8 << 20

// splitInputs keeps the inputs that fit inlineLimit together inline, in the spec's order,
// and leaves the rest to be uploaded.
func splitInputs(spec api.JobSpec, data map[string][]byte) (inline, later map[string][]byte) {
	inline, later = map[string][]byte{}, map[string][]byte{}
	total := 0
	for _, in := range spec.Inputs {
		b := data[in.Name]
		if total+len(b) <= inlineLimit {
			inline[in.Name], total = b, total+len(b)
		} else {
			later[in.Name] = b
		}
	}
	return inline, later
}

// uploadInputs streams the inputs left out of the submission, in the spec's order,
// printing progress to stderr (not in JSON mode).
func (g *globals) uploadInputs(ctx context.Context, c *api.Client, jobID string, spec api.JobSpec, later map[string][]byte) error {
	for _, in := range spec.Inputs {
		b, ok := later[in.Name]
		if !ok {
			continue
		}
		var r io.Reader = bytes.NewReader(b)
		var p *progress
		if !g.json() {
			p = &progress{w: g.stderr, name: in.Name, total: int64(len(b)), start: time.Now()}
			r = io.TeeReader(r, p)
		}
		if err := c.UploadInput(ctx, jobID, in.Name, r, int64(len(b))); err != nil {
			return fmt.Errorf("upload input %s of job %s: %w", in.Name, jobID, err)
		}
		if p != nil {
			p.done()
		}
	}
	return nil
}

// progress draws one status line for an upload, at most ten times a second.
type progress struct {
	w     io.Writer
	name  string
	total int64
	sent  int64
	start time.Time
	drawn time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.sent += int64(len(b))
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
		p.drawn = now
		p.draw()
	}
	return len(b), nil
}

func (p *progress) draw() {
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\ruploading %s: %5.1f%% of %s (%s/s)   ", p.name,
		100*float64(p.sent)/float64(max(p.total, 1)), byteSize(p.total), byteSize(int64(float64(p.sent)/secs)))
}

func (p *progress) done() {
	p.draw()
	fmt.Fprintln(p.w)
}

// byteSize renders n bytes as B, KiB, MiB or GiB.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
