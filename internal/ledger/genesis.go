package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/omnisync/omnisync/internal/keys"
)

// Genesis is the ledger's initial state (the app_state of the CometBFT genesis file).
type Genesis struct {
	// Supply is the declared total; accounts, validator stakes and pools must add up to it.
	Supply     uint64            `json:"supply"`
	Params     Params            `json:"params"`
	Accounts   []GenesisAccount  `json:"accounts"`
	Validators []Validator       `json:"validators"`
	Pools      map[string]uint64 `json:"pools"`
}

// GenesisAccount is a funded account at genesis.
type GenesisAccount struct {
	Address keys.Address `json:"address"`
	Balance uint64       `json:"balance"`
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
		if total, err = add(total, a.Balance); err != nil {
			return err
		}
	}
	vseen := map[keys.Address]bool{}
	for _, v := range g.Validators {
		if err := v.Address.Validate(); err != nil {
			return fmt.Errorf("genesis validator: %w", err)
		}
		if vseen[v.Address] {
			return fmt.Errorf("%w: genesis validator %s listed twice", ErrDuplicate, v.Address)
		}
		vseen[v.Address] = true
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
	sp := Supply{Genesis: g.Supply, Pools: map[string]uint64{PoolFees: 0}}
	for name, v := range g.Pools {
		sp.Pools[name] = v
	}
	for _, a := range g.Accounts {
		if err := st.credit(&sp, a.Address, a.Balance); err != nil {
			return err
		}
	}
	for _, v := range g.Validators {
		sp.Staked += v.Stake
		if err := st.put(valKey(v.Address), v); err != nil {
			return err
		}
	}
	if err := st.put(keyParams, g.Params); err != nil {
		return err
	}
	return st.put(keySupply, sp)
}
