package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/config"
	"github.com/omnisync/omnisync/internal/ledger"
)

// parseOMNI converts a decimal OMNI amount ("12.5", "0.000001", "1000") to uomni exactly:
// digits, optionally a point and one to six more digits. Signs, exponents, separators and
// anything beyond 18,446,744,073,709.551615 OMNI are refused. Config files parse amounts
// with the same function.
func parseOMNI(s string) (uint64, error) { return config.ParseOMNI(s) }

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
