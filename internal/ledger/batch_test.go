package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// batchFixture is a chain with twelve jobs at every stage a batch meets: jobs 0–3 created,
// 4–7 assigned to node1, 8–11 committed by node1 (and so awaiting the validator), and job
// 2 cancelled by its consumer meanwhile. Both sides of a comparison build it alike.
func batchFixture(t *testing.T) (*harness, []string) {
	t.Helper()
	h := newHarness(t, testGenesis())
	h.block(h.sign(node1Key, registerMsg), h.sign(node2Key, registerMsg))
	var ids []string
	var creates [][]byte
	for i := range 12 {
		ids = append(ids, JobID(addr(consumerKey), h.seqs[addr(consumerKey)]))
		creates = append(creates, h.sign(consumerKey, createMsg(uint64(10+i)*omni)))
		h.seqs[addr(consumerKey)]++
	}
	h.seqs[addr(consumerKey)] -= 12
	mustAll(t, h.block(creates...))
	mustAll(t, h.block(h.sign(routerKey, assignAll(ids[4:], node1Key))))
	mustAll(t, h.block(h.sign(node1Key, Msg{CommitResults: &MsgCommitResults{Results: commits(ids[8:], digestA)}})))
	mustAll(t, h.block(h.sign(consumerKey, Msg{CancelJob: &MsgCancelJob{JobID: ids[2]}})))
	return h, ids
}

func mustAll(t *testing.T, rs []TxResult) {
	t.Helper()
	for i, r := range rs {
		if r.Code != CodeOK {
			t.Fatalf("tx %d: code %d: %s", i, r.Code, r.Log)
		}
		if errs, _ := BatchResults(r.Events); errors.Join(errs...) != nil {
			t.Fatalf("tx %d: items failed: %v", i, errs)
		}
	}
}

func assignAll(ids []string, node ed25519.PrivateKey) Msg {
	m := &MsgAssignJobs{}
	for _, id := range ids {
		m.Assignments = append(m.Assignments, MsgAssignJob{JobID: id, Node: addr(node), ScoreBP: 5000})
	}
	return Msg{AssignJobs: m}
}

func commits(ids []string, digest string) []MsgCommitResult {
	var out []MsgCommitResult
	for _, id := range ids {
		out = append(out, MsgCommitResult{JobID: id, ResultDigest: digest, GPUMillis: 60_000})
	}
	return out
}

// randomBatch is a batch of one kind over the fixture's jobs, whose items often fail: jobs
// at the wrong stage or cancelled, a job that does not exist, nodes that are not nodes,
// wrong digests, the same job twice.
func randomBatch(rng *rand.Rand, ids []string) (ed25519.PrivateKey, Msg) {
	job := func() string {
		if rng.IntN(12) == 0 {
			return JobID(addr(strangerKey), 7) // no such job
		}
		return ids[rng.IntN(len(ids))]
	}
	n := 1 + rng.IntN(16)
	switch rng.IntN(3) {
	case 0:
		m := &MsgAssignJobs{}
		for range n {
			node := []ed25519.PrivateKey{node1Key, node2Key, strangerKey}[rng.IntN(3)]
			m.Assignments = append(m.Assignments, MsgAssignJob{JobID: job(), Node: addr(node), ScoreBP: uint32(rng.IntN(10_001))})
		}
		return routerKey, Msg{AssignJobs: m}
	case 1:
		m := &MsgCommitResults{}
		for range n {
			m.Results = append(m.Results, MsgCommitResult{JobID: job(), ResultDigest: []string{digestA, digestB}[rng.IntN(2)], GPUMillis: rng.Uint64N(1_000_000)})
		}
		return []ed25519.PrivateKey{node1Key, node2Key}[rng.IntN(2)], Msg{CommitResults: m}
	default:
		m := &MsgAttestJobs{}
		for range n {
			m.Attestations = append(m.Attestations, MsgAttest{JobID: job(), ResultDigest: []string{digestA, digestA, digestB}[rng.IntN(3)], Pass: rng.IntN(4) > 0, Ops: ampleOps})
		}
		return validatorKey, Msg{AttestJobs: m}
	}
}

