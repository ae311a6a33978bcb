package ledger

import (
	"crypto/ed25519"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// Sealed commits and reveals on redundant jobs: a replica commits ResultSeal of its digest,
// and reveals open once all three replicas have sealed (RevealsOpen), when no replica can be
// replaced or added any more.

// TestResultSealPinsItsBytes: a seal is "sha256:" and the lower-case hex sha256 of
// "omnisync result seal v1", the job id, the node's address and the digest, joined by
// newlines. The expected values were computed outside Go (Python's hashlib over the same
// bytes), so the preimage cannot drift unnoticed and a node built from other code can seal
// for this ledger.
func TestResultSealPinsItsBytes(t *testing.T) {
	const job, node = "job-0123456789abcdef", keys.Address("8EYKVyNCsDFHkxos7V4kr8bMouYU2nPJ1QXk2ET8FBc7")
	for _, c := range []struct{ digest, want string }{
		{digestA, "sha256:3957b3f561a56d896ad3aa666829050c0c13713f5200ed532c5077c94f948b4a"},
		{digestB, "sha256:1b376c4c8e814776f1befcd4aaf8a08b0142d05b830d18f2c092535db94c5d63"},
	} {
		if got := ResultSeal(job, node, c.digest); got != c.want {
			t.Errorf("ResultSeal(%s, %s, %s) = %s, want %s", job, node, c.digest, got, c.want)
		}
	}
	seal := ResultSeal(job, node, digestA)
	if err := validateDigest("seal", seal); err != nil {
		t.Fatalf("a seal is not a well-formed commit: %v", err)
	}
	for _, other := range []string{
		ResultSeal("job-0123456789abcdee", node, digestA), ResultSeal(job, addr(node2Key), digestA), ResultSeal(job, node, digestB),
	} {
		if other == seal {
			t.Fatal("another job, node or digest gives the same seal")
		}
	}
}

// TestRevealsOpenPinsTheCount: reveals open at three seals, not before, however many
// replicas are placed; reveals already made do not close them.
func TestRevealsOpenPinsTheCount(t *testing.T) {
	const id = "job-0000000000000000"
	nodes := []ed25519.PrivateKey{node1Key, node2Key, node3Key}
	for sealed := range RedundantReplicas + 1 {
		j := Job{ID: id, Verification: VerifyRedundant}
		for i, k := range nodes {
			r := Replica{Node: addr(k)}
			if i < sealed {
				r.Seal = ResultSeal(id, addr(k), digestA)
			}
			j.Replicas = append(j.Replicas, r)
		}
		if got, want := RevealsOpen(j), sealed == 3; got != want {
			t.Errorf("%d of 3 sealed: RevealsOpen %v, want %v", sealed, got, want)
		}
		if sealed < 3 {
			if RevealsOpen(Job{ID: id, Replicas: j.Replicas[:sealed]}) {
				t.Errorf("%d placed, all sealed: reveals open", sealed)
			}
			continue
		}
		j.Replicas[0].ResultDigest = digestA
		if !RevealsOpen(j) {
			t.Error("a reveal closed reveals")
		}
	}
}

// notAllSealed is the log of a reveal refused while only n of job id's replicas have sealed.
func notAllSealed(id string, n int) string {
	return fmt.Sprintf("%d of job %s's 3 replicas have sealed; reveals open once all have", n, id)
}

// TestRedundantRevealRules: reveals open once all three replicas have sealed; a replica
// reveals once, and only a digest that opens its own seal, and a wrong one is refused and
// changes nothing. By then the replicas are fixed: a sealed replica cannot be replaced, a
// fourth cannot be added, and none seals twice. The job is decided on the last reveal.
// Before then the router may still add the third replica or replace one whose node failed
// before it sealed, and reveals wait for its seal.
func TestRedundantRevealRules(t *testing.T) {
	h := redundantHarness(t)
	id := newRedundantJob(t, h, omni)
	refused(t, h, node1Key, reveal(id, digestA), CodeBadState, "not awaiting a result")
	for _, k := range []ed25519.PrivateKey{node1Key, node2Key, node3Key} {
		h.mustDo(routerKey, place(id, k))
	}
	h.mustDo(node1Key, seal(id, node1Key, digestA, 1000))
	refused(t, h, node1Key, reveal(id, digestA), CodeBadState, notAllSealed(id, 1))
	h.mustDo(node2Key, seal(id, node2Key, digestA, 1000))
	for _, k := range []ed25519.PrivateKey{node1Key, node2Key} { // two agree, but the third has not sealed
		refused(t, h, k, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
	}
	refused(t, h, node3Key, reveal(id, digestA), CodeUnauthorized, "sealed no result")
	h.mustDo(node3Key, seal(id, node3Key, digestB, 1000))

	refused(t, h, node3Key, seal(id, node3Key, digestA, 1000), CodeDuplicate, "already committed")
	refused(t, h, routerKey, replace(id, node4Key, node3Key), CodeBadState, "has sealed its result")
	refused(t, h, routerKey, place(id, node4Key), CodeBadState, "already has 3 replicas")
	for _, d := range []string{digestB, ResultSeal(id, addr(node1Key), digestA)} { // another digest; the seal itself
		refused(t, h, node1Key, reveal(id, d), CodeInvalidMsg, "the revealed digest does not open the seal")
	}

	h.mustDo(node1Key, reveal(id, digestA))
	if r := query[Job](h, "job/"+id).Replicas[0]; r.ResultDigest != digestA || !r.Revealed() {
		t.Fatalf("revealed replica %+v", r)
	}
	refused(t, h, node1Key, reveal(id, digestA), CodeDuplicate, "already revealed")
	refused(t, h, node3Key, seal(id, node3Key, digestA, 1000), CodeBadState, "reveals have begun")
	refused(t, h, routerKey, replace(id, node4Key, node3Key), CodeBadState, "reveals have begun")
	refused(t, h, node2Key, reveal(id, digestB), CodeInvalidMsg, "does not open the seal")
	h.mustDo(node2Key, reveal(id, digestA))
	if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
		t.Fatalf("two matching reveals, the third to come: job is %s, want it waiting", j.Status)
	}
	h.mustDo(node3Key, reveal(id, digestB))
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || len(j.Settlement.Shares) != 2 {
		t.Fatalf("two matching reveals of three: job is %s, settlement %+v", j.Status, j.Settlement)
	}

	// Two replicas placed and sealed: reveals wait while the router adds the third, and
	// while it replaces that one, whose node failed before it sealed, by node4.
	id = newRedundantJob(t, h, omni)
	h.mustDo(routerKey, place(id, node1Key))
	h.mustDo(routerKey, place(id, node2Key))
	h.mustDo(node1Key, seal(id, node1Key, digestA, 1000))
	h.mustDo(node2Key, seal(id, node2Key, digestA, 1000))
	refused(t, h, node1Key, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
	h.mustDo(routerKey, place(id, node3Key))
	refused(t, h, node1Key, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
	h.mustDo(routerKey, replace(id, node4Key, node3Key))
	refused(t, h, node3Key, seal(id, node3Key, digestA, 1000), CodeUnauthorized, "not a replica")
	h.mustDo(node4Key, seal(id, node4Key, digestA, 1000))
	if j := query[Job](h, "job/"+id); !RevealsOpen(j) || j.Replicas[2].Node != addr(node4Key) {
		t.Fatalf("three sealed, node4 in node3's place: reveals open %v, replicas %+v", RevealsOpen(j), j.Replicas)
	}
	h.mustDo(node4Key, reveal(id, digestA))
	h.mustDo(node1Key, reveal(id, digestA))
	h.mustDo(node2Key, reveal(id, digestA))
	if j := query[Job](h, "job/"+id); j.Status != JobSettled || !reflect.DeepEqual(shareNodes(j), keyAddrs([]ed25519.PrivateKey{node1Key, node2Key, node4Key})) {
		t.Fatalf("job %s, settlement %+v; want node1, node2 and node4 paid", j.Status, j.Settlement)
	}
	h.checkBooks()
}

// TestRedundantRevealOutcomes: the job is decided on revealed digests only, once all three
// replicas have sealed, and not before all three have revealed: a replica still to reveal
// could agree with any digest revealed so far. Then a digest revealed by two or three
// settles it, paying every replica that revealed it; one that revealed another digest is
// outvoted; with no two alike it fails, refunded in full. A replica that never reveals
// leaves the job to its deadline, which settles it on the reveals it has if two agree,
// marking the silent one as withholding, whatever its seal hides, and otherwise refunds
// it, no one paid or marked.
func TestRedundantRevealOutcomes(t *testing.T) {
	a, b, c := node1Key, node2Key, node3Key
	type sealed struct {
		k      ed25519.PrivateKey
		digest string
	}
	ks := func(k ...ed25519.PrivateKey) []ed25519.PrivateKey { return k }
	for _, tc := range []struct {
		name     string
		seals    []sealed
		reveals  []ed25519.PrivateKey // every status after a reveal but the last is assigned
		last     string               // the status after the last reveal
		deadline string               // the status after the deadline, when the last leaves it assigned
		paid     []ed25519.PrivateKey
		outvoted []ed25519.PrivateKey
		withheld []ed25519.PrivateKey
	}{
		{"three reveal alike: all three paid", []sealed{{c, digestA}, {a, digestA}, {b, digestA}},
			ks(b, a, c), JobSettled, "", ks(a, b, c), nil, nil},
		{"A and B disagree, C agrees with A: A and C paid, B outvoted", []sealed{{a, digestA}, {b, digestB}, {c, digestA}},
			ks(a, b, c), JobSettled, "", ks(a, c), ks(b), nil},
		{"B disagrees last: A and C paid, B outvoted", []sealed{{a, digestA}, {b, digestB}, {c, digestA}},
			ks(c, a, b), JobSettled, "", ks(a, c), ks(b), nil},
		{"all three reveal different digests: inconclusive on the last reveal", []sealed{{a, digestA}, {b, digestB}, {c, digestC}},
			ks(c, b, a), JobFailed, "", nil, nil, nil},
		{"three sealed alike, C never reveals: A and B paid at the deadline, C withheld", []sealed{{c, digestA}, {a, digestA}, {b, digestA}},
			ks(b, a), JobAssigned, JobSettled, ks(a, b), nil, ks(c)},
		{"A and B agree, C sealed another and never reveals: A and B paid at the deadline, C withheld", []sealed{{a, digestA}, {b, digestA}, {c, digestB}},
			ks(a, b), JobAssigned, JobSettled, ks(a, b), nil, ks(c)},
		{"A and B reveal different digests, C never reveals: refunded at the deadline", []sealed{{a, digestA}, {b, digestB}, {c, digestA}},
			ks(b, a), JobAssigned, JobExpired, nil, nil, nil},
		{"only A reveals: refunded at the deadline", []sealed{{a, digestA}, {b, digestA}, {c, digestA}},
			ks(a), JobAssigned, JobExpired, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := redundantHarness(t)
			c0 := h.balance(consumerKey)
			id := newRedundantJobFor(t, h, omni, 30)
			nodes, balances := map[keys.Address]Node{}, map[keys.Address]uint64{}
			for _, k := range ks(a, b, c) {
				h.mustDo(routerKey, place(id, k))
				nodes[addr(k)], balances[addr(k)] = query[Node](h, "node/"+string(addr(k))), h.balance(k)
			}
			digest := map[keys.Address]string{}
			for _, s := range tc.seals {
				h.mustDo(s.k, seal(id, s.k, s.digest, 1000))
				digest[addr(s.k)] = s.digest
			}
			for i, k := range tc.reveals {
				h.mustDo(k, reveal(id, digest[addr(k)]))
				want := JobAssigned
				if i == len(tc.reveals)-1 {
					want = tc.last
				}
				if st := query[Job](h, "job/"+id).Status; st != want {
					t.Fatalf("after reveal %d the job is %s, want %s", i+1, st, want)
				}
			}
			if tc.last == JobAssigned {
				res := atDeadline(t, h, id)
				if st := query[Job](h, "job/"+id).Status; st != tc.deadline {
					t.Fatalf("at its deadline the waiting job ended %s, want %s", st, tc.deadline)
				}
				var withheld []keys.Address
				for _, e := range res.Events {
					if e.Type == "replica_withheld" {
						withheld = append(withheld, keys.Address(attrOf(e, "node")))
					}
				}
				if want := keyAddrs(tc.withheld); !reflect.DeepEqual(withheld, want) {
					t.Fatalf("withheld %v, want %v", withheld, want)
				}
			}
			j := query[Job](h, "job/"+id)
			if want := keyAddrs(tc.paid); !reflect.DeepEqual(shareNodes(j), want) {
				t.Fatalf("paid %v, want %v", shareNodes(j), want)
			}
			if (j.Status == JobFailed || j.Status == JobExpired) && (j.Settlement.Refunded != omni || h.balance(consumerKey) != c0) {
				t.Fatalf("%s job refunded %d; consumer has %d of %d", j.Status, j.Settlement.Refunded, h.balance(consumerKey), c0)
			}
			for _, k := range ks(a, b, c) {
				want, paid := nodes[addr(k)], contains(keyAddrs(tc.paid), addr(k))
				switch {
				case paid:
					want.JobsVerified++
				case contains(keyAddrs(tc.outvoted), addr(k)), contains(keyAddrs(tc.withheld), addr(k)):
					want.JobsFailed++
				}
				if got := query[Node](h, "node/"+string(addr(k))); got != want {
					t.Errorf("node %s: %+v, want %+v", addr(k), got, want)
				}
				if gained := h.balance(k) > balances[addr(k)]; gained != paid || h.balance(k) < balances[addr(k)] {
					t.Errorf("node %s: balance %d, was %d; paid: %v", addr(k), h.balance(k), balances[addr(k)], paid)
				}
			}
			h.checkBooks()
		})
	}
}

// shareNodes is who j's settlement paid, in order; nil for a job not settled.
func shareNodes(j Job) []keys.Address {
	if j.Status != JobSettled {
		return nil
	}
	var out []keys.Address
	for _, sh := range j.Settlement.Shares {
		out = append(out, sh.Node)
	}
	return out
}

// keyAddrs is the addresses of ks, nil for none.
func keyAddrs(ks []ed25519.PrivateKey) []keys.Address {
	var out []keys.Address
	for _, k := range ks {
		out = append(out, addr(k))
	}
	return out
}

// TestRedundantCopycatIsNeverPaid: replica B runs nothing and copies what honest replica A
// puts on chain. Copying A's seal verbatim gets it nothing: the seal opens only as A's, so
// no digest B reveals opens it, the true one included. Nor can B wait for A's digest to
// be revealed and seal that: reveals open only once B has sealed, and the router may put
// another node in the place of one that does not seal. Nor can B hold A and C's pay
// hostage by never revealing: at the deadline A and C, who ran the job and agree, settle
// it and are paid, and B, which sealed and never revealed, is marked for withholding.
// The most a copycat can do is stall a job it shares with a liar: the liar and A
// disagree, B can reveal nothing, so no two can ever agree and the job expires, refunded,
// no one paid or marked.
func TestRedundantCopycatIsNeverPaid(t *testing.T) {
	a, b, c := node1Key, node2Key, node3Key
	start := func(t *testing.T, timeout uint64) (*harness, string, Node, uint64) {
		h := redundantHarness(t)
		id := newRedundantJobFor(t, h, omni, timeout)
		for _, k := range []ed25519.PrivateKey{a, b, c} {
			h.mustDo(routerKey, place(id, k))
		}
		return h, id, query[Node](h, "node/"+string(addr(b))), h.balance(b)
	}
	// copySeal is B's commit of the seal A committed, read from the chain.
	copySeal := func(h *harness, id string) Msg {
		j := query[Job](h, "job/"+id)
		return Msg{CommitResult: &MsgCommitResult{JobID: id, Seal: j.Replicas[replicaIndex(j, addr(a))].Seal, GPUMillis: 1}}
	}
	// bCannotReveal: nothing B reveals opens its copied seal.
	bCannotReveal := func(t *testing.T, h *harness, id string) {
		t.Helper()
		for _, d := range []string{digestA, digestB, ResultSeal(id, addr(a), digestA)} {
			refused(t, h, b, reveal(id, d), CodeInvalidMsg, "the revealed digest does not open the seal")
		}
	}
	// bUnpaid: the copycat was not paid, gained no verified job and failed failed ones.
	bUnpaid := func(t *testing.T, h *harness, bNode Node, bBalance, failed uint64) {
		t.Helper()
		bNode.JobsFailed += failed
		if n := query[Node](h, "node/"+string(addr(b))); n != bNode || h.balance(b) != bBalance {
			t.Fatalf("the copycat: %+v, balance %d; want %+v, %d", n, h.balance(b), bNode, bBalance)
		}
	}
	// honestPaid: the honest replicas settled the job, billed millis, and were paid.
	honestPaid := func(t *testing.T, h *harness, id string, millis uint64, honest ...ed25519.PrivateKey) {
		t.Helper()
		j := query[Job](h, "job/"+id)
		if j.Status != JobSettled || !reflect.DeepEqual(shareNodes(j), keyAddrs(honest)) {
			t.Fatalf("job %s, settlement %+v; want %v paid", j.Status, j.Settlement, keyAddrs(honest))
		}
		if j.GPUMillis != millis {
			t.Fatalf("billed %d ms, want %d (B's claim of 1 ms counts for nothing)", j.GPUMillis, millis)
		}
		refused(t, h, b, reveal(id, digestA), CodeBadState, "not awaiting a result")
		h.checkBooks()
	}
	// untilDeadline: A and C have revealed and agree, B cannot reveal; the job waits for B
	// until its deadline, which settles it on A's and C's reveals and marks B withheld (and
	// the block after pays the validators their part of the fee).
	untilDeadline := func(t *testing.T, h *harness, id string) {
		t.Helper()
		if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
			t.Fatalf("A and C agree, B cannot reveal: job is %s, want it waiting for B", j.Status)
		}
		res := atDeadline(t, h, id)
		var withheld []string
		for _, e := range res.Events {
			if e.Type == "replica_withheld" {
				withheld = append(withheld, attrOf(e, "node"))
			}
		}
		if !reflect.DeepEqual(withheld, []string{string(addr(b))}) {
			t.Fatalf("withheld %v, want B", withheld)
		}
		h.finalize(h.next(time.Second))
	}

	t.Run("copies A's seal verbatim as the third seal", func(t *testing.T) {
		h, id, bNode, bBalance := start(t, 600)
		h.mustDo(a, seal(id, a, digestA, 50_000))
		h.mustDo(c, seal(id, c, digestA, 40_000))
		h.mustDo(b, copySeal(h, id))
		if !RevealsOpen(query[Job](h, "job/"+id)) {
			t.Fatal("three seals, one of them copied: reveals are not open")
		}
		bCannotReveal(t, h, id)
		refused(t, h, b, seal(id, b, digestA, 1), CodeDuplicate, "already committed")
		h.mustDo(a, reveal(id, digestA))
		bCannotReveal(t, h, id)
		h.mustDo(c, reveal(id, digestA))
		bCannotReveal(t, h, id)
		untilDeadline(t, h, id)
		honestPaid(t, h, id, 40_000, a, c)
		bUnpaid(t, h, bNode, bBalance, 1)
	})
	t.Run("copies A's seal as the second seal: C still seals", func(t *testing.T) {
		h, id, bNode, bBalance := start(t, 600)
		h.mustDo(a, seal(id, a, digestA, 50_000))
		h.mustDo(b, copySeal(h, id))
		refused(t, h, a, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
		h.mustDo(c, seal(id, c, digestA, 40_000))
		h.mustDo(a, reveal(id, digestA))
		bCannotReveal(t, h, id)
		h.mustDo(c, reveal(id, digestA))
		untilDeadline(t, h, id)
		honestPaid(t, h, id, 40_000, a, c)
		bUnpaid(t, h, bNode, bBalance, 1)
	})
	t.Run("waits for A's digest to seal it: none comes, and it is replaced", func(t *testing.T) {
		h, id, bNode, bBalance := start(t, 600)
		h.mustDo(a, seal(id, a, digestA, 50_000))
		h.mustDo(c, seal(id, c, digestA, 40_000))
		refused(t, h, a, reveal(id, digestA), CodeBadState, notAllSealed(id, 2))
		refused(t, h, b, reveal(id, digestA), CodeUnauthorized, "sealed no result")
		h.mustDo(routerKey, replace(id, node4Key, b))
		refused(t, h, b, seal(id, b, digestA, 1), CodeUnauthorized, "not a replica")
		h.mustDo(node4Key, seal(id, node4Key, digestA, 45_000))
		h.mustDo(a, reveal(id, digestA))
		h.mustDo(c, reveal(id, digestA))
		h.mustDo(node4Key, reveal(id, digestA))
		if j := query[Job](h, "job/"+id); replicaIndex(j, addr(b)) >= 0 {
			t.Fatalf("B is still a replica: %+v", j.Replicas)
		}
		honestPaid(t, h, id, 45_000, a, node4Key, c) // in B's place; the median of 50,000, 40,000 and 45,000
		bUnpaid(t, h, bNode, bBalance, 0)            // replaced, it was no replica when the job settled
	})
	t.Run("a liar, a copycat and one honest replica: no quorum, expires refunded", func(t *testing.T) {
		h, id, bNode, bBalance := start(t, 30)
		liar := c
		c0 := h.balance(consumerKey) + omni
		before := map[keys.Address]Node{}
		balances := map[keys.Address]uint64{}
		for _, k := range []ed25519.PrivateKey{a, liar} {
			before[addr(k)], balances[addr(k)] = query[Node](h, "node/"+string(addr(k))), h.balance(k)
		}
		h.mustDo(a, seal(id, a, digestA, 50_000))
		h.mustDo(liar, seal(id, liar, digestB, 1))
		h.mustDo(b, copySeal(h, id))
		h.mustDo(a, reveal(id, digestA))
		h.mustDo(liar, reveal(id, digestB))
		bCannotReveal(t, h, id)
		if j := query[Job](h, "job/"+id); j.Status != JobAssigned {
			t.Fatalf("A and the liar disagree, B cannot reveal: job is %s, want it waiting", j.Status)
		}
		atDeadline(t, h, id)
		if j := query[Job](h, "job/"+id); j.Status != JobExpired || j.Settlement.Refunded != omni || h.balance(consumerKey) != c0 {
			t.Fatalf("stalled job %s, settlement %+v; consumer has %d, want %d back", j.Status, j.Settlement, h.balance(consumerKey), c0)
		}
		bUnpaid(t, h, bNode, bBalance, 0) // with no quorum no one can tell who was right
		for _, k := range []ed25519.PrivateKey{a, liar} {
			if n := query[Node](h, "node/"+string(addr(k))); n != before[addr(k)] || h.balance(k) != balances[addr(k)] {
				t.Errorf("node %s was paid or marked: %+v, balance %d", addr(k), n, h.balance(k))
			}
		}
		h.checkBooks()
	})
}
