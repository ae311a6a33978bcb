package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"

	"github.com/omnisync/omnisync/internal/keys"
)

// Genesis is the ledger's initial state (the app_state of the CometBFT genesis file).
type Genesis struct {
	// Supply is the declared total; balances, validator stakes and pools must add up to it.
	Supply     uint64            `json:"supply"`
	Params     Params            `json:"params"`
	Accounts   []GenesisAccount  `json:"accounts"`
	Validators []Validator       `json:"validators"`
	Pools      map[string]uint64 `json:"pools"`
}

// GenesisAccount is a funded account at genesis, optionally under a vesting schedule
// (Vesting.Total must not exceed Balance).
type GenesisAccount struct {
	Address keys.Address `json:"address"`
	Balance uint64       `json:"balance"`
	Vesting *Vesting     `json:"vesting,omitempty"`
}

// GenesisSupply is the whitepaper's total: 1,000,000,000 OMNI.
const GenesisSupply = 1_000_000_000 * UomniPerOMNI

// ParseGenesis decodes and validates a genesis document.
func ParseGenesis(b []byte) (Genesis, error) {
	var g Genesis
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("%w: genesis: %v", ErrDecode, err)
	}
	return g, g.Validate()
}

// Validate checks that the genesis is well formed and that its parts add up to its supply.
func (g Genesis) Validate() error {
	if err := g.Params.Validate(); err != nil {
		return fmt.Errorf("genesis params: %w", err)
	}
	if len(g.Validators) == 0 {
		return fmt.Errorf("%w: genesis needs at least one validator", ErrInvalidMsg)
	}
	seen := map[keys.Address]bool{}
	var total uint64
	var err error
	for _, a := range g.Accounts {
		if err := a.Address.Validate(); err != nil {
			return fmt.Errorf("genesis account: %w", err)
		}
		if seen[a.Address] {
			return fmt.Errorf("%w: genesis account %s listed twice", ErrDuplicate, a.Address)
		}
		seen[a.Address] = true
		if a.Vesting != nil {
			if err := a.Vesting.validate(); err != nil {
				return fmt.Errorf("genesis account %s: %w", a.Address, err)
			}
			if a.Vesting.Total > a.Balance {
				return fmt.Errorf("%w: genesis account %s vests more than its balance", ErrInvalidAmount, a.Address)
			}
		}
		if total, err = add(total, a.Balance); err != nil {
			return err
		}
	}
	vseen, kseen := map[keys.Address]bool{}, map[string]bool{}
	for _, v := range g.Validators {
		if err := v.Address.Validate(); err != nil {
			return fmt.Errorf("genesis validator: %w", err)
		}
		if len(v.PubKey) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: genesis validator %s needs a 32-byte ed25519 consensus key", ErrInvalidMsg, v.Address)
		}
		if vseen[v.Address] || kseen[string(v.PubKey)] {
			return fmt.Errorf("%w: genesis validator %s or its key listed twice", ErrDuplicate, v.Address)
		}
		vseen[v.Address], kseen[string(v.PubKey)] = true, true
		if v.Stake < g.Params.MinValidatorStake {
			return fmt.Errorf("%w: genesis validator %s stakes %s OMNI, minimum %s", ErrStakeTooLow, v.Address, FormatOMNI(v.Stake), FormatOMNI(g.Params.MinValidatorStake))
		}
		if total, err = add(total, v.Stake); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(g.Pools) {
		if total, err = add(total, g.Pools[name]); err != nil {
			return err
		}
	}
	if total != g.Supply {
		return fmt.Errorf("%w: genesis allocations add up to %d uomni, declared supply is %d", ErrInvalidAmount, total, g.Supply)
	}
	return nil
}

