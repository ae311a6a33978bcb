package ledger

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/omnisync/omnisync/internal/keys"
)

// Account is a wallet's liquid balance and next sequence number.
type Account struct {
	Address keys.Address `json:"address"`
	Balance uint64       `json:"balance"`
	Seq     uint64       `json:"seq"`
}

// Node is a registered compute supplier.
type Node struct {
	Address          keys.Address `json:"address"`
	Stake            uint64       `json:"stake"`
	PricePerHour     uint64       `json:"price_per_hour"`
	Hardware         Hardware     `json:"hardware"`
	Status           string       `json:"status"`
	RegisteredHeight int64        `json:"registered_height"`
	JobsVerified     uint64       `json:"jobs_verified"`
	JobsFailed       uint64       `json:"jobs_failed"`
}

// NodeActive is the status of a node that may be assigned work.
const NodeActive = "active"

// Validator is an account allowed to attest results; its stake is locked.
type Validator struct {
	Address keys.Address `json:"address"`
	Stake   uint64       `json:"stake"`
}

// Job statuses.
const (
	JobCreated   = "created"
	JobAssigned  = "assigned"
	JobComputed  = "computed"
	JobSettled   = "settled"
	JobFailed    = "failed"
	JobCancelled = "cancelled"
	JobExpired   = "expired"
)

// Attestation is one validator's recorded verdict.
type Attestation struct {
	Validator keys.Address `json:"validator"`
	Pass      bool         `json:"pass"`
	Reason    string       `json:"reason,omitempty"`
	Height    int64        `json:"height"`
}

// Settlement is how a job's escrow was divided. Paid+Burned+Fee+Refunded == Budget.
type Settlement struct {
	BilledMillis uint64 `json:"billed_millis"`
	Cost         uint64 `json:"cost"`
	Paid         uint64 `json:"paid"`
	Burned       uint64 `json:"burned"`
	Fee          uint64 `json:"fee"`
	Refunded     uint64 `json:"refunded"`
	Height       int64  `json:"height"`
}

// Job is the on-chain record of one job from escrow to settlement.
type Job struct {
	ID              string        `json:"id"`
	Consumer        keys.Address  `json:"consumer"`
	SpecHash        string        `json:"spec_hash"`
	Budget          uint64        `json:"budget"`
	MaxPricePerHour uint64        `json:"max_price_per_hour"`
	Verification    string        `json:"verification"`
	TimeoutSeconds  uint64        `json:"timeout_seconds"`
	Status          string        `json:"status"`
	CreatedHeight   int64         `json:"created_height"`
	DeadlineUnix    int64         `json:"deadline_unix"`
	Node            keys.Address  `json:"node,omitempty"`
	PricePerHour    uint64        `json:"price_per_hour,omitempty"`
	ScoreBP         uint32        `json:"score_bp,omitempty"`
	AssignedHeight  int64         `json:"assigned_height,omitempty"`
	ResultDigest    string        `json:"result_digest,omitempty"`
	GPUMillis       uint64        `json:"gpu_millis,omitempty"`
	ResultHeight    int64         `json:"result_height,omitempty"`
	Seed            string        `json:"seed,omitempty"`
	Attestations    []Attestation `json:"attestations,omitempty"`
	Settlement      *Settlement   `json:"settlement,omitempty"`
}

// Open reports whether the job still holds escrow.
func (j *Job) Open() bool {
	return j.Status == JobCreated || j.Status == JobAssigned || j.Status == JobComputed
}

// Supply is the chain-wide accounting. At every height
// Genesis == Liquid + Staked + Escrowed + sum(Pools) + Burned.
type Supply struct {
	Genesis  uint64            `json:"genesis"`
	Liquid   uint64            `json:"liquid"`
	Staked   uint64            `json:"staked"`
	Escrowed uint64            `json:"escrowed"`
	Pools    map[string]uint64 `json:"pools"`
	Burned   uint64            `json:"burned"`
}

// Total adds every bucket; it equals Genesis when the books balance.
func (s Supply) Total() (uint64, error) {
	t := s.Liquid
	var err error
	for _, v := range []uint64{s.Staked, s.Escrowed, s.Burned} {
		if t, err = add(t, v); err != nil {
			return 0, err
		}
	}
	for _, name := range sortedKeys(s.Pools) {
		if t, err = add(t, s.Pools[name]); err != nil {
			return 0, err
		}
	}
	return t, nil
}

func sortedKeys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Pool names.
const (
	PoolFees    = "fees"
	PoolRewards = "network_rewards"
)

// Params are the chain's tunable numbers.
type Params struct {
	BurnBP          uint64         `json:"burn_bp"`
	FeeBP           uint64         `json:"fee_bp"`
	MinNodeStake    uint64         `json:"min_node_stake"`
	MinBilledMillis uint64         `json:"min_billed_millis"`
	Routers         []keys.Address `json:"routers"`
}

