package ledger

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/omnisync/omnisync/internal/keys"
)

// Misbehavior is consensus evidence CometBFT hands the ledger (a double sign).
type Misbehavior struct {
	ConsensusAddress []byte // sha256(consensus pub key)[:20]
	Height           int64
}

// ValidatorUpdate tells consensus a validator's new voting power (0 removes it).
type ValidatorUpdate struct {
	PubKey []byte
	Power  int64
}

// slash takes bp of an account's stake in role and of its unbonding entries in that
// role (unbonding stake stays slashable) and returns the total taken; the caller decides
// where it goes. A node left below the minimum stake becomes inactive.
func slash(st state, sp *Supply, a keys.Address, role string, bp uint64, p Params) (uint64, error) {
	var taken uint64
	switch role {
	case RoleNode:
		n, ok, err := st.node(a)
		if err != nil || !ok {
			return 0, err
		}
		cut := shareOf(n.Stake, bp)
		n.Stake -= cut
		if n.Stake < p.MinNodeStake {
			n.Status = NodeInactive
		}
		taken = cut
		if err := st.put(nodeKey(a), n); err != nil {
			return 0, err
		}
	case RoleValidator:
		v, ok, err := st.validator(a)
		if err != nil || !ok {
			return 0, err
		}
		cut := shareOf(v.Stake, bp)
		v.Stake -= cut
		taken = cut
		if err := st.put(valKey(a), v); err != nil {
			return 0, err
		}
	}
	var err error
	if sp.Staked, err = sub(sp.Staked, taken); err != nil {
		return 0, fmt.Errorf("staked supply underflow: %w", err)
	}
	var entries []Unbonding
	if err := st.unbondings(a, func(u Unbonding) bool {
		if u.Role == role {
			entries = append(entries, u)
		}
		return true
	}); err != nil {
		return 0, err
	}
	for _, u := range entries {
		cut := shareOf(u.Amount, bp)
		if cut == 0 {
			continue
		}
		u.Amount -= cut
		taken += cut
		if sp.Unbonding, err = sub(sp.Unbonding, cut); err != nil {
			return 0, fmt.Errorf("unbonding supply underflow: %w", err)
		}
		if err := st.put(unbondKey(u.MatureUnix, u.ID), u); err != nil {
			return 0, err
		}
		if err := st.put(unbondAcctKey(u.Address, u.ID), u); err != nil {
			return 0, err
		}
	}
	return taken, nil
}

// punishDoubleSigns slashes and jails validators CometBFT caught signing twice. The
// slashed stake is burned.
func punishDoubleSigns(st state, blk *blockCtx, evidence []Misbehavior) ([]Event, error) {
	var events []Event
	for _, ev := range evidence {
		owner, err := st.kv.Get(valConsKey(ev.ConsensusAddress))
		if err != nil {
			return nil, err
		}
		if owner == nil {
			continue // a key the ledger never knew: nothing to slash
		}
		addr := keys.Address(owner)
		v, ok, err := st.validator(addr)
		if err != nil {
			return nil, err
		}
		if !ok || v.Jailed {
			continue
		}
		amt, err := slash(st, &blk.supply, addr, RoleValidator, blk.params.DoubleSignSlashBP, blk.params)
		if err != nil {
			return nil, err
		}
		if blk.supply.Burned, err = add(blk.supply.Burned, amt); err != nil {
			return nil, err
		}
		if v, _, err = st.validator(addr); err != nil {
			return nil, err
		}
		v.Jailed = true
		if err := st.put(valKey(addr), v); err != nil {
			return nil, err
		}
		blk.markValidator(v)
		events = append(events, Event{Type: "slashed", Attrs: []Attr{
			{"account", string(addr)}, {"role", RoleValidator}, {"amount", u(amt)},
			{"reason", "double sign at height " + strconv.FormatInt(ev.Height, 10)}, {"jailed", "true"},
		}})
	}
	return events, nil
}