// TestBatchEqualsSingles: a batch of N items leaves the state, the events and the outcomes
// N single transactions in the same block leave, item for item, except that the signer's
// sequence moves once instead of N times. Random batches over jobs at every stage, so
// items apply, settle, fail verification and are refused, interleaved.
func TestBatchEqualsSingles(t *testing.T) {
	kinds := map[string]int{}
	codes := map[Code]int{}
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, 12))
		hs, ids := batchFixture(t)
		hb, _ := batchFixture(t)
		k, batch := randomBatch(rng, ids)
		kinds[batch.Kind()]++
		items := batch.batchItems()

		batchRes := hb.block(hb.sign(k, batch))[0]
		if batchRes.Code != CodeOK {
			t.Fatalf("seed %d: batch failed as a whole: %s", seed, batchRes.Log)
		}
		itemErrs, err := BatchResults(batchRes.Events)
		if err != nil || len(itemErrs) != len(items) {
			t.Fatalf("seed %d: %d outcomes for %d items (%v)", seed, len(itemErrs), len(items), err)
		}
		// A failed tx does not use its sequence: each single is signed with the one it
		// gets if the items before it fare as they did in the batch (if they do not,
		// a wrong-sequence code gives it away below).
		seq := hs.seqs[addr(k)]
		var singles [][]byte
		for i, it := range items {
			tx, err := SignTx(k, testChain, seq, it)
			if err != nil {
				t.Fatal(err)
			}
			singles = append(singles, tx)
			if itemErrs[i] == nil {
				seq++
			}
		}
		singleRes := hs.block(singles...)
		var singleEvents []Event
		for i, r := range singleRes {
			codes[r.Code]++
			if got := CodeFor(itemErrs[i]); got != r.Code {
				t.Fatalf("seed %d item %d: batch code %d (%v), single tx code %d (%s)", seed, i, got, itemErrs[i], r.Code, r.Log)
			}
			if r.Code != CodeOK && itemErrs[i].Error() != r.Log {
				t.Fatalf("seed %d item %d: batch says %q, single tx %q", seed, i, itemErrs[i], r.Log)
			}
			singleEvents = append(singleEvents, r.Events...)
		}
		var batchEvents []Event
		for _, e := range batchRes.Events {
			if e.Type != EventBatchItem {
				batchEvents = append(batchEvents, e)
			}
		}
		if !reflect.DeepEqual(batchEvents, singleEvents) {
			t.Fatalf("seed %d: events differ\nbatch   %v\nsingles %v", seed, batchEvents, singleEvents)
		}
		if a, b := stateHashIgnoringSeq(hs, addr(k)), stateHashIgnoringSeq(hb, addr(k)); !bytes.Equal(a, b) {
			t.Fatalf("seed %d: %s: state after the batch differs from after its items as single txs", seed, batch.Kind())
		}
		if got := query[Account](hb, "account/"+string(addr(k))).Seq; got != hb.seqs[addr(k)] {
			t.Fatalf("seed %d: signer's sequence %d, want %d (one for the batch)", seed, got, hb.seqs[addr(k)])
		}
		hs.checkBooks()
		hb.checkBooks()
	}
	for _, want := range []string{"assign_jobs", "commit_results", "attest_jobs"} {
		if kinds[want] == 0 {
			t.Errorf("no %s batch drawn", want)
		}
	}
	for _, want := range []Code{CodeOK, CodeBadState, CodeNotFound, CodeUnauthorized, CodeInvalidMsg} {
		if codes[want] == 0 {
			t.Errorf("no item ended with code %d; codes %v", want, codes)
		}
	}
}

