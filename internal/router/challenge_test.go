package router

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
)

// TestAChallengeJobsNodeSeesOnlyTheInputWithItsRowsHidden is an attacker test: the node of
// a challenge job is dispatched A', the consumer's first input with challenge rows among
// its rows, and may read it, but not the consumer's own A, which beside A' would give the
// rows away. The assignment committed to the rows before the node heard of the job.
func TestAChallengeJobsNodeSeesOnlyTheInputWithItsRowsHidden(t *testing.T) {
	chain := newFakeChain()
	node := newKey(t)
	chain.addNode(keys.AddressOfKey(node), ledger.UomniPerOMNI, 150_000)
	r, roots := startRouter(t, chain)
	req, data := consumerJobAt(t, chain, api.VerifyChallenge)
	type seen struct {
		spec       api.JobSpec
		aPrime     []byte
		readA      error
		commitment string
	}
	got := make(chan seen, 1)
	scriptedNode(t, r, roots, node, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		chain.mu.Lock()
		commitment := chain.jobs[d.JobID].Challenge
		chain.mu.Unlock()
		go func() {
			b := blobsOf(nc, node, r)
			aPrime, _ := b.Get(context.Background(), d.Spec.Inputs[0].Digest)
			_, errA := b.Get(context.Background(), req.Spec.Inputs[0].Digest)
			got <- seen{d.Spec, aPrime, errA, commitment}
		}()
		return protocol.Ack{Accepted: true}
	})
	waitFor(t, "the node online", func() bool { return len(r.online(protocol.RoleNode)) == 1 })
	j, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.spec.Inputs[0].Digest == req.Spec.Inputs[0].Digest || s.spec.Inputs[1] != req.Spec.Inputs[1] {
		t.Fatalf("dispatched inputs %+v, want A' in place of A %+v and B unchanged", s.spec.Inputs, req.Spec.Inputs)
	}
	if !errors.Is(s.readA, transport.ErrForbidden) {
		t.Fatalf("the node read the consumer's A beside A': %v", s.readA)
	}
	a, _ := tensor.DecodeInt8(data["a"])
	aPrime, err := tensor.DecodeInt8(s.aPrime)
	if err != nil || aPrime.Rows <= a.Rows || aPrime.Cols != a.Cols {
		t.Fatalf("A' %v (%v), want more rows than A's %d", aPrime, err, a.Rows)
	}
	// A's rows are all in A', in order.
	next := 0
	for i := 0; i < aPrime.Rows && next < a.Rows; i++ {
		if bytes.Equal(int8Bytes(aPrime.Data[i*a.Cols:(i+1)*a.Cols]), int8Bytes(a.Data[next*a.Cols:(next+1)*a.Cols])) {
			next++
		}
	}
	if next != a.Rows {
		t.Fatalf("only %d of A's %d rows are in A'", next, a.Rows)
	}
	r.mu.Lock()
	held := r.jobs[j.ID]
	r.mu.Unlock()
	c := held.challengeState()
	if c == nil || s.commitment == "" || s.commitment != c.commitment() || c.Input.Digest != s.spec.Inputs[0].Digest {
		t.Fatalf("the assignment committed %q; the router holds %+v", s.commitment, c)
	}
}

func int8Bytes(v []int8) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = byte(x)
	}
	return b
}
