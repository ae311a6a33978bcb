package validator

import (
	"context"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/transport"
)

// audit checks an audit job the chain drew for audit (job.Audited): a tensor job as
// freivalds does, a container job by running it again. A job the draw passed over
// settles without its committee, and is refused.
func (d *Daemon) audit(ctx context.Context, c jobCheck) (finding, error) {
	if !c.job.Audited {
		return finding{}, fmt.Errorf("job %s was not drawn for audit: it settles unchecked", c.job.ID)
	}
	switch kind := c.req.Spec.Workload.Kind; kind {
	case api.WorkloadTensor:
		return d.checkFreivalds(ctx, c)
	case api.WorkloadContainer:
		return d.rerunContainer(ctx, c)
	default:
		return finding{}, fmt.Errorf("%w: workload kind %q", runtime.ErrUnsupported, kind)
	}
}

// rerunContainer runs a container job again, as a node runs it (runtime.NewContainerTask,
// runtime.RunContainerJob), and compares the digest of its output archive with the one
// the node committed, once it has found that output in the store. Its finding states the time the run took (Millis) in the node's
// unit, wall time on each slot held, and no operation count: a different output may be
// the container's own nondeterminism, so it proves nothing for slashing (the ledger
// slashes only on a failing audit that states operations). A run that fails (no runtime,
// the image missing, a timeout) is this validator's trouble, never evidence against the
// node: an error, and nothing is attested.
func (d *Daemon) rerunContainer(ctx context.Context, c jobCheck) (finding, error) {
	if d.opts.Containers == nil {
		return finding{}, fmt.Errorf("this validator cannot re-run containers: %w: it has no container runtime (validator run --containers docker)", runtime.ErrUnsupported)
	}
	inputs, err := c.inputs(ctx)
	if err != nil {
		return finding{}, err
	}
	// The consumer pays for an output it can read: a digest committed and never uploaded
	// fails, whatever a re-run makes.
	if _, err := c.output(ctx); err != nil {
		return neverUploaded(err)
	}
	timeout := time.Duration(c.job.TimeoutSeconds) * time.Second
	task := runtime.NewContainerTask(c.job.ID, string(c.job.Consumer), c.req.Spec, timeout, inputs)
	release, err := d.busy(ctx)
	if err != nil {
		return finding{}, err
	}
	defer release()
	out, _, err := runtime.RunContainerJob(ctx, d.opts.Containers, task)
	if err != nil {
		return finding{}, fmt.Errorf("re-run the container in %s: %w", d.opts.Containers.Name(), err)
	}
	f := finding{millis: out.GPUMillis}
	if got := transport.Digest(out.Output); got != c.job.ResultDigest {
		f.reason = fmt.Sprintf("re-ran the container: its output is %s, the node committed %s", got, c.job.ResultDigest)
	} else {
		f.pass, f.reason = true, "re-ran the container: same output "+got
	}
	return f, nil
}
