package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

type stakeFlags struct {
	role   string
	amount string
	pubKey string
}

func (s *stakeFlags) register(cmd *cobra.Command, withPubKey bool) {
	fl := cmd.Flags()
	fl.StringVar(&s.role, "role", "", "stake role: node or validator")
	fl.StringVar(&s.amount, "amount", "", "amount in OMNI, e.g. 500 or 12.5")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.RegisterFlagCompletionFunc("role", fixedCompletions(ledger.RoleNode, ledger.RoleValidator))
	_ = cmd.MarkFlagRequired("amount")
	if withPubKey {
		fl.StringVar(&s.pubKey, "pubkey", "", "a new validator's CometBFT consensus public key (32 bytes, base64 or hex)")
	}
}

// parse checks the flags and returns the role and the amount in uomni.
func (s *stakeFlags) parse() (string, uint64, error) {
	if s.role != ledger.RoleNode && s.role != ledger.RoleValidator {
		return "", 0, fmt.Errorf("--role %q: want node or validator", s.role)
	}
	amount, err := parseAmountArg("--amount", s.amount)
	return s.role, amount, err
}

// parseConsensusKey accepts an ed25519 public key as 64 hex digits or base64.
func parseConsensusKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("--pubkey: want the 32-byte ed25519 consensus key as base64 or 64 hex digits (CometBFT's priv_validator_key.json has it as pub_key.value)")
}

// stakeView is what stake show reports, in uomni.
type stakeView struct {
	Address        string          `json:"address"`
	NodeStake      uint64          `json:"node_stake"`
	ValidatorStake uint64          `json:"validator_stake"`
	Jailed         bool            `json:"jailed"`
	Unbonding      []api.Unbonding `json:"unbonding"`
	UnbondingTotal uint64          `json:"unbonding_total"`
}

func newStakeCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "stake",
		Short: "Stake OMNI as a compute node or validator, unstake it, and see your stake",
		Long: `Nodes need at least 500 OMNI staked and validators 10,000 (chain parameters). Vesting tokens
can be staked. Unstaked tokens unbond for the unbonding period, slashable until they return.
A node's first stake comes with its registration, which its daemon sends; "stake add --role
node" adds to it.`,
	}
	f.addWalletFlags(cmd)

	var add, remove stakeFlags
	addCmd := &cobra.Command{
		Use:   "add",
		Short: "Bond OMNI as node or validator stake",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			role, amount, err := add.parse()
			if err != nil {
				return err
			}
			msg := ledger.MsgStake{Role: role, Amount: amount}
			if add.pubKey != "" {
				if role != ledger.RoleValidator {
					return fmt.Errorf("--pubkey is only for --role validator")
				}
				if msg.PubKey, err = parseConsensusKey(add.pubKey); err != nil {
					return err
				}
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				r, err := f.sendTx(ctx, c, ledger.Msg{Stake: &msg})
				if err != nil {
					return err
				}
				return g.reportStake(r, role, amount, "staked %s as %s stake")
			})
		},
	}
	add.register(addCmd, true)

	removeCmd := &cobra.Command{
		Use:   "remove",
		Short: "Start unbonding node or validator stake",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			role, amount, err := remove.parse()
			if err != nil {
				return err
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				msg := ledger.MsgUnstake{Role: role, Amount: amount}
				r, err := f.sendTx(ctx, c, ledger.Msg{Unstake: &msg})
				if err != nil {
					return err
				}
				if err := g.reportStake(r, role, amount, "unbonding %s of %s stake"); err != nil || g.json() {
					return err
				}
				fmt.Fprintln(g.stdout, "  it returns to the balance when the unbonding period ends (see `omnisync stake show`)")
				return nil
			})
		},
	}
	remove.register(removeCmd, false)

	showCmd := &cobra.Command{
		Use:   "show [ADDRESS]",
		Short: "Show node and validator stake and unbonding entries: the wallet's, or ADDRESS's",
		Args:  optionalArg("ADDRESS"),
		RunE:  addressView(g, f, fetchStake, g.printStake),
	}
	cmd.AddCommand(addCmd, removeCmd, showCmd)
	return cmd
}

func (g *globals) reportStake(r txReceipt, role string, amount uint64, headline string) error {
	if g.json() {
		return writeJSON(g.stdout, struct {
			txReceipt
			Role   string `json:"role"`
			Amount uint64 `json:"amount"`
		}{r, role, amount})
	}
	g.printTx(r, headline, omni(amount), role)
	return nil
}

func fetchStake(ctx context.Context, c *api.Client, addr string) (stakeView, error) {
	v := stakeView{Address: addr}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return v, err
	}
	for _, n := range nodes {
		if n.ID == addr {
			v.NodeStake = n.Stake
		}
	}
	vals, err := c.Validators(ctx)
	if err != nil {
		return v, err
	}
	for _, val := range vals {
		if val.Address == addr {
			v.ValidatorStake, v.Jailed = val.Stake, val.Jailed
		}
	}
	if v.Unbonding, err = c.Unbonding(ctx, addr); err != nil {
		return v, err
	}
	for _, u := range v.Unbonding {
		v.UnbondingTotal += u.Amount
	}
	return v, nil
}

func (g *globals) printStake(v stakeView) {
	w := g.stdout
	fmt.Fprintf(w, "address    %s\n", v.Address)
	fmt.Fprintf(w, "node       %s\n", omni(v.NodeStake))
	jailed := ""
	if v.Jailed {
		jailed = " (jailed: no voting power)"
	}
	fmt.Fprintf(w, "validator  %s%s\n", omni(v.ValidatorStake), jailed)
	fmt.Fprintf(w, "unbonding  %s\n", omni(v.UnbondingTotal))
	for _, u := range v.Unbonding {
		fmt.Fprintf(w, "  #%d  %-9s  %s  returns %s\n", u.ID, u.Role, omni(u.Amount), unixTime(u.MatureUnix))
	}
}
