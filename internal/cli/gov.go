package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

type proposeFlags struct {
	title, description string
	params             []string
	spendTo            string
	spendAmount        string
}

// msg builds the proposal: parameter changes (--param name=json, repeatable) or a treasury
// spend (--spend-to and --spend-amount), exactly one.
func (p *proposeFlags) msg() (*ledger.MsgPropose, error) {
	m := &ledger.MsgPropose{Title: p.title, Description: p.description}
	spend := p.spendTo != "" || p.spendAmount != ""
	switch {
	case len(p.params) > 0 && spend:
		return nil, fmt.Errorf("a proposal either changes parameters (--param) or spends from the treasury (--spend-to, --spend-amount), not both")
	case !spend && len(p.params) == 0:
		return nil, fmt.Errorf("say what the proposal does: --param name=value (repeatable; `omnisync gov params` lists the names) or --spend-to ADDRESS --spend-amount OMNI")
	case spend:
		if p.spendTo == "" || p.spendAmount == "" {
			return nil, fmt.Errorf("a treasury spend needs both --spend-to and --spend-amount")
		}
		amount, err := parseAmountArg("--spend-amount", p.spendAmount)
		if err != nil {
			return nil, err
		}
		m.Spend = &ledger.Spend{To: keys.Address(p.spendTo), Amount: amount}
		return m, nil
	}
	m.Params = make(map[string]json.RawMessage, len(p.params))
	for _, kv := range p.params {
		name, value, ok := strings.Cut(kv, "=")
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("--param %q: want name=value, e.g. burn_bp=300", kv)
		case !json.Valid([]byte(value)):
			return nil, fmt.Errorf("--param %s: %q is not a JSON value (numbers as is, objects like '{\"compute\":4000,…}', strings quoted)", name, value)
		case m.Params[name] != nil:
			return nil, fmt.Errorf("--param %s is given twice", name)
		}
		m.Params[name] = json.RawMessage(value)
	}
	return m, nil
}

func newGovCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "gov",
		Short: "Propose and vote on chain parameter changes and treasury spends",
		Long: `Stakers propose and vote; votes weigh by stake. A proposal passes when enough stake votes
(quorum) and enough of the yes+no stake says yes (threshold) by the end of its voting period.`,
	}
	f.addWalletFlags(cmd)

	var p proposeFlags
	proposeCmd := &cobra.Command{
		Use:   "propose",
		Short: "Open a proposal to change parameters or spend from the treasury",
		Example: `  omnisync gov propose --title "Burn 3%" --param burn_bp=300
  omnisync gov propose --title "Reweigh routing" --param 'router_weights={"compute":4000,"latency":3000,"reliability":2000,"price":1000}'
  omnisync gov propose --title "Grant" --description "GPU drivers" --spend-to ADDRESS --spend-amount 25000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			msg, err := p.msg()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := f.sendTx(ctx, c, ledger.Msg{Propose: msg})
				if err != nil {
					return err
				}
				prop, found := newestProposal(ctx, c, r.From, msg.Title)
				if g.json() {
					out := struct {
						txReceipt
						ProposalID uint64 `json:"proposal_id,omitempty"`
					}{txReceipt: r}
					if found {
						out.ProposalID = prop.ID
					}
					return writeJSON(g.stdout, out)
				}
				if !found {
					g.printTx(r, "proposal %q submitted (see `omnisync gov list`)", msg.Title)
					return nil
				}
				g.printTx(r, "proposal #%d %q is open for votes until height %d", prop.ID, prop.Title, prop.VotingEnd)
				fmt.Fprintf(g.stdout, "  vote yes, no or abstain: %s\n", f.voteCommand(prop.ID))
				return nil
			})
		},
	}
	fl := proposeCmd.Flags()
	fl.StringVar(&p.title, "title", "", "title (at most 140 bytes)")
	fl.StringVar(&p.description, "description", "", "what the proposal does and why")
	fl.StringArrayVar(&p.params, "param", nil, "parameter change as name=json-value, repeatable (e.g. burn_bp=300)")
	fl.StringVar(&p.spendTo, "spend-to", "", "treasury spend: recipient address")
	fl.StringVar(&p.spendAmount, "spend-amount", "", "treasury spend: amount in OMNI")
	_ = proposeCmd.MarkFlagRequired("title")

	voteCmd := &cobra.Command{
		Use:   "vote ID yes|no|abstain",
		Short: "Vote on an open proposal with your stake",
		Args:  namedArgs("ID", "yes|no|abstain"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseProposalID(args[0])
			if err != nil {
				return err
			}
			msg := ledger.MsgVote{ProposalID: id, Option: args[1]}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := f.sendTx(ctx, c, ledger.Msg{Vote: &msg})
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, struct {
						txReceipt
						ProposalID uint64 `json:"proposal_id"`
						Option     string `json:"option"`
					}{r, id, msg.Option})
				}
				g.printTx(r, "voted %s on proposal #%d", msg.Option, id)
				return nil
			})
		},
	}

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List proposals with their tallies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				props, err := c.Proposals(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					if props == nil {
						props = []api.Proposal{}
					}
					return writeJSON(g.stdout, props)
				}
				g.printProposals(props)
				return nil
			})
		},
	}

	showCmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a proposal: what it changes, its tally and its outcome",
		Args:  namedArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseProposalID(args[0])
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				prop, err := c.Proposal(ctx, id)
				if errors.Is(err, api.ErrNotFound) {
					// the daemon's message repeats the sentinel ("not found: not found: proposal 99")
					return fmt.Errorf("proposal %d %w", id, api.ErrNotFound)
				}
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, prop)
				}
				g.printProposal(prop)
				return nil
			})
		},
	}
	paramsCmd := &cobra.Command{
		Use:   "params",
		Short: "Show the chain parameters as name=value, the form --param takes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				params, err := c.Params(ctx)
				if err != nil {
					return err
				}
				if g.json() {
					return writeJSON(g.stdout, params)
				}
				return g.printParams(params)
			})
		},
	}
	cmd.AddCommand(proposeCmd, voteCmd, listCmd, showCmd, paramsCmd)
	return cmd
}

func (g *globals) printParams(p api.Params) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		fmt.Fprintf(g.stdout, "%s=%s\n", name, fields[name])
	}
	fmt.Fprintln(g.stdout, "(rates in basis points, 10000 = 100%; stakes and rewards in uomni)")
	return nil
}

// voteCommand is a gov vote command line the user can paste: with this wallet, and this
// API unless it is the default.
func (f *remoteFlags) voteCommand(id uint64) string {
	line := fmt.Sprintf("omnisync gov vote %d yes -w %s", id, shellQuote(f.wallet))
	if f.api != defaultAPIURL {
		line += " --api " + shellQuote(f.api)
	}
	return line
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func parseProposalID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("proposal id %q: want a number, as `omnisync gov list` shows", s)
	}
	return id, nil
}

// newestProposal finds the proposal a committed propose tx opened: the newest by this
// proposer with this title. It is only for the report, so a failed lookup is not an error.
func newestProposal(ctx context.Context, c *api.Client, proposer, title string) (api.Proposal, bool) {
	props, err := c.Proposals(ctx)
	if err != nil {
		return api.Proposal{}, false
	}
	var found api.Proposal
	for _, p := range props {
		if p.Proposer == proposer && p.Title == title && p.ID >= found.ID {
			found = p
		}
	}
	return found, found.ID != 0
}

func (g *globals) printProposals(props []api.Proposal) {
	if len(props) == 0 {
		fmt.Fprintln(g.stdout, "no proposals yet; open one with `omnisync gov propose`")
		return
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tYES\tNO\tABSTAIN\tVOTING ENDS\tTITLE")
	for _, p := range props {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", p.ID, p.Status,
			ledger.FormatOMNI(p.Yes), ledger.FormatOMNI(p.No), ledger.FormatOMNI(p.Abstain), p.VotingEnd, p.Title)
	}
	_ = tw.Flush()
	fmt.Fprintln(g.stdout, "(tallies in OMNI of stake; voting ends at a block height)")
}

func (g *globals) printProposal(p api.Proposal) {
	w := g.stdout
	fmt.Fprintf(w, "proposal   #%d %s\n", p.ID, p.Title)
	fmt.Fprintf(w, "status     %s\n", p.Status)
	fmt.Fprintf(w, "proposer   %s\n", p.Proposer)
	fmt.Fprintf(w, "voting     from height %d to %d\n", p.SubmitHeight, p.VotingEnd)
	fmt.Fprintf(w, "tally      yes %s · no %s · abstain %s\n", omni(p.Yes), omni(p.No), omni(p.Abstain))
	if p.Spend != nil {
		fmt.Fprintf(w, "spends     %s from the treasury to %s\n", omni(p.Spend.Amount), p.Spend.To)
	}
	for i, name := range slices.Sorted(maps.Keys(p.Params)) {
		label := ""
		if i == 0 {
			label = "changes"
		}
		fmt.Fprintf(w, "%-9s  %s = %s\n", label, name, p.Params[name])
	}
	if p.AppliedHeight != 0 {
		fmt.Fprintf(w, "applied    at height %d\n", p.AppliedHeight)
	}
	if p.Result != "" {
		fmt.Fprintf(w, "result     %s\n", p.Result)
	}
	if p.Description != "" {
		fmt.Fprintf(w, "\n%s\n", p.Description)
	}
}
