package cli

import (
	"math"
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/ledger"
)

func TestParseOMNI(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  string // a substring of the error; "" means it parses
	}{
		{"0", 0, ""},
		{"1", 1_000_000, ""},
		{"12.5", 12_500_000, ""},
		{"0.000001", 1, ""},
		{"000.100000", 100_000, ""},
		{"1000000000", 1_000_000_000_000_000, ""},
		{"18446744073709.551615", math.MaxUint64, ""},
		{"18446744073709.551616", 0, "largest amount"},
		{"18446744073710", 0, "largest amount"},
		{"99999999999999999999999", 0, "largest amount"},
		{"1.0000001", 0, "more than 6 decimal places"},
		{"0.0000000", 0, "more than 6 decimal places"},
		{"-1", 0, "negative"},
		{"-0.5", 0, "negative"},
		{"", 0, "empty"},
		{"+1", 0, "not a decimal"},
		{".5", 0, "not a decimal"},
		{"5.", 0, "not a decimal"},
		{"1.2.3", 0, "not a decimal"},
		{"1e6", 0, "not a decimal"},
		{"1_000", 0, "not a decimal"},
		{"1,5", 0, "not a decimal"},
		{" 1", 0, "not a decimal"},
		{"0x10", 0, "not a decimal"},
		{"١", 0, "not a decimal"}, // an Arabic-Indic digit one
		{"NaN", 0, "not a decimal"},
	}
	for _, tt := range tests {
		got, err := parseOMNI(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseOMNI(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseOMNI(%q) = %d, %v; want an error with %q", tt.in, got, err, tt.err)
		}
	}
	if _, err := parseAmountArg("--amount", "0.000"); err == nil || err.Error() != "--amount: must be positive" {
		t.Errorf("zero amount: %v", err)
	}
}

var decimalOMNI = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,6})?$`)

// parseOMNI agrees with exact rational arithmetic on every input, and every uomni amount
// survives FormatOMNI and back.
func FuzzParseOMNI(f *testing.F) {
	for _, s := range []string{"0", "12.5", "0.000001", "18446744073709.551615", "18446744073709.551616", "1.0000001", "-1", ".5", "1e3"} {
		f.Add(s)
	}
	limit := new(big.Rat).SetUint64(math.MaxUint64)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseOMNI(s)
		valid := decimalOMNI.MatchString(s)
		var exact *big.Rat
		if valid {
			exact, _ = new(big.Rat).SetString(s)
			exact.Mul(exact, new(big.Rat).SetUint64(ledger.UomniPerOMNI))
			valid = exact.Cmp(limit) <= 0
		}
		switch {
		case valid && err != nil:
			t.Fatalf("parseOMNI(%q) failed: %v", s, err)
		case !valid && err == nil:
			t.Fatalf("parseOMNI(%q) = %d, want an error", s, got)
		case valid && (!exact.IsInt() || exact.Num().Uint64() != got):
			t.Fatalf("parseOMNI(%q) = %d, want %s", s, got, exact.RatString())
		case valid:
			if back, err := parseOMNI(ledger.FormatOMNI(got)); err != nil || back != got {
				t.Fatalf("round trip of %d through %q: %d, %v", got, ledger.FormatOMNI(got), back, err)
			}
		}
	})
}

func TestPercentOf(t *testing.T) {
	for _, tt := range []struct {
		v, total uint64
		want     string
	}{
		{0, 0, "-"}, {0, 10, "0.00%"}, {1, 3, "33.33%"}, {10, 10, "100.00%"}, {11, 10, "110.00%"}, {math.MaxUint64, 1, ">100%"},
		{math.MaxUint64, math.MaxUint64, "100.00%"}, {1, math.MaxUint64, "0.00%"},
	} {
		if got := percentOf(tt.v, tt.total); got != tt.want {
			t.Errorf("percentOf(%d, %d) = %s, want %s", tt.v, tt.total, got, tt.want)
		}
	}
}