// stateHashIgnoringSeq is stateHash with signer's account sequence taken as 0, and an
// account that holds nothing else as none.
func stateHashIgnoringSeq(h *harness, signer keys.Address) []byte {
	h.t.Helper()
	sum := sha256.New()
	view, _ := h.store.Committed()
	_ = view.Iterate(nil, func(k, v []byte) bool {
		if string(k) == string(keyBlockTime) {
			return true
		}
		if string(k) == string(acctKey(signer)) {
			var acc Account
			if err := decodeRecord(v, &acc); err != nil {
				h.t.Fatal(err)
			}
			acc.Seq = 0
			if acc.Balance == 0 && acc.Vesting == nil {
				return true // an account the singles, all failing, never wrote
			}
			v, _ = encodeRecord(acc)
		}
		sum.Write(k)
		sum.Write(v)
		return true
	})
	return sum.Sum(nil)
}

// TestBatchRule pins what fails one item and what fails the whole transaction.
func TestBatchRule(t *testing.T) {
	t.Run("a job cancelled meanwhile fails alone", func(t *testing.T) {
		h, ids := batchFixture(t)
		r := h.do(routerKey, assignAll(ids[1:4], node2Key)) // ids[2] was cancelled
		if r.Code != CodeOK {
			t.Fatalf("code %d: %s", r.Code, r.Log)
		}
		errs, err := BatchResults(r.Events)
		if err != nil || len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], ErrBadState) || errs[2] != nil {
			t.Fatalf("item outcomes %v (%v), want [nil, bad state, nil]", errs, err)
		}
		for i, want := range []string{JobAssigned, JobCancelled, JobAssigned} {
			if j := query[Job](h, "job/"+ids[1+i]); j.Status != want {
				t.Errorf("job %d is %s, want %s", 1+i, j.Status, want)
			}
		}
	})
	t.Run("all items failing still uses the sequence and changes nothing else", func(t *testing.T) {
		h, ids := batchFixture(t)
		before := stateHashIgnoringSeq(h, addr(routerKey))
		r := h.do(routerKey, assignAll([]string{ids[2], ids[8]}, node1Key))
		errs, _ := BatchResults(r.Events)
		if r.Code != CodeOK || len(errs) != 2 || errs[0] == nil || errs[1] == nil {
			t.Fatalf("code %d, items %v", r.Code, errs)
		}
		if !bytes.Equal(before, stateHashIgnoringSeq(h, addr(routerKey))) {
			t.Fatal("failed items changed the state")
		}
		if got := query[Account](h, "account/"+string(addr(routerKey))).Seq; got != 2 {
			t.Fatalf("router sequence %d, want 2", got)
		}
	})
	tooMany := assignAll(make([]string, MaxBatchItems+1), node1Key)
	for i := range tooMany.AssignJobs.Assignments {
		tooMany.AssignJobs.Assignments[i].JobID = JobID(addr(consumerKey), uint64(i))
	}
	for _, c := range []struct {
		name string
		key  ed25519.PrivateKey
		msg  func(ids []string) Msg
		code Code
		log  string
	}{
		{"not a router", strangerKey, func(ids []string) Msg { return assignAll(ids[:2], node1Key) }, CodeUnauthorized, "not a router"},
		{"not a validator", node1Key, func(ids []string) Msg {
			return Msg{AttestJobs: &MsgAttestJobs{Attestations: []MsgAttest{{JobID: ids[8], ResultDigest: digestA, Pass: true, Ops: 1, Transcript: aTranscript}}}}
		}, CodeUnauthorized, "not an active validator"},
		{"empty", routerKey, func([]string) Msg { return Msg{AssignJobs: &MsgAssignJobs{}} }, CodeInvalidMsg, "1 to 256 items"},
		{"too many", routerKey, func([]string) Msg { return tooMany }, CodeInvalidMsg, "1 to 256 items, this one 257"},
		{"malformed item", routerKey, func(ids []string) Msg {
			m := assignAll(ids[:3], node1Key)
			m.AssignJobs.Assignments[1].ScoreBP = 10_001
			return m
		}, CodeInvalidMsg, "item 1: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, ids := batchFixture(t)
			before := h.stateHash()
			tx := h.sign(c.key, c.msg(ids))
			if r := h.app.CheckTx(tx); r.Code != c.code {
				t.Fatalf("CheckTx: code %d (%s), want %d", r.Code, r.Log, c.code)
			}
			r := h.block(tx)[0]
			if r.Code != c.code || !strings.Contains(r.Log, c.log) {
				t.Fatalf("code %d (%s), want %d with %q", r.Code, r.Log, c.code, c.log)
			}
			if !bytes.Equal(before, h.stateHash()) {
				t.Fatal("a rejected batch changed the state")
			}
		})
	}
	t.Run("CheckTx admits a batch whose items would fail", func(t *testing.T) {
		h, ids := batchFixture(t)
		if r := h.app.CheckTx(h.sign(routerKey, assignAll(ids[8:10], node1Key))); r.Code != CodeOK {
			t.Fatalf("code %d: %s", r.Code, r.Log)
		}
	})
}

