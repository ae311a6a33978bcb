package ledger

import (
	"fmt"
	"math/bits"
)

// UomniPerOMNI is the number of base units in one OMNI.
const UomniPerOMNI uint64 = 1_000_000

// BasisPoints is the denominator of every rate parameter (10000 = 100%).
const BasisPoints uint64 = 10_000

func add(a, b uint64) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return s, nil
}

func sub(a, b uint64) (uint64, error) {
	if b > a {
		return 0, fmt.Errorf("%w: %d - %d", ErrInsufficientFunds, a, b)
	}
	return a - b, nil
}

// mulDiv returns a*b/d rounded down, or rounded up when ceil is set, without intermediate
// overflow; the quotient must fit in 64 bits.
func mulDiv(a, b, d uint64, ceil bool) (uint64, error) {
	if d == 0 {
		return 0, fmt.Errorf("%w: division by zero", ErrOverflow)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, fmt.Errorf("%w: %d * %d / %d", ErrOverflow, a, b, d)
	}
	q, r := bits.Div64(hi, lo, d)
	if ceil && r != 0 {
		return add(q, 1)
	}
	return q, nil
}

// burnOf is the share of amount destroyed at rate bp, rounded up so that splitting a payment
// into dust cannot avoid the burn.
func burnOf(amount, bp uint64) uint64 {
	v, _ := mulDiv(amount, bp, BasisPoints, true) // bp <= BasisPoints, cannot overflow
	return v
}

// shareOf is amount*bp/10000 rounded down.
func shareOf(amount, bp uint64) uint64 {
	v, _ := mulDiv(amount, bp, BasisPoints, false)
	return v
}

// FormatOMNI renders uomni as a decimal OMNI string, e.g. 1500000 -> "1.5".
func FormatOMNI(uomni uint64) string {
	whole, frac := uomni/UomniPerOMNI, uomni%UomniPerOMNI
	if frac == 0 {
		return fmt.Sprintf("%d", whole)
	}
	s := fmt.Sprintf("%d.%06d", whole, frac)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s
}
