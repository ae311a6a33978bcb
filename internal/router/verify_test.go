package router

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
)

// scriptedValidator connects as a validator, heartbeats once and answers verification
// requests with onVerify.
func scriptedValidator(t *testing.T, r *Router, roots *x509.CertPool, key ed25519.PrivateKey, onVerify func(protocol.VerifyRequest) protocol.Verdict) {
	t.Helper()
	id := string(keys.AddressOfKey(key))
	hb := protocol.Heartbeat{ID: id, Role: protocol.RoleValidator}
	scriptedParticipant(t, r, roots, key, hb, protocol.VerifySubject(id), func(_ *nats.Conn, data []byte) []byte {
		req, err := protocol.Decode[protocol.VerifyRequest](data)
		if err != nil {
			t.Error(err)
			return nil
		}
		return protocol.Encode(onVerify(req))
	})
}

// The chain settles on two thirds of the committee: the router asks every online member,
// not just one, and waits for the chain node it reads to show the result first.
// committeeChain is a fake chain with one node and three validators, a job's committee.
func committeeChain(t *testing.T) (chain *fakeChain, nodeKey ed25519.PrivateKey, nodeID string, vals []ed25519.PrivateKey) {
	chain = newFakeChain()
	nodeKey = newKey(t)
	chain.addNode(keys.AddressOfKey(nodeKey), ledger.UomniPerOMNI, 10_000)
	vals = []ed25519.PrivateKey{newKey(t), newKey(t), newKey(t)}
	for _, v := range vals {
		chain.vals = append(chain.vals, ledger.Validator{Address: keys.AddressOfKey(v), Stake: 10_000 * ledger.UomniPerOMNI})
	}
	return chain, nodeKey, string(keys.AddressOfKey(nodeKey)), vals
}

// computingNode connects a node that accepts every job and commits a result at once, the
// chain recording it computed with vals as the committee.
func computingNode(t *testing.T, r *Router, roots *x509.CertPool, chain *fakeChain, nodeKey ed25519.PrivateKey, nodeID string, vals []ed25519.PrivateKey) {
	t.Helper()
	computingNodeSeeing(t, r, roots, chain, nodeKey, nodeID, vals, func(protocol.Dispatch) {})
}

// computingNodeSeeing is computingNode, passing each dispatch to seen first.
func computingNodeSeeing(t *testing.T, r *Router, roots *x509.CertPool, chain *fakeChain, nodeKey ed25519.PrivateKey, nodeID string, vals []ed25519.PrivateKey, seen func(protocol.Dispatch)) {
	t.Helper()
	digest := api.DigestOf([]byte("out"))
	scriptedNode(t, r, roots, nodeKey, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		seen(d)
		chain.mu.Lock()
		j := chain.jobs[d.JobID]
		j.Status, j.ResultDigest = ledger.JobComputed, digest
		for _, v := range vals {
			j.Committee = append(j.Committee, keys.AddressOfKey(v))
		}
		chain.mu.Unlock()
		go func() {
			_ = nc.Publish(protocol.ResultSubject(nodeID), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: nodeID, Digest: digest, CommitTx: "C"}))
		}()
		return protocol.Ack{Accepted: true}
	})
}

func TestEveryOnlineCommitteeMemberIsAsked(t *testing.T) {
	chain, nodeKey, nodeID, vals := committeeChain(t)
	r, roots := startRouter(t, chain)
	digest := api.DigestOf([]byte("out"))
	scriptedNode(t, r, roots, nodeKey, func(nc *nats.Conn, d protocol.Dispatch) protocol.Ack {
		go func() {
			// The result reaches the router a moment before the chain node it reads shows it.
			_ = nc.Publish(protocol.ResultSubject(nodeID), protocol.Encode(protocol.Result{JobID: d.JobID, NodeID: nodeID, Digest: digest, CommitTx: "C"}))
			time.Sleep(300 * time.Millisecond)
			chain.mu.Lock()
			j := chain.jobs[d.JobID]
			j.Status, j.ResultDigest = ledger.JobComputed, digest
			for _, v := range vals {
				j.Committee = append(j.Committee, keys.AddressOfKey(v))
			}
			chain.mu.Unlock()
		}()
		return protocol.Ack{Accepted: true}
	})
	var mu sync.Mutex
	asked := map[string]bool{}
	for _, v := range vals[:2] { // the third is offline
		scriptedValidator(t, r, roots, v, func(req protocol.VerifyRequest) protocol.Verdict {
			mu.Lock()
			defer mu.Unlock()
			asked[string(keys.AddressOfKey(v))] = true
			if len(asked) == 2 { // two of three pass: the chain settles
				chain.mu.Lock()
				chain.jobs[req.JobID].Status = ledger.JobSettled
				chain.mu.Unlock()
			}
			return protocol.Verdict{JobID: req.JobID, Pass: true, AttestTx: "A-" + string(keys.AddressOfKey(v))}
		})
	}
	waitFor(t, "nodes and validators online", func() bool {
		return len(r.online(protocol.RoleNode)) == 1 && len(r.online(protocol.RoleValidator)) == 2
	})
	id := submit(t, r, chain)
	waitFor(t, "the job verified", func() bool {
		j, err := r.Job(context.Background(), id)
		return err == nil && j.Verdict == "pass" && j.Status == api.StatusSettled
	})
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 {
		t.Fatalf("%d committee members asked, want both online ones", len(asked))
	}
	if jobHas(r, id, "failed") {
		t.Fatal("the job failed although two thirds attested")
	}
}

