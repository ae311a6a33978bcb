package validator

import (
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/internal/verify"
)

// checkKernel is verify.CheckKernel with int8 products on Options.GPU when there is one.
// The GPU is trusted to be fast, not to be right: where it errs the check runs again on
// the CPU, and where it fails a result the CPU must fail it too before anyone is slashed
// for it, so a faulty GPU costs this validator time, never an honest node its stake. (A
// GPU that wrongly passes gives a transcript no honest validator shares, which the audits
// of attestations catch: attestaudit.go.)
func (d *Daemon) checkKernel(kernel string, inputs [][]byte, output []byte, seed [32]byte) (verify.Verdict, error) {
	if d.opts.GPU == nil {
		return verify.CheckKernel(kernel, inputs, output, seed, d.opts.Rounds)
	}
	v, err := verify.CheckKernelOn(d.opts.GPU, kernel, inputs, output, seed, d.opts.Rounds)
	switch {
	case errors.Is(err, verify.ErrAccelerator):
		d.metrics.gpuChecked("error")
		d.log.Warn("GPU check failed; checking on the CPU", "err", err)
	case err != nil || v.OK:
		d.metrics.gpuChecked("done")
		return v, err
	default:
		d.metrics.gpuChecked("failed")
	}
	cpu, cerr := verify.CheckKernel(kernel, inputs, output, seed, d.opts.Rounds)
	if cerr == nil && err == nil && cpu.OK {
		d.metrics.gpuChecked("overruled")
		d.log.Error("the GPU failed a result that the CPU passes: attesting the CPU's verdict; this GPU computes wrongly",
			"gpu_reason", v.Reason)
	}
	if cerr != nil {
		return verify.Verdict{}, fmt.Errorf("check on the CPU: %w", cerr)
	}
	return cpu, nil
}
