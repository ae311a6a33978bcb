package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/omnisync/omnisync/internal/keys"
)

// Staking roles.
const (
	RoleNode      = "node"
	RoleValidator = "validator"
)

// MsgStake bonds Amount uomni (locked vesting tokens included) as node or validator stake.
// A new validator must give its CometBFT consensus public key (ed25519, 32 bytes); its
// voting power is its stake in whole OMNI. Node stake is added to an existing registration
// (see MsgRegisterNode for the first one).
type MsgStake struct {
	Role   string `json:"role"`
	Amount uint64 `json:"amount"`
	PubKey []byte `json:"pub_key,omitempty"`
}

// MsgUnstake starts unbonding Amount uomni of the signer's stake in Role. What remains
// must be zero (leaving the role) or at least the role's minimum. Unbonding tokens return
// to the balance after the unbonding period and can be slashed until then.
type MsgUnstake struct {
	Role   string `json:"role"`
	Amount uint64 `json:"amount"`
}

// Spend moves tokens from the ecosystem treasury.
type Spend struct {
	To     keys.Address `json:"to"`
	Amount uint64       `json:"amount"`
}

// MsgPropose opens a governance proposal: either parameter changes (JSON values keyed by
// the parameter's JSON name, e.g. {"burn_bp": 300}) or a treasury spend. Only stakers may
// propose.
type MsgPropose struct {
	Title       string                     `json:"title"`
	Description string                     `json:"description,omitempty"`
	Params      map[string]json.RawMessage `json:"params,omitempty"`
	Spend       *Spend                     `json:"spend,omitempty"`
}

// Vote options.
const (
	VoteYes     = "yes"
	VoteNo      = "no"
	VoteAbstain = "abstain"
)

// MsgVote casts the signer's stake-weighted vote on an open proposal.
type MsgVote struct {
	ProposalID uint64 `json:"proposal_id"`
	Option     string `json:"option"`
}

func (m *MsgStake) validate() error {
	if m.Role != RoleNode && m.Role != RoleValidator {
		return fmt.Errorf("%w: role must be %q or %q", ErrInvalidMsg, RoleNode, RoleValidator)
	}
	if m.Amount == 0 {
		return fmt.Errorf("%w: stake amount must be positive", ErrInvalidAmount)
	}
	if len(m.PubKey) != 0 && (m.Role != RoleValidator || len(m.PubKey) != ed25519.PublicKeySize) {
		return fmt.Errorf("%w: pub_key is a validator's 32-byte ed25519 consensus key", ErrInvalidMsg)
	}
	return nil
}

func (m *MsgUnstake) validate() error {
	if m.Role != RoleNode && m.Role != RoleValidator {
		return fmt.Errorf("%w: role must be %q or %q", ErrInvalidMsg, RoleNode, RoleValidator)
	}
	if m.Amount == 0 {
		return fmt.Errorf("%w: unstake amount must be positive", ErrInvalidAmount)
	}
	return nil
}

func (m *MsgPropose) validate() error {
	if m.Title == "" || len(m.Title) > 140 || len(m.Description) > 10_000 {
		return fmt.Errorf("%w: a proposal needs a title of at most 140 bytes and a description of at most 10000", ErrInvalidMsg)
	}
	switch {
	case len(m.Params) > 0 && m.Spend != nil, len(m.Params) == 0 && m.Spend == nil:
		return fmt.Errorf("%w: a proposal changes params or spends from the treasury, exactly one", ErrInvalidMsg)
	case m.Spend != nil:
		if err := m.Spend.To.Validate(); err != nil {
			return fmt.Errorf("%w: spend.to: %v", ErrInvalidMsg, err)
		}
		if m.Spend.Amount == 0 {
			return fmt.Errorf("%w: spend amount must be positive", ErrInvalidAmount)
		}
	default:
		// Check that the changes apply to the defaults; the real check happens again
		// against the live parameters when the proposal passes.
		if _, err := DefaultParams().With(m.Params); err != nil {
			return err
		}
	}
	return nil
}

func (m *MsgVote) validate() error {
	switch m.Option {
	case VoteYes, VoteNo, VoteAbstain:
		return nil
	}
	return fmt.Errorf("%w: option must be yes, no or abstain", ErrInvalidMsg)
}

// With returns a copy of p with changes applied (JSON values keyed by parameter name),
// validated. Unknown names are errors.
func (p Params) With(changes map[string]json.RawMessage) (Params, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return p, err
	}
	names := make([]string, 0, len(changes))
	for name := range changes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := fields[name]; !ok {
			return p, fmt.Errorf("%w: unknown parameter %q", ErrInvalidMsg, name)
		}
		fields[name] = changes[name]
	}
	merged, err := json.Marshal(fields)
	if err != nil {
		return p, err
	}
	var out Params
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return p, fmt.Errorf("%w: parameter value: %v", ErrInvalidMsg, err)
	}
	if err := out.Validate(); err != nil {
		return p, err
	}
	return out, nil
}
