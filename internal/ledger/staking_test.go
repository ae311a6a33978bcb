package ledger

import (
	"encoding/json"
	"testing"
	"time"
)

// TestDoubleSignSlashesJailsAndRemovesValidator feeds CometBFT double-sign evidence for a
// validator's consensus address: double_sign_slash_bp of its stake and of its unbonding
// stake is burned, it is jailed, and consensus is told its power is now zero.
func TestDoubleSignSlashesJailsAndRemovesValidator(t *testing.T) {
	g := testGenesis()
	g.Validators = append(g.Validators, Validator{Address: addr(validator2Key), PubKey: pub(cons2Key), Stake: 12_000 * omni})
	h := newHarness(t, withSupply(g))
	h.mustDo(validator2Key, Msg{Unstake: &MsgUnstake{Role: RoleValidator, Amount: 2_000 * omni}})
	burned := h.supply().Burned

	b := h.next(time.Second)
	b.Misbehavior = []Misbehavior{{ConsensusAddress: consAddress(pub(cons2Key)), Height: h.height}}
	res := h.finalize(b)

	// 5% of the 10,000 OMNI bonded and of the 2,000 OMNI unbonding.
	const slashed = 500*omni + 100*omni
	v := query[Validator](h, "validator/"+string(addr(validator2Key)))
	if !v.Jailed || v.Stake != 9_500*omni || v.Power() != 0 {
		t.Fatalf("validator after evidence: %+v", v)
	}
	if ub := query[[]Unbonding](h, "unbonding/"+string(addr(validator2Key))); len(ub) != 1 || ub[0].Amount != 1_900*omni {
		t.Fatalf("unbonding after evidence: %+v", ub)
	}
	if got := h.supply().Burned - burned; got != slashed {
		t.Fatalf("burned %d, want %d", got, slashed)
	}
	if len(res.ValidatorUpdates) != 1 || string(res.ValidatorUpdates[0].PubKey) != string(pub(cons2Key)) || res.ValidatorUpdates[0].Power != 0 {
		t.Fatalf("validator updates %+v, want power 0 for the double signer", res.ValidatorUpdates)
	}
	if len(res.Events) != 1 || res.Events[0].Type != "slashed" {
		t.Fatalf("events %+v", res.Events)
	}
	h.checkBooks()

	// The same evidence again, or evidence for a key the ledger never knew, does nothing.
	before := h.stateHash()
	b = h.next(time.Second)
	b.Misbehavior = []Misbehavior{{ConsensusAddress: consAddress(pub(cons2Key)), Height: 2}, {ConsensusAddress: consAddress(pub(key(99))), Height: 2}}
	if res := h.finalize(b); len(res.Events) != 0 || len(res.ValidatorUpdates) != 0 {
		t.Fatalf("repeated evidence: %+v", res)
	}
	if string(before) != string(h.stateHash()) {
		t.Fatal("repeated evidence changed state")
	}
}

// TestVestedTokensCanBeStakedButNotMoved: tokens a vesting schedule still locks cannot be
// transferred or escrowed, but can be staked; once the schedule ends they are free.
func TestVestedTokensCanBeStakedButNotMoved(t *testing.T) {
	h := newHarness(t, richGenesis())
	vester := "account/" + string(addr(vesterKey))
	if v := query[AccountView](h, vester); v.Locked != 40_000*omni || v.Spendable != 10_000*omni {
		t.Fatalf("before the cliff: %+v", v)
	}
	if r := h.do(vesterKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 10_001 * omni}}); r.Code != CodeLocked {
		t.Fatalf("transfer of locked tokens: code %d (%s)", r.Code, r.Log)
	}
	h.mustDo(vesterKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 5_000 * omni}})
	// 30,000 OMNI staked although only 5,000 may move: the stake is locked tokens.
	h.mustDo(vesterKey, Msg{Stake: &MsgStake{Role: RoleValidator, Amount: 30_000 * omni, PubKey: pub(consVestKey)}})
	v := query[AccountView](h, vester)
	if v.Balance != 15_000*omni || v.Bonded != 30_000*omni || v.Locked != 10_000*omni || v.Spendable != 5_000*omni {
		t.Fatalf("after staking locked tokens: %+v", v)
	}
	if r := h.do(vesterKey, createMsg(5_001*omni)); r.Code != CodeLocked {
		t.Fatalf("escrow of locked tokens: code %d (%s)", r.Code, r.Log)
	}
	if sv := query[SupplyView](h, "supply"); sv.Vesting != 10_000*omni {
		t.Fatalf("supply reports %d vesting, want the 10,000 OMNI locked in the balance", sv.Vesting)
	}
	h.finalize(h.next(time.Hour)) // past the end of the schedule
	if v := query[AccountView](h, vester); v.Locked != 0 || v.Spendable != v.Balance {
		t.Fatalf("after vesting: %+v", v)
	}
	h.mustDo(vesterKey, Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 15_000 * omni}})
	h.checkBooks()
}

func proposeBurn(bp string) Msg {
	return Msg{Propose: &MsgPropose{Title: "burn more", Params: map[string]json.RawMessage{"burn_bp": json.RawMessage(bp)}}}
}

