package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// omniDecimals is how many decimal places of OMNI a uomni count can express.
const omniDecimals = 6

// parseOMNI converts a decimal OMNI amount ("12.5", "0.000001", "1000") to uomni exactly:
// digits, optionally a point and one to six more digits. Signs, exponents, separators and
// anything beyond 18,446,744,073,709.551615 OMNI are refused.
func parseOMNI(s string) (uint64, error) {
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

// parseAmountArg parses a positive OMNI amount given as the argument or flag name.
func parseAmountArg(name, s string) (uint64, error) {
	v, err := parseOMNI(s)
	if err == nil && v == 0 {
		err = errors.New("must be positive")
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// supplyReport is token supply's JSON: the chain's supply in uomni, their sum, and whether
// the sum is the total.
type supplyReport struct {
	api.Supply
	Sum    uint64 `json:"sum"`
	AddsUp bool   `json:"adds_up"`
}

func newTokenCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{Use: "token", Short: "OMNI token facts"}
	f.addAPIFlag(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "supply",
		Short: "Show where every OMNI is: liquid, vesting, staked, unbonding, escrowed, pools, burned",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				s, err := c.Supply(ctx)
				if err != nil {
					return err
				}
				sum, err := ledger.SupplyView(s).Sum()
				if err != nil {
					return fmt.Errorf("the supply buckets overflow when added: %w", err)
				}
				r := supplyReport{Supply: s, Sum: sum, AddsUp: sum == s.Total}
				if g.json() {
					return writeJSON(g.stdout, r)
				}
				g.printSupply(r)
				return nil
			})
		},
	})
	return cmd
}

func (g *globals) printSupply(r supplyReport) {
	type row struct {
		name, amount string
		uomni        uint64
	}
	rows := []row{{name: "total", uomni: r.Total}, {name: "liquid", uomni: r.Liquid}, {name: "vesting", uomni: r.Vesting},
		{name: "staked", uomni: r.Staked}, {name: "unbonding", uomni: r.Unbonding}, {name: "escrowed", uomni: r.Escrowed}}
	for _, name := range slices.Sorted(maps.Keys(r.Pools)) {
		rows = append(rows, row{name: "pool " + name, uomni: r.Pools[name]})
	}
	rows = append(rows, row{name: "burned", uomni: r.Burned})
	nameW, amountW := 0, 0
	for i := range rows {
		rows[i].amount = ledger.FormatOMNI(rows[i].uomni)
		nameW, amountW = max(nameW, len(rows[i].name)), max(amountW, len(rows[i].amount))
	}
	for _, x := range rows {
		fmt.Fprintf(g.stdout, "%-*s  %*s OMNI  %7s\n", nameW, x.name, amountW, x.amount, percentOf(x.uomni, r.Total))
	}
	if r.AddsUp {
		fmt.Fprintf(g.stdout, "✓ the buckets add up to the total, %s\n", omni(r.Total))
	} else {
		fmt.Fprintf(g.stdout, "✗ the buckets add up to %s, not the total %s\n", omni(r.Sum), omni(r.Total))
	}
}

// percentOf renders v as a percentage of total with two decimals, rounded down.
func percentOf(v, total uint64) string {
	if total == 0 {
		return "-"
	}
	hi, lo := bits.Mul64(v, 10_000)
	if hi >= total {
		return ">100%"
	}
	bp, _ := bits.Div64(hi, lo, total)
	return fmt.Sprintf("%d.%02d%%", bp/100, bp%100)
}