// DefaultParams follow the whitepaper where it gives numbers: 2% burn, 500 OMNI node stake.
// The protocol fee is not given there; 5% is our default until governance sets it.
func DefaultParams() Params {
	return Params{
		BurnBP:          200,
		FeeBP:           500,
		MinNodeStake:    500 * UomniPerOMNI,
		MinBilledMillis: 1000,
	}
}

// Validate checks that the parameters can be applied.
func (p Params) Validate() error {
	if p.BurnBP+p.FeeBP > BasisPoints {
		return fmt.Errorf("%w: burn_bp + fee_bp exceeds 10000", ErrInvalidMsg)
	}
	if p.MinNodeStake == 0 {
		return fmt.Errorf("%w: min_node_stake must be positive", ErrInvalidMsg)
	}
	for _, r := range p.Routers {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("%w: router: %v", ErrInvalidMsg, err)
		}
	}
	return nil
}

// Store key layout.
var (
	keyChainID   = []byte("meta/chain_id")
	keyParams    = []byte("meta/params")
	keySupply    = []byte("meta/supply")
	prefixAcct   = []byte("acct/")
	prefixNode   = []byte("node/")
	prefixVal    = []byte("val/")
	prefixJob    = []byte("job/")
	prefixJobExp = []byte("jobexp/")
)

func acctKey(a keys.Address) []byte { return append(append([]byte{}, prefixAcct...), a...) }
func nodeKey(a keys.Address) []byte { return append(append([]byte{}, prefixNode...), a...) }
func valKey(a keys.Address) []byte  { return append(append([]byte{}, prefixVal...), a...) }
func jobKey(id string) []byte       { return append(append([]byte{}, prefixJob...), id...) }

// jobExpKey sorts by deadline so expiry scans stop at the first future entry.
func jobExpKey(deadline int64, id string) []byte {
	return []byte(fmt.Sprintf("%s%016x/%s", prefixJobExp, uint64(deadline), id))
}

// state is typed access to a Reader (and, through kv, writes).
type state struct {
	kv interface {
		Reader
		Set(key, value []byte) error
		Delete(key []byte) error
	}
}

func getJSON[T any](r Reader, key []byte) (T, bool, error) {
	var v T
	b, err := r.Get(key)
	if err != nil || b == nil {
		return v, false, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, false, fmt.Errorf("corrupt state at %q: %w", key, err)
	}
	return v, true, nil
}

func (s state) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.kv.Set(key, b)
}

func (s state) account(a keys.Address) (Account, error) {
	acc, _, err := getJSON[Account](s.kv, acctKey(a))
	acc.Address = a
	return acc, err
}

func (s state) setAccount(acc Account) error { return s.put(acctKey(acc.Address), acc) }

func (s state) params() (Params, error) {
	p, ok, err := getJSON[Params](s.kv, keyParams)
	if err == nil && !ok {
		err = fmt.Errorf("params missing: chain not initialised")
	}
	return p, err
}

func (s state) supply() (Supply, error) {
	sp, ok, err := getJSON[Supply](s.kv, keySupply)
	if err == nil && !ok {
		err = fmt.Errorf("supply missing: chain not initialised")
	}
	return sp, err
}

func (s state) job(id string) (Job, error) {
	j, ok, err := getJSON[Job](s.kv, jobKey(id))
	if err == nil && !ok {
		err = fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	return j, err
}

func (s state) node(a keys.Address) (Node, bool, error) { return getJSON[Node](s.kv, nodeKey(a)) }

func (s state) validators() ([]Validator, error) {
	var out []Validator
	var derr error
	err := s.kv.Iterate(prefixVal, func(_, v []byte) bool {
		var val Validator
		if derr = json.Unmarshal(v, &val); derr != nil {
			return false
		}
		out = append(out, val)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// credit and debit move liquid balance and keep the supply's Liquid bucket in step.
func (s state) credit(sp *Supply, a keys.Address, amt uint64) error {
	acc, err := s.account(a)
	if err != nil {
		return err
	}
	if acc.Balance, err = add(acc.Balance, amt); err != nil {
		return err
	}
	if sp.Liquid, err = add(sp.Liquid, amt); err != nil {
		return err
	}
	return s.setAccount(acc)
}

func (s state) debit(sp *Supply, a keys.Address, amt uint64) error {
	acc, err := s.account(a)
	if err != nil {
		return err
	}
	if acc.Balance < amt {
		return fmt.Errorf("%w: %s has %s OMNI, needs %s OMNI", ErrInsufficientFunds, a, FormatOMNI(acc.Balance), FormatOMNI(amt))
	}
	acc.Balance -= amt
	if sp.Liquid, err = sub(sp.Liquid, amt); err != nil {
		return fmt.Errorf("liquid supply underflow: %w", err)
	}
	return s.setAccount(acc)
}