func (g Genesis) apply(st state) error {
	sp := Supply{Genesis: g.Supply, Pools: map[string]uint64{}}
	for _, name := range []string{PoolRewards, PoolEcosystem, PoolBuyback, PoolValidatorRewards} {
		sp.Pools[name] = 0
	}
	for name, v := range g.Pools {
		sp.Pools[name] = v
	}
	for _, a := range g.Accounts {
		if err := st.credit(&sp, a.Address, a.Balance); err != nil {
			return err
		}
		if a.Vesting != nil {
			acc, err := st.account(a.Address)
			if err != nil {
				return err
			}
			acc.Vesting = a.Vesting
			if err := st.setAccount(acc); err != nil {
				return err
			}
			if err := st.kv.Set(append(append([]byte{}, prefixVest...), a.Address...), []byte{1}); err != nil {
				return err
			}
		}
	}
	for _, v := range g.Validators {
		sp.Staked += v.Stake
		if err := st.put(valKey(v.Address), v); err != nil {
			return err
		}
		if err := st.kv.Set(valConsKey(consAddress(v.PubKey)), []byte(v.Address)); err != nil {
			return err
		}
	}
	if err := st.put(keyParams, g.Params); err != nil {
		return err
	}
	return st.put(keySupply, sp)
}

// Month is 1/12 of a Julian year, the unit of the vesting schedules.
const Month = 2_629_800 // seconds

// Beneficiaries are who receives the whitepaper's allocations (§5). Each group's share is
// split evenly among its addresses; Carve lists accounts (demo consumers, node operators)
// paid out of the public-sale allocation, and each validator's stake comes from it too.
type Beneficiaries struct {
	Team       []keys.Address
	Investors  []keys.Address
	PublicSale []keys.Address
	Liquidity  []keys.Address
	Carve      []GenesisAccount
	Validators []Validator
}

// Tokenomics builds the whitepaper's genesis: 1,000,000,000 OMNI of which network rewards
// 40% (module pool), ecosystem and grants 20% (treasury), team 15% (36 months linear after
// a 6-month cliff), seed and private sale 12% (12 months linear after a 3-month cliff),
// public sale 8% and liquidity 5% (unlocked). start is the genesis time (unix seconds).
func Tokenomics(start int64, params Params, b Beneficiaries) (Genesis, error) {
	pct := func(n uint64) uint64 { return GenesisSupply / 100 * n }
	g := Genesis{
		Supply: GenesisSupply, Params: params, Validators: b.Validators,
		Pools: map[string]uint64{PoolRewards: pct(40), PoolEcosystem: pct(20)},
	}
	split := func(group string, total uint64, to []keys.Address, v func(uint64) *Vesting) error {
		if len(to) == 0 {
			return fmt.Errorf("%w: no %s beneficiaries", ErrInvalidMsg, group)
		}
		each := total / uint64(len(to))
		for i, a := range to {
			amt := each
			if i == 0 {
				amt += total - each*uint64(len(to)) // the remainder of an uneven split
			}
			g.Accounts = append(g.Accounts, GenesisAccount{Address: a, Balance: amt, Vesting: v(amt)})
		}
		return nil
	}
	vest := func(cliffMonths, linearMonths int64) func(uint64) *Vesting {
		return func(amt uint64) *Vesting {
			cliff := start + cliffMonths*Month
			return &Vesting{Total: amt, CliffUnix: cliff, EndUnix: cliff + linearMonths*Month}
		}
	}
	unlocked := func(uint64) *Vesting { return nil }
	public := pct(8)
	for _, c := range b.Carve {
		if c.Balance > public {
			return Genesis{}, fmt.Errorf("%w: carve-outs exceed the public-sale allocation", ErrInvalidAmount)
		}
		public -= c.Balance
		g.Accounts = append(g.Accounts, c)
	}
	for _, v := range b.Validators {
		if v.Stake > public {
			return Genesis{}, fmt.Errorf("%w: validator stakes exceed the public-sale allocation", ErrInvalidAmount)
		}
		public -= v.Stake
	}
	for _, s := range []struct {
		group string
		total uint64
		to    []keys.Address
		v     func(uint64) *Vesting
	}{
		{"team", pct(15), b.Team, vest(6, 36)},
		{"investor", pct(12), b.Investors, vest(3, 12)},
		{"public sale", public, b.PublicSale, unlocked},
		{"liquidity", pct(5), b.Liquidity, unlocked},
	} {
		if err := split(s.group, s.total, s.to, s.v); err != nil {
			return Genesis{}, err
		}
	}
	return g, g.Validate()
}
