package ledger

import (
	"crypto/ed25519"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// TestSupplyIdentityUnderRandomTxs throws random, often invalid, transactions of every type
// from many accounts at the ledger, with double-sign evidence and block times that jump
// ahead, and checks after every block that the books balance and match the stored records,
// that no amount went below zero, that burned tokens never come back and that tokens still
// locked by vesting never left the vester's account (only staked, or slashed). It then
// insists that every outcome occurred, so it cannot pass by doing nothing.
func TestSupplyIdentityUnderRandomTxs(t *testing.T) {
	outcomes, codes := map[string]int{}, map[Code]int{}
	for seed := uint64(1); seed <= 6; seed++ {
		g := richGenesis()
		g.Params.ValidatorAuditBP = 5000 // so that random runs see audits of validators decide
		h := newHarness(t, g)
		s := newSim(h, seed)
		burned := h.supply().Burned
		for range 200 {
			s.apply(s.next())
			h.checkBooks()
			if b := h.supply().Burned; b < burned {
				t.Fatalf("burned went down from %d to %d", burned, b)
			} else {
				burned = b
			}
			v := query[AccountView](h, "account/"+string(addr(vesterKey)))
			if locked := vesterGrant.Locked(h.now.Unix()); v.Balance+v.Bonded+s.vesterSlashed < locked {
				t.Fatalf("vester holds %d (+%d bonded, %d slashed) but %d is still locked: locked tokens left", v.Balance, v.Bonded, s.vesterSlashed, locked)
			}
		}
		for k, n := range s.outcomes {
			outcomes[k] += n
		}
		for c, n := range s.codes {
			codes[c] += n
		}
	}
	for _, want := range []string{
		"transfer", "node_registered", "job_created", "job_assigned", "result_committed", "attested",
		"job_settled", "job_failed", "job_cancelled", "job_expired",
		"result_revealed", "settlement_share", "replica_outvoted", "replica_replaced", "job_failed:inconclusive",
		"replica_withheld", "job_settled:deadline", "challenge_revealed",
		"staked:node", "staked:validator", "unstaked:node", "unstaked:validator", "unbonded",
		"validator_joined", "validator_removed", "staked_locked_tokens",
		"slashed", "double_sign_jailed",
		"proposal_submitted", "voted", "proposal_closed", "proposal_passed:params",
		"proposal_passed:spend", "proposal_rejected:params", "proposal_rejected:spend",
		"buyback_settled", "buyback_burned", "buyback_moved_to_ecosystem",
		"capacity_reported:proven", "capacity_reported:slow", "capacity_reported:wrong",
		"attestations_audit_drawn", "attestation_reported", "attestation_found_false",
	} {
		if outcomes[want] == 0 {
			t.Errorf("random run never produced %q; outcomes %v", want, outcomes)
		}
	}
	for _, want := range []Code{CodeOK, CodeWrongSequence, CodeInsufficientFunds, CodeInvalidAmount, CodeUnauthorized,
		CodeNotFound, CodeBadState, CodeStakeTooLow, CodeInvalidMsg, CodeDuplicate, CodeLocked} {
		if codes[want] == 0 {
			t.Errorf("random run never produced code %d; codes %v", want, codes)
		}
	}
	t.Logf("outcomes %v", outcomes)
	t.Logf("codes %v", codes)
}

func FuzzDecodeTx(f *testing.F) {
	good, _ := SignTx(consumerKey, testChain, 3, createMsg(5))
	f.Add(good)
	redundant, _ := SignTx(consumerKey, testChain, 4, redundantMsg(5))
	f.Add(redundant)
	replace, _ := SignTx(routerKey, testChain, 0, Msg{AssignJob: &MsgAssignJob{JobID: JobID(addr(consumerKey), 4), Node: addr(node3Key), Replaces: addr(node1Key)}})
	f.Add(replace)
	sealed, _ := SignTx(node1Key, testChain, 1, seal(JobID(addr(consumerKey), 4), node1Key, digestA, 1000))
	f.Add(sealed)
	revealed, _ := SignTx(node1Key, testChain, 2, reveal(JobID(addr(consumerKey), 4), digestA))
	f.Add(revealed)
	attested, _ := SignTx(validatorKey, testChain, 0, Msg{Attest: &MsgAttest{JobID: JobID(addr(consumerKey), 3), ResultDigest: digestA, Pass: true, Ops: 524_288, Transcript: aTranscript}})
	f.Add(attested)
	unCounted, _ := SignTx(validatorKey, testChain, 0, Msg{Attest: &MsgAttest{JobID: JobID(addr(consumerKey), 3), ResultDigest: digestA, Pass: true}})
	f.Add(unCounted)
	for _, m := range []Msg{
		assignAll([]string{JobID(addr(consumerKey), 3), JobID(addr(consumerKey), 4)}, node1Key),
		{AttestJobs: &MsgAttestJobs{Attestations: []MsgAttest{{JobID: JobID(addr(consumerKey), 3), ResultDigest: digestA, Pass: true, Ops: 524_288, Transcript: aTranscript}, {JobID: JobID(addr(consumerKey), 4), ResultDigest: digestB, Reason: "mismatch"}}}},
		{CommitResults: &MsgCommitResults{Results: commits([]string{JobID(addr(consumerKey), 3)}, digestA)}},
		{AssignJobs: &MsgAssignJobs{}},
	} {
		batch, _ := SignTx(routerKey, testChain, 1, m)
		f.Add(batch)
	}
	f.Add([]byte{1})
	f.Add(append([]byte{1}, make([]byte, 120)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			if CodeFor(err) == CodeInternal {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		// Anything accepted carries a valid signature by its signer and one message.
		if tx.Body.Kind() == "" {
			t.Fatal("accepted tx without a message")
		}
		if c := tx.Body.CommitResult; c != nil && tx.Body.ValidateBasic() == nil && (c.Seal == "") == (c.ResultDigest == "") {
			t.Fatalf("a commit with seal %q and digest %q passed ValidateBasic", c.Seal, c.ResultDigest)
		}
		if a := tx.Body.Attest; a != nil && tx.Body.ValidateBasic() == nil && a.Pass && a.Ops == 0 {
			t.Fatal("a passing attestation without an operation count passed ValidateBasic")
		}
		if items := tx.Body.batchItems(); tx.Body.ValidateBasic() == nil && items != nil {
			if len(items) == 0 || len(items) > MaxBatchItems {
				t.Fatalf("a batch of %d items passed ValidateBasic", len(items))
			}
			for i, it := range items {
				if err := it.ValidateBasic(); err != nil {
					t.Fatalf("batch passed ValidateBasic with item %d malformed: %v", i, err)
				}
			}
		}
		_ = tx.Body.ValidateBasic()
	})
}

// TestResultFoundWrongUnderRandomReports drives the audit's finding that a settled result
// is wrong, which random runs seldom reach: wrongHarness's six validators with random
// stakes, node1 with a random stake, some or all of it unbonding now and then, a job of
// random length, and then random reports, by anyone about anyone, either finding. After
// every report the books balance and the finding is what the rule says, computed here
// from the validators' stakes: it comes with the report that brings the validators who
// did not pass the job and said its result is wrong, eligible now, above a third of the
// eligible stake, and never again; then node1 lost fraud_slash_bp of its stake and of each
// unbonding entry, the consumer gained the lesser of that and what it paid, and the rest
// of it burned with the validators' slashes.
func TestResultFoundWrongUnderRandomReports(t *testing.T) {
	signers := []ed25519.PrivateKey{validatorKey, validator2Key, vesterKey, strangerKey, lazy1Key, lazy2Key}
	found, unfound := 0, 0
	for seed := uint64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewPCG(seed, 13))
		var stakes [6]uint64
		for i := range stakes {
			stakes[i] = 10_000 + rng.Uint64N(30_000)
		}
		stakes[0] += rng.Uint64N(40_000) // validator and validator2, who did not pass, may hold a third
		stakes[1] += rng.Uint64N(40_000)
		reg := *registerMsg.RegisterNode
		reg.Stake = 500*omni + rng.Uint64N(500*omni)
		h, id := wrongHarness(t, stakes, nil, &reg, 1+rng.Uint64N(600_000))
		switch rng.IntN(3) {
		case 0:
			h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: reg.Stake}})
		case 1:
			h.mustDo(node1Key, Msg{Unstake: &MsgUnstake{Role: RoleNode, Amount: rng.Uint64N(reg.Stake - 500*omni + 1)}})
		}
		p := h.params()
		cost := query[Job](h, "job/"+id).Settlement.Cost
		saidWrong := map[keys.Address]bool{}
		var was *FoundWrong
		for range 20 {
			signer, target := signers[rng.IntN(len(signers))], signers[rng.IntN(len(signers))]
			m := report(id, target)
			if rng.IntN(2) == 0 {
				m = reportWrong(id, target)
			}
			consumer0, burned0 := h.balance(consumerKey), h.supply().Burned
			node0, unbonding0 := query[Node](h, "node/"+string(addr(node1Key))).Stake, query[[]Unbonding](h, "unbonding/"+string(addr(node1Key)))
			r := h.do(signer, m)
			h.checkBooks()
			j := query[Job](h, "job/"+id)
			passed := slices.IndexFunc(j.Attestations, func(a Attestation) bool { return a.Validator == addr(signer) && a.Pass }) >= 0
			if r.Code != CodeOK || was != nil {
				if !reflect.DeepEqual(j.FoundWrong, was) {
					t.Fatalf("seed %d: a refused report, or one after the finding, changed it from %+v to %+v", seed, was, j.FoundWrong)
				}
				continue
			}
			if m.ReportAttestation.ResultWrong && passed {
				t.Fatalf("seed %d: %s passed the job and was let say its result is wrong", seed, addr(signer).Short())
			}
			if !m.ReportAttestation.ResultWrong || saidWrong[addr(signer)] {
				if j.FoundWrong != nil {
					t.Fatalf("seed %d: found wrong by a report that added nobody to those who say so", seed)
				}
				continue
			}
			saidWrong[addr(signer)] = true
			var total, wrong uint64
			for _, v := range query[[]Validator](h, "validators") {
				if v.Eligible(p) {
					total += v.Stake
					if saidWrong[v.Address] {
						wrong += v.Stake
					}
				}
			}
			if want := 3*wrong > total; want != (j.FoundWrong != nil) {
				t.Fatalf("seed %d: validators saying wrong hold %d of %d eligible: found %+v", seed, wrong, total, j.FoundWrong)
			}
			if j.FoundWrong == nil {
				continue
			}
			was = j.FoundWrong
			slashed := shareOf(node0, p.FraudSlashBP)
			for _, ub := range unbonding0 {
				slashed += shareOf(ub.Amount, p.FraudSlashBP)
			}
			var slashes uint64
			for _, e := range r.Events {
				if e.Type == "slashed" {
					amt, _ := attrUint(e, "amount")
					slashes += amt
				}
			}
			back := min(slashed, cost)
			if *was != (FoundWrong{Height: h.height, Slashed: slashed, Compensated: back}) || h.balance(consumerKey) != consumer0+back || h.supply().Burned != burned0+slashes-back {
				t.Fatalf("seed %d: found %+v, the consumer gained %d, %d more burned: want %d slashed of which %d back (the job cost %d)", seed, *was, h.balance(consumerKey)-consumer0, h.supply().Burned-burned0, slashed, back, cost)
			}
		}
		if was != nil {
			found++
		} else {
			unfound++
		}
	}
	if found == 0 || unfound == 0 {
		t.Fatalf("%d runs found the result wrong, %d did not: want both", found, unfound)
	}
	t.Logf("%d runs found the result wrong, %d did not", found, unfound)
}
