package ledger

import (
	"fmt"

	"github.com/omnisync/omnisync/internal/keys"
)

// Vesting locks Total uomni of an account until CliffUnix, then releases it linearly
// until EndUnix ("N-month linear vesting after an M-month cliff"). Block time decides.
type Vesting struct {
	Total     uint64 `json:"total"`
	CliffUnix int64  `json:"cliff_unix"`
	EndUnix   int64  `json:"end_unix"`
}

// Locked is how much of Total is still locked at time now.
func (v *Vesting) Locked(now int64) uint64 {
	switch {
	case v == nil || now >= v.EndUnix:
		return 0
	case now < v.CliffUnix:
		return v.Total
	}
	vested, _ := mulDiv(v.Total, uint64(now-v.CliffUnix), uint64(v.EndUnix-v.CliffUnix), false)
	return v.Total - vested
}

func (v *Vesting) validate() error {
	if v.Total == 0 || v.EndUnix <= v.CliffUnix {
		return fmt.Errorf("%w: vesting needs a positive total and an end after its cliff", ErrInvalidMsg)
	}
	return nil
}

// bonded is everything an account has staked or unbonding, in every role.
func (s state) bonded(a keys.Address) (uint64, error) {
	var total uint64
	n, _, err := s.node(a)
	if err != nil {
		return 0, err
	}
	v, _, err := s.validator(a)
	if err != nil {
		return 0, err
	}
	total = n.Stake + v.Stake
	err = s.unbondings(a, func(u Unbonding) bool { total += u.Amount; return true })
	return total, err
}

// lockedInBalance is the part of an account's balance that vesting still locks: locked
// tokens that are staked or unbonding are not in the balance.
func (s state) lockedInBalance(acc Account, now int64) (uint64, error) {
	locked := acc.Vesting.Locked(now)
	if locked == 0 {
		return 0, nil
	}
	bonded, err := s.bonded(acc.Address)
	if err != nil {
		return 0, err
	}
	if bonded >= locked {
		return 0, nil
	}
	return min(locked-bonded, acc.Balance), nil
}