// Once two thirds have attested the chain has decided: a member whose answer never comes
// (it reconnected to another router, say) does not hold the job up to VerifyTimeout.
func TestRouterStopsWaitingOnceTheChainDecided(t *testing.T) {
	chain, nodeKey, nodeID, vals := committeeChain(t)
	r, roots := startRouterWith(t, Options{Chain: chain, VerifyTimeout: time.Hour})
	computingNode(t, r, roots, chain, nodeKey, nodeID, vals)
	var mu sync.Mutex
	passed := 0
	for _, v := range vals[:2] {
		scriptedValidator(t, r, roots, v, func(req protocol.VerifyRequest) protocol.Verdict {
			mu.Lock()
			defer mu.Unlock()
			if passed++; passed == 2 {
				chain.mu.Lock()
				chain.jobs[req.JobID].Status = ledger.JobSettled
				chain.mu.Unlock()
			}
			return protocol.Verdict{JobID: req.JobID, Pass: true, AttestTx: "A"}
		})
	}
	silent := string(keys.AddressOfKey(vals[2]))
	scriptedParticipant(t, r, roots, vals[2], protocol.Heartbeat{ID: silent, Role: protocol.RoleValidator},
		protocol.VerifySubject(silent), func(*nats.Conn, []byte) []byte { return nil })
	waitFor(t, "nodes and validators online", func() bool {
		return len(r.online(protocol.RoleNode)) == 1 && len(r.online(protocol.RoleValidator)) == 3
	})
	id := submit(t, r, chain)
	waitFor(t, "the router to stop waiting once the chain decided", func() bool { return jobHas(r, id, "decided") })
	waitFor(t, "the job finished", func() bool { return jobFinished(r, id) })
}

// A job the chain decided before the validators' answers reached the router still shows
// the verdict, read from the attestations on chain.
func TestChainVerdictReadsTheAttestations(t *testing.T) {
	for _, tt := range []struct {
		atts []ledger.Attestation
		want string
	}{
		{nil, ""},
		{[]ledger.Attestation{{Pass: true}, {Pass: true}}, "pass"},
		{[]ledger.Attestation{{Pass: true}, {Pass: false, Reason: "row 7 differs"}}, "fail: row 7 differs"},
	} {
		if got := chainVerdict(tt.atts); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.atts, got, tt.want)
		}
	}
}

// The block that settles a job commits before the validators' answers (the verdict, the
// attestation's tx) reach the router: a client that stops reading at "settled" must still
// find them, so the router shows the job as settled only once it recorded them.
func TestSettledIsShownOnlyWithTheVerdict(t *testing.T) {
	chain, nodeKey, nodeID, vals := committeeChain(t)
	r, roots := startRouter(t, chain)
	computingNode(t, r, roots, chain, nodeKey, nodeID, vals)
	var mu sync.Mutex
	passed := 0
	for _, v := range vals {
		scriptedValidator(t, r, roots, v, func(req protocol.VerifyRequest) protocol.Verdict {
			mu.Lock()
			passed++
			if passed == 2 {
				chain.mu.Lock()
				chain.jobs[req.JobID].Status = ledger.JobSettled
				chain.mu.Unlock()
			}
			mu.Unlock()
			time.Sleep(300 * time.Millisecond) // the answers travel slower than the block
			return protocol.Verdict{JobID: req.JobID, Pass: true, AttestTx: "A"}
		})
	}
	waitFor(t, "nodes and validators online", func() bool {
		return len(r.online(protocol.RoleNode)) == 1 && len(r.online(protocol.RoleValidator)) == 3
	})
	id := submit(t, r, chain)
	sawComputed := false
	waitFor(t, "the job settled", func() bool {
		j, err := r.Job(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status == api.StatusComputed {
			sawComputed = true
		}
		if j.Status != api.StatusSettled {
			return false
		}
		if j.Verdict != "pass" || j.Txs["attest"] != "A" || !j.Verified {
			t.Fatalf("shown settled without the validators' verdict: verdict %q, txs %v, verified %t", j.Verdict, j.Txs, j.Verified)
		}
		return true
	})
	chain.mu.Lock()
	settled := chain.jobs[id].Status == ledger.JobSettled
	chain.mu.Unlock()
	if !sawComputed || !settled {
		t.Fatalf("the job never showed as computed while the chain had settled it (saw computed %t)", sawComputed)
	}
}

// A router slow to record a decided job's outcome holds the chain's decision back from
// readers for decidedHold at most, counted from the first reader that found it.
func TestADecidedJobIsHeldBackForAtMostTheHold(t *testing.T) {
	var j job
	t0 := time.Unix(1_800_000_000, 0)
	for _, tt := range []struct {
		at   time.Duration
		hold bool
	}{{0, true}, {decidedHold - time.Millisecond, true}, {decidedHold, false}, {time.Hour, false}} {
		if got := j.holdDecided(t0.Add(tt.at)); got != tt.hold {
			t.Errorf("%v after the chain decided: held %t, want %t", tt.at, got, tt.hold)
		}
	}
}
