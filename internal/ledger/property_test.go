package ledger

import (
	"testing"
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
