package config

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
)

// Duration is a time.Duration written as a string: "250ms", "10s". A bare number in the
// file is an error rather than a count of nanoseconds.
type Duration struct{ time.Duration }

// D makes a Duration.
func D(d time.Duration) Duration { return Duration{d} }

// MarshalText writes the duration as time.Duration does, e.g. "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration such as "250ms".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration: want e.g. \"250ms\", \"10s\" or \"1m\"", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	d.Duration = v
	return nil
}

// Amount is an amount of OMNI, exact to the uomni, written as decimal OMNI: "0.04".
type Amount struct{ Uomni uint64 }

// OMNI makes an Amount of uomni.
func OMNI(uomni uint64) Amount { return Amount{uomni} }

func (a Amount) String() string { return ledger.FormatOMNI(a.Uomni) }

// MarshalText writes decimal OMNI.
func (a Amount) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads decimal OMNI.
func (a *Amount) UnmarshalText(b []byte) error {
	v, err := ParseOMNI(strings.TrimSpace(string(b)))
	if err != nil {
		return err
	}
	a.Uomni = v
	return nil
}

// omniDecimals is how many decimal places an OMNI amount has: 1 uomni = 10^-6 OMNI.
const omniDecimals = 6

// ParseOMNI converts a decimal OMNI amount ("12.5", "0.000001", "1000") to uomni exactly:
// no floating point, at most six decimal places, and no overflow.
func ParseOMNI(s string) (uint64, error) {
	whole, frac, dotted := strings.Cut(s, ".")
	switch {
	case s == "":
		return 0, errors.New("empty amount")
	case strings.HasPrefix(s, "-"):
		return 0, fmt.Errorf("%q is negative", s)
	case whole == "" || !allDigits(whole) || dotted && (frac == "" || !allDigits(frac)):
		return 0, fmt.Errorf("%q is not a decimal amount of OMNI such as 12.5", s)
	case len(frac) > omniDecimals:
		return 0, fmt.Errorf("%q has more than %d decimal places (1 uomni = 0.000001 OMNI)", s, omniDecimals)
	}
	frac += strings.Repeat("0", omniDecimals-len(frac))
	var n uint64
	for _, c := range whole + frac {
		hi, lo := bits.Mul64(n, 10)
		sum, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, fmt.Errorf("%q is more than the largest amount, %s OMNI", s, ledger.FormatOMNI(math.MaxUint64))
		}
		n = sum
	}
	return n, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