// TestBatchTxEncoding: a batch is one more field of the tx body's JSON, so every other
// message signs to the bytes it always did.
func TestBatchTxEncoding(t *testing.T) {
	id := JobID(addr(consumerKey), 0)
	tx, err := SignTx(routerKey, testChain, 7, Msg{AssignJobs: &MsgAssignJobs{Assignments: []MsgAssignJob{{JobID: id, Node: addr(node1Key), ScoreBP: 9}}}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"chain_id":%q,"seq":7,"assign_jobs":{"assignments":[{"job_id":%q,"node":%q,"score_bp":9}]}}`, testChain, id, addr(node1Key))
	if got := string(tx[txHeader:]); got != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
	single, _ := SignTx(routerKey, testChain, 7, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key), ScoreBP: 9}})
	want = fmt.Sprintf(`{"chain_id":%q,"seq":7,"assign_job":{"job_id":%q,"node":%q,"score_bp":9}}`, testChain, id, addr(node1Key))
	if got := string(single[txHeader:]); got != want {
		t.Fatalf("single assignment body changed\n got %s\nwant %s", got, want)
	}
	decoded, err := DecodeTx(tx)
	if err != nil || decoded.Body.Kind() != "assign_jobs" || len(decoded.Body.AssignJobs.Assignments) != 1 {
		t.Fatalf("decoded %+v, %v", decoded.Body, err)
	}
}

// TestBatchOfSingles: Batch carries a run of one batchable kind, item for item, and
// refuses anything else, so a sender never builds a batch the ledger would read back
// differently.
func TestBatchOfSingles(t *testing.T) {
	assign := Msg{AssignJob: &MsgAssignJob{JobID: "job-1", ScoreBP: 3}}
	attest := Msg{Attest: &MsgAttest{JobID: "job-2", Pass: true}}
	commit := Msg{CommitResult: &MsgCommitResult{JobID: "job-3", Seal: "s"}}
	for _, items := range [][]Msg{{assign}, {attest, attest}, {commit, commit, commit}} {
		batch, ok := Batch(items)
		if !ok || !reflect.DeepEqual(batch.batchItems(), items) {
			t.Errorf("Batch(%s ×%d) = %+v, %v", items[0].Kind(), len(items), batch, ok)
		}
	}
	reveal := Msg{RevealResult: &MsgRevealResult{JobID: "job-4"}}
	for _, items := range [][]Msg{nil, {assign, attest}, {reveal}, {{}}} {
		if _, ok := Batch(items); ok {
			t.Errorf("Batch(%v) made a batch", items)
		}
	}
}

// BenchmarkBatchValidate is the check every batch gets in CheckTx and again in its block:
// a batch of the most attestations, each item validated as its single message.
func BenchmarkBatchValidate(b *testing.B) {
	m := &MsgAttestJobs{}
	for i := range MaxBatchItems {
		m.Attestations = append(m.Attestations, MsgAttest{JobID: JobID(addr(strangerKey), uint64(i)), ResultDigest: digestA, Pass: true, Ops: ampleOps})
	}
	msg := Msg{AttestJobs: m}
	b.ReportAllocs()
	for b.Loop() {
		if err := msg.ValidateBasic(); err != nil {
			b.Fatal(err)
		}
	}
}
