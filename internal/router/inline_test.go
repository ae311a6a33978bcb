package router

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
)

// A job's inputs sent inline travel with its dispatch and its verification requests, so
// that neither its node nor its validators fetch them; the router forgets them once the
// job has finished.
func TestInlineInputsTravelWithTheJob(t *testing.T) {
	chain, nodeKey, nodeID, vals := committeeChain(t)
	r, roots := startRouter(t, chain)
	var mu sync.Mutex
	var dispatched [][]byte
	var asked [][][]byte
	computingNodeSeeing(t, r, roots, chain, nodeKey, nodeID, vals, func(d protocol.Dispatch) {
		mu.Lock()
		dispatched = d.Inputs
		mu.Unlock()
	})
	for _, v := range vals[:2] {
		scriptedValidator(t, r, roots, v, func(req protocol.VerifyRequest) protocol.Verdict {
			mu.Lock()
			defer mu.Unlock()
			if asked = append(asked, req.Inputs); len(asked) == 2 {
				chain.mu.Lock()
				chain.jobs[req.JobID].Status = ledger.JobSettled
				chain.mu.Unlock()
			}
			return protocol.Verdict{JobID: req.JobID, Pass: true, AttestTx: "A"}
		})
	}
	waitFor(t, "nodes and validators online", func() bool {
		return len(r.online(protocol.RoleNode)) == 1 && len(r.online(protocol.RoleValidator)) == 2
	})
	req, data := consumerJob(t, chain)
	j, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if held := r.inlineHeld.Load(); held != int64(len(data["a"])+len(data["b"])) && !jobFinished(r, j.ID) {
		t.Errorf("%d bytes held for the job's inputs, want %d", held, len(data["a"])+len(data["b"]))
	}
	waitFor(t, "the job settled", func() bool { return jobFinished(r, j.ID) })
	mu.Lock()
	defer mu.Unlock()
	carries := func(inputs [][]byte) bool {
		return len(inputs) == 2 && bytes.Equal(inputs[0], data["a"]) && bytes.Equal(inputs[1], data["b"])
	}
	if !carries(dispatched) {
		t.Errorf("the dispatch carried %d inputs, want both", len(dispatched))
	}
	if len(asked) != 2 || !carries(asked[0]) || !carries(asked[1]) {
		t.Errorf("the verification requests carried %v inputs, want both to each", len(asked))
	}
	if held := r.inlineHeld.Load(); held != 0 {
		t.Errorf("%d bytes held once the job finished, want 0", held)
	}
}

// What the router keeps of inline inputs is bounded per job and in all: a job beyond
// either is dispatched without them, its node fetching them as it would anyway.
func TestInlineInputsKeptWithinBounds(t *testing.T) {
	r := &Router{}
	spec := api.JobSpec{Inputs: []api.Input{{Name: "a", Digest: "sha256:a", Size: 3}, {Name: "b", Digest: "sha256:b", Size: maxInlineJob}}}
	big := newJob("job-big", "c", spec, time.Time{})
	r.holdInline(big, [][]byte{[]byte("abc"), make([]byte, maxInlineJob)})
	if big.inline.Load() != nil || r.inlineHeld.Load() != 0 {
		t.Fatalf("a job of %d bytes of inputs was kept (%d held)", maxInlineJob+3, r.inlineHeld.Load())
	}

	small := newJob("job-small", "c", spec, time.Time{})
	r.inlineHeld.Store(maxInlineHeld - 2)
	r.holdInline(small, [][]byte{[]byte("abc"), nil})
	if small.inline.Load() != nil || r.inlineHeld.Load() != maxInlineHeld-2 {
		t.Fatalf("a job over the router's bound was kept (%d held)", r.inlineHeld.Load())
	}
	r.inlineHeld.Store(0)
	r.holdInline(small, [][]byte{[]byte("abc"), nil})
	if got := small.inlineFor(spec); len(got) != 2 || string(got[0]) != "abc" || got[1] != nil {
		t.Fatalf("kept %q, want input a alone", got)
	}
	// A challenge's spec replaces the first input: only inputs of the same digest travel.
	challenged := api.JobSpec{Inputs: []api.Input{{Name: "a", Digest: "sha256:a-prime", Size: 4}, spec.Inputs[1]}}
	if got := small.inlineFor(challenged); got != nil {
		t.Fatalf("carried %q for a challenge's spec, want nothing", got)
	}
	r.releaseInline(small)
	r.releaseInline(small)
	if small.inline.Load() != nil || r.inlineHeld.Load() != 0 {
		t.Fatalf("%d bytes held after the release", r.inlineHeld.Load())
	}
}