// closeProposal runs empty blocks through the one where proposal id's voting ends.
func closeProposal(h *harness, id uint64) Proposal {
	h.t.Helper()
	p := query[Proposal](h, "proposal/"+u(id))
	for h.height < p.VotingEnd {
		h.block()
	}
	return query[Proposal](h, "proposal/"+u(id))
}

// TestGovernanceParamChangeAppliesAtItsHeight: a passed parameter change applies at the end
// of the block where voting ends, the height it records, and the next block uses it.
func TestGovernanceParamChangeAppliesAtItsHeight(t *testing.T) {
	h := newHarness(t, richGenesis())
	h.mustDo(validatorKey, proposeBurn("300"))
	h.mustDo(validatorKey, Msg{Vote: &MsgVote{ProposalID: 1, Option: VoteYes}})
	p := query[Proposal](h, "proposal/1")
	for h.height < p.VotingEnd-1 {
		h.block()
	}
	send := Msg{Transfer: &MsgTransfer{To: addr(strangerKey), Amount: 1_000 * omni}}
	burned := h.supply().Burned
	h.mustDo(consumerKey, send) // the closing block still burns 2%
	if got := h.supply().Burned - burned; got != 20*omni {
		t.Fatalf("closing block burned %d, want 20 OMNI", got)
	}
	p = query[Proposal](h, "proposal/1")
	if p.Status != ProposalPassed || p.AppliedHeight != p.VotingEnd || p.AppliedHeight != h.height {
		t.Fatalf("proposal %+v at height %d", p, h.height)
	}
	if got := h.params().BurnBP; got != 300 {
		t.Fatalf("burn_bp = %d after the change", got)
	}
	burned = h.supply().Burned
	h.mustDo(consumerKey, send)
	if got := h.supply().Burned - burned; got != 30*omni {
		t.Fatalf("after the change a transfer burned %d, want 30 OMNI", got)
	}
	h.checkBooks()
}

// TestGovernanceRejectsWithoutQuorumOrMajority: too little stake voting rejects a
// proposal, and so does a majority against it; neither changes the parameters.
func TestGovernanceRejectsWithoutQuorumOrMajority(t *testing.T) {
	h := newHarness(t, richGenesis())
	h.mustDo(node1Key, registerMsg) // 500 OMNI of 10,500 staked: under the 33.4% quorum
	h.mustDo(node1Key, proposeBurn("300"))
	h.mustDo(node1Key, Msg{Vote: &MsgVote{ProposalID: 1, Option: VoteYes}})
	if p := closeProposal(h, 1); p.Status != ProposalRejected || p.Result != "quorum not reached" {
		t.Fatalf("proposal 1: %s %q", p.Status, p.Result)
	}
	h.mustDo(node1Key, proposeBurn("300"))
	h.mustDo(node1Key, Msg{Vote: &MsgVote{ProposalID: 2, Option: VoteYes}})
	h.mustDo(validatorKey, Msg{Vote: &MsgVote{ProposalID: 2, Option: VoteNo}})
	if p := closeProposal(h, 2); p.Status != ProposalRejected || p.Result != "threshold not reached" {
		t.Fatalf("proposal 2: %s %q", p.Status, p.Result)
	}
	if got := h.params().BurnBP; got != 200 {
		t.Fatalf("burn_bp = %d after rejected proposals", got)
	}
}

// TestGovernanceTreasurySpend: a passed spend moves tokens out of the ecosystem pool; one
// the pool cannot cover fails and moves nothing.
func TestGovernanceTreasurySpend(t *testing.T) {
	h := newHarness(t, richGenesis())
	pool, stranger := h.supply().Pools[PoolEcosystem], h.balance(strangerKey)
	spend := func(amt uint64) Msg {
		return Msg{Propose: &MsgPropose{Title: "grant", Spend: &Spend{To: addr(strangerKey), Amount: amt}}}
	}
	h.mustDo(validatorKey, spend(1_000*omni))
	h.mustDo(validatorKey, Msg{Vote: &MsgVote{ProposalID: 1, Option: VoteYes}})
	if p := closeProposal(h, 1); p.Status != ProposalPassed {
		t.Fatalf("spend: %s %q", p.Status, p.Result)
	}
	if got := h.balance(strangerKey) - stranger; got != 1_000*omni {
		t.Fatalf("grantee received %d", got)
	}
	if got := pool - h.supply().Pools[PoolEcosystem]; got != 1_000*omni {
		t.Fatalf("treasury paid %d", got)
	}
	h.mustDo(validatorKey, spend(pool))
	h.mustDo(validatorKey, Msg{Vote: &MsgVote{ProposalID: 2, Option: VoteYes}})
	if p := closeProposal(h, 2); p.Status != ProposalFailed {
		t.Fatalf("overspend: %s %q", p.Status, p.Result)
	}
	if got := h.balance(strangerKey) - stranger; got != 1_000*omni {
		t.Fatalf("grantee has %d after the failed spend", got)
	}
	h.checkBooks()
}
