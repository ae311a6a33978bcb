package router

import "github.com/omnisync/omnisync/api"

// The inputs a consumer sent inline with a job are kept in memory while the job is
// unfinished, so that its dispatches and verification requests carry them
// (protocol.Dispatch.Inputs): its node and each validator then read them from the
// message rather than ask the router's blob service for each over the network. A
// devnet job of two 4 KiB inputs was fetched four times, by its node and its validator:
// a request and its reply through the NATS server, over TLS, each. What is not kept (an
// input uploaded apart, a job beyond the bounds below, any job after a restart) is
// fetched as before.

// maxInlineJob bounds the inputs kept for one job: a message carries them raw after its
// JSON, well within protocol.MaxInlineInputs.
const maxInlineJob = 64 << 10

// maxInlineHeld bounds the inputs kept for all jobs together: 8,192 unfinished jobs of
// 8 KiB each, the devnet's load.
const maxInlineHeld = 64 << 20

// heldInputs are a job's inputs kept in memory.
type heldInputs struct {
	data [][]byte // by the index of the job's spec inputs; nil for one not sent inline
	size int64
}

// holdInline keeps the inputs sent inline with j, within maxInlineJob and maxInlineHeld,
// until releaseInline. Nothing may write to them after.
func (r *Router) holdInline(j *job, inline [][]byte) {
	var size int64
	for _, b := range inline {
		size += int64(len(b))
	}
	if size == 0 || size > maxInlineJob {
		return
	}
	if r.inlineHeld.Add(size) > maxInlineHeld {
		r.inlineHeld.Add(-size)
		return
	}
	if old := j.inline.Swap(&heldInputs{data: inline, size: size}); old != nil {
		r.inlineHeld.Add(-old.size)
	}
}

// releaseInline forgets the inputs kept for j, if any.
func (r *Router) releaseInline(j *job) {
	if h := j.inline.Swap(nil); h != nil {
		r.inlineHeld.Add(-h.size)
	}
}

// inlineFor is those of j's inputs kept in memory, in the order of spec's inputs, nil for
// the others, and nil when none is kept. Spec is the job's own, or the one its node runs,
// whose first input a challenge replaces (job.dispatched): inputs are matched by digest.
func (j *job) inlineFor(spec api.JobSpec) [][]byte {
	h := j.inline.Load()
	if h == nil {
		return nil
	}
	var out [][]byte
	for i, in := range spec.Inputs {
		for k, own := range j.spec.Inputs {
			if own.Digest == in.Digest && h.data[k] != nil {
				if out == nil {
					out = make([][]byte, len(spec.Inputs))
				}
				out[i] = h.data[k]
				break
			}
		}
	}
	return out
}