// endBlock applies what the block's end decides: the validators' share of its fees, matured
// unbondings, expired jobs, closed audits of attestations, closed proposals and the
// quarterly buy-back.
func endBlock(st state, blk *blockCtx) ([]Event, error) {
	var events []Event
	for _, step := range []func(state, *blockCtx) ([]Event, error){payValidators, matureUnbondings, expireJobs, closeAttestationAudits, tallyProposals, settleBuyback} {
		ev, err := step(st, blk)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	return events, nil
}

// payValidators pays the validators' reward pool (their share of the block's fees and any
// remainder from before) to the active validators pro rata to stake. Paying once per block
// rather than per settlement gives the same shares, with less lost to rounding, and keeps
// a settlement's cost independent of the number of validators.
func payValidators(st state, blk *blockCtx) ([]Event, error) {
	pot := blk.supply.Pools[PoolValidatorRewards]
	if pot == 0 {
		return nil, nil
	}
	vals, err := st.validators()
	if err != nil {
		return nil, err
	}
	var total uint64
	for _, v := range vals {
		if v.Power() > 0 {
			if total, err = add(total, v.Stake); err != nil {
				return nil, err
			}
		}
	}
	if total == 0 {
		return nil, nil
	}
	var paid uint64
	active := 0
	for _, v := range vals {
		if v.Power() == 0 {
			continue
		}
		active++
		share, err := mulDiv(pot, v.Stake, total, false)
		if err != nil {
			return nil, err
		}
		if err := takePool(&blk.supply, PoolValidatorRewards, share); err != nil {
			return nil, err
		}
		if err := st.credit(&blk.supply, v.Address, share); err != nil {
			return nil, err
		}
		paid += share
	}
	if paid == 0 {
		return nil, nil
	}
	return []Event{{Type: "validator_rewards", Attrs: []Attr{{"amount", u(paid)}, {"validators", strconv.Itoa(active)}}}}, nil
}

// due collects the keys under prefix whose 16-hex-digit ordering prefix is <= limit.
func due(st state, prefix []byte, limit uint64) ([][]byte, error) {
	var keys [][]byte
	err := st.kv.Iterate(prefix, func(k, _ []byte) bool {
		var at uint64
		if _, err := fmt.Sscanf(string(k[len(prefix):len(prefix)+16]), "%016x", &at); err != nil || at > limit {
			return false
		}
		keys = append(keys, append([]byte{}, k...))
		return true
	})
	return keys, err
}

func matureUnbondings(st state, blk *blockCtx) ([]Event, error) {
	list, err := due(st, prefixUnbond, uint64(blk.now))
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, k := range list {
		ub, _, err := getRecord[Unbonding](st.kv, k)
		if err != nil {
			return nil, err
		}
		if blk.supply.Unbonding, err = sub(blk.supply.Unbonding, ub.Amount); err != nil {
			return nil, fmt.Errorf("unbonding supply underflow: %w", err)
		}
		if err := st.credit(&blk.supply, ub.Address, ub.Amount); err != nil {
			return nil, err
		}
		if err := st.kv.Delete(k); err != nil {
			return nil, err
		}
		if err := st.kv.Delete(unbondAcctKey(ub.Address, ub.ID)); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "unbonded", Attrs: []Attr{{"account", string(ub.Address)}, {"amount", u(ub.Amount)}}})
	}
	return events, nil
}

// expireJobs closes every open job whose deadline has passed by block time. A redundant job
// whose revealed digests already make a quorum settles on them (expireRedundant): the
// replicas that agree are paid, and one that sealed and never revealed is marked as having
// withheld its reveal. Every other job is refunded in full, and its nodes left alone: a
// node, or a redundant job's replica, that did not finish in time is simply not paid.
func expireJobs(st state, blk *blockCtx) ([]Event, error) {
	list, err := due(st, prefixJobExp, uint64(blk.now))
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, k := range list {
		id := string(k[len(prefixJobExp)+17:])
		j, err := st.job(id)
		if err != nil {
			return nil, err
		}
		if err := st.kv.Delete(k); err != nil {
			return nil, err
		}
		if !j.Open() {
			continue
		}
		if j.Verification == VerifyRedundant {
			ev, settled, err := expireRedundant(st, blk, &j)
			if err != nil {
				return nil, err
			}
			if settled {
				events = append(events, ev...)
				continue
			}
		}
		if err := refundEscrow(st, &blk.supply, &j, JobExpired, blk.height); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "job_expired", Attrs: []Attr{{"job_id", j.ID}, {"refunded", u(j.Budget)}}})
	}
	return events, nil
}

