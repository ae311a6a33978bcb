package cli

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

func newValidatorCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{Use: "validator", Short: "Run the verifier daemon; inspect the validator set"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List validators: address, stake, voting power, jailed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				vals, err := c.Validators(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					if vals == nil {
						vals = []api.Validator{}
					}
					return writeJSON(g.stdout, vals)
				}
				g.printValidators(vals)
				return nil
			})
		},
	}
	f.addAPIFlag(list)
	cmd.AddCommand(list, newValidatorRunCmd(g))
	return cmd
}

func (g *globals) printValidators(vals []api.Validator) {
	if len(vals) == 0 {
		fmt.Fprintln(g.stdout, "no validators")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tSTAKE (OMNI)\tPOWER\tJAILED")
	var total int64
	for _, v := range vals {
		jailed := "no"
		if v.Jailed {
			jailed = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", v.Address, ledger.FormatOMNI(v.Stake), v.Power, jailed)
		total += v.Power
	}
	_ = tw.Flush()
	fmt.Fprintf(g.stdout, "%d validators, total voting power %d (1 per whole OMNI staked; 0 while jailed)\n", len(vals), total)
}