// tallyProposals closes the proposals whose voting ends at this height: a proposal passes
// when the stake that voted reaches the quorum and yes exceeds the threshold of yes+no; a
// passed proposal applies now, at this recorded height.
func tallyProposals(st state, blk *blockCtx) ([]Event, error) {
	list, err := due(st, prefixPropEnd, uint64(blk.height))
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, k := range list {
		var id uint64
		if b, err := st.kv.Get(k); err != nil || json.Unmarshal(b, &id) != nil {
			return nil, fmt.Errorf("corrupt proposal index %q", k)
		}
		prop, _, err := getRecord[Proposal](st.kv, propKey(id))
		if err != nil {
			return nil, err
		}
		voted := prop.Yes + prop.No + prop.Abstain
		p := blk.params
		quorum := voted*BasisPoints >= p.GovQuorumBP*(blk.supply.Staked+blk.supply.Unbonding)
		passes := prop.Yes*BasisPoints > p.GovThresholdBP*(prop.Yes+prop.No)
		switch {
		case !quorum:
			prop.Status, prop.Result = ProposalRejected, "quorum not reached"
		case !passes:
			prop.Status, prop.Result = ProposalRejected, "threshold not reached"
		default:
			prop.Status, prop.AppliedHeight, prop.Result = ProposalPassed, blk.height, "applied"
			if err := applyProposal(st, blk, prop); err != nil {
				prop.Status, prop.AppliedHeight, prop.Result = ProposalFailed, 0, err.Error()
			}
		}
		if err := st.put(propKey(id), prop); err != nil {
			return nil, err
		}
		if err := st.kv.Delete(k); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "proposal_closed", Attrs: []Attr{{"proposal_id", u(id)}, {"status", prop.Status}, {"result", prop.Result}}})
	}
	return events, nil
}

func applyProposal(st state, blk *blockCtx, prop Proposal) error {
	if prop.Spend != nil {
		sp := blk.supply.clone()
		if err := takePool(&sp, PoolEcosystem, prop.Spend.Amount); err != nil {
			return err
		}
		ov := newOverlay(st.kv)
		if err := (state{kv: ov}).credit(&sp, prop.Spend.To, prop.Spend.Amount); err != nil {
			return err
		}
		if err := ov.flush(); err != nil {
			return err
		}
		blk.supply = sp
		return nil
	}
	next, err := blk.params.With(prop.Params)
	if err != nil {
		return err
	}
	blk.params = next
	return st.put(keyParams, next)
}

// settleBuyback ends a quarter: the buy-back fund is burned or moved to the ecosystem
// treasury, as governance last decided (buyback_burn).
func settleBuyback(st state, blk *blockCtx) ([]Event, error) {
	if uint64(blk.height)%blk.params.QuarterBlocks != 0 {
		return nil, nil
	}
	amt := blk.supply.Pools[PoolBuyback]
	if amt == 0 {
		return nil, nil
	}
	blk.supply.setPool(PoolBuyback, 0)
	action := "burned"
	var err error
	if blk.params.BuybackBurn {
		blk.supply.Burned, err = add(blk.supply.Burned, amt)
	} else {
		action = "moved_to_ecosystem"
		err = addPool(&blk.supply, PoolEcosystem, amt)
	}
	return []Event{{Type: "buyback_settled", Attrs: []Attr{{"amount", u(amt)}, {"action", action}}}}, err
}

// validatorUpdates turns the validators whose power may have changed into updates, in
// address order.
func validatorUpdates(st state, blk *blockCtx) ([]ValidatorUpdate, error) {
	addrs := make([]string, 0, len(blk.valChanged))
	for a := range blk.valChanged {
		addrs = append(addrs, string(a))
	}
	sort.Strings(addrs)
	out := make([]ValidatorUpdate, 0, len(addrs))
	for _, a := range addrs {
		v, ok, err := st.validator(keys.Address(a))
		if err != nil {
			return nil, err
		}
		power := int64(0)
		if ok {
			power = v.Power()
		}
		out = append(out, ValidatorUpdate{PubKey: blk.valChanged[keys.Address(a)], Power: power})
	}
	return out, nil
}
