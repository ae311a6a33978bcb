package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// Where the wallet, stake, gov, token and validator commands find a daemon and keys. Each
// default is overridden by its environment variable, which a flag overrides in turn.
const (
	defaultAPIURL = "http://127.0.0.1:7070" // the devnet's REST API
	envAPIURL     = "OMNISYNC_API"
	envWalletDir  = "OMNISYNC_WALLET_DIR"
	defaultWallet = "default"

	// requestTimeout bounds one command's calls, a transaction's wait for its block included.
	requestTimeout = time.Minute
)

// remoteFlags are the flags of commands that talk to a daemon's REST API and, for those
// that sign, name a wallet.
type remoteFlags struct {
	api       string
	walletDir string
	wallet    string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// addAPIFlag registers --api on cmd and its subcommands.
func (f *remoteFlags) addAPIFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.api, "api", envOr(envAPIURL, defaultAPIURL),
		"REST API of an OmniSync daemon, or several comma-separated (a cluster's routers), tried in turn (env "+envAPIURL+")")
}

// addWalletFlags registers --api, --wallet and --wallet-dir on cmd and its subcommands.
func (f *remoteFlags) addWalletFlags(cmd *cobra.Command) {
	f.addAPIFlag(cmd)
	home, _ := os.UserHomeDir()
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.walletDir, "wallet-dir", envOr(envWalletDir, filepath.Join(home, ".omnisync", "wallets")),
		"directory of wallet key files (env "+envWalletDir+")")
	pf.StringVarP(&f.wallet, "wallet", "w", defaultWallet, "wallet name in --wallet-dir, or a path to a Solana keypair JSON file")
	_ = cmd.RegisterFlagCompletionFunc("wallet", f.completeWallet)
}

// completeWallet offers the wallets in --wallet-dir: its *.json files, without extension.
func (f *remoteFlags) completeWallet(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	files, _ := filepath.Glob(filepath.Join(f.walletDir, "*.json"))
	names := make([]string, 0, len(files))
	for _, file := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(file), ".json"))
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// client returns a client of --api's URLs; one without a scheme is http.
func (f *remoteFlags) client() *api.Client {
	urls := strings.Split(f.api, ",")
	for i, u := range urls {
		if u = strings.TrimSpace(u); u != "" && !strings.Contains(u, "://") {
			urls[i] = "http://" + u
		}
	}
	return api.NewClient(strings.Join(urls, ","))
}

// explain adds what to do to errors a user can act on.
func (f *remoteFlags) explain(err error) error {
	var (
		re *api.ResponseError
		ue *url.Error
		fe *api.FailoverError
	)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		// Every URL in --api was tried; the error says what each did.
		return fmt.Errorf("no OmniSync REST API in --api served the request: %v\n(start a network with `omnisync devnet`, or point --api or %s at running daemons)",
			err, envAPIURL)
	case errors.As(err, &re) && re.Body.Error == "" && re.Body.Code == "",
		errors.As(err, &syntax), errors.As(err, &typ):
		// Something answered, but not as an OmniSync REST API does: an error without our JSON
		// body, or a body that is not ours (a CometBFT RPC, say).
		return fmt.Errorf("%v\n(is %s an OmniSync REST API? A router's or the devnet's is http://HOST:7070 by default; the chain's CometBFT RPC, :26657, is another thing: point --api or %s at the REST API)",
			err, f.api, envAPIURL)
	case errors.As(err, &re): // the daemon answered; its message says what is wrong
		return err
	case errors.As(err, &ue) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the OmniSync REST API at %s: %v\n(start a network with `omnisync devnet`, or point --api or %s at a running daemon)",
			f.api, ue.Err, envAPIURL)
	}
	return err
}

// run gives fn a client and a context bounded by requestTimeout, and explains its error.
func (f *remoteFlags) run(cmd *cobra.Command, fn func(ctx context.Context, c *api.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	return f.explain(fn(ctx, f.client()))
}

// errWalletName is a wallet name that is not a plain file name in the wallet directory.
var errWalletName = errors.New("invalid wallet name")

var walletNameChars = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// maxWalletName is the longest wallet name, in bytes.
const maxWalletName = 64

// checkWalletName keeps a wallet name a file name inside --wallet-dir. A name is joined to
// the directory to make a path, so one that is a path itself (../evil, a/b) would let
// wallet new or import write a key anywhere the user can (security review, finding 8).
// The error names the rule broken.
func checkWalletName(name string) error {
	var rule string
	switch {
	case name == "":
		rule = "it is empty"
	case len(name) > maxWalletName:
		rule = fmt.Sprintf("it is longer than %d characters", maxWalletName)
	case strings.ContainsAny(name, `/\`):
		rule = `it contains a path separator ('/' or '\')`
	case strings.Contains(name, ".."):
		rule = "it contains '..'"
	case name[0] == '.':
		rule = "it starts with '.'"
	case !walletNameChars.MatchString(name):
		rule = "use only letters, digits, '.', '_' and '-'"
	case name[0] == '-' || name[0] == '_':
		rule = "it must start with a letter or digit"
	case strings.HasSuffix(name, ".json"):
		rule = "it ends in .json, which --wallet reads as a file path"
	default:
		return nil
	}
	return fmt.Errorf("%w %q: %s", errWalletName, name, rule)
}

// walletPath is the key file of the wallet called name: always in --wallet-dir.
func (f *remoteFlags) walletPath(name string) (string, error) {
	if err := checkWalletName(name); err != nil {
		return "", err
	}
	return filepath.Join(f.walletDir, name+".json"), nil
}

// walletFile resolves a wallet reference (--wallet): a name in the wallet directory, or a
// path to a keypair file (one with a directory separator or ending in .json), which the
// user chose and is only read.
func (f *remoteFlags) walletFile(ref string) (name, path string, err error) {
	if strings.ContainsRune(ref, filepath.Separator) || strings.ContainsRune(ref, '/') || strings.HasSuffix(ref, ".json") {
		return strings.TrimSuffix(filepath.Base(ref), ".json"), ref, nil
	}
	if path, err = f.walletPath(ref); err != nil {
		return "", "", fmt.Errorf("%w (or give a path to a keypair file)", err)
	}
	return ref, path, nil
}

// loadKey reads the wallet's Solana keypair file.
func (f *remoteFlags) loadKey() (ed25519.PrivateKey, error) {
	name, path, err := f.walletFile(f.wallet)
	if err != nil {
		return nil, err
	}
	priv, err := keyfile.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no wallet %q at %s\n(create one with `omnisync wallet new %s`, import a Solana keypair with `omnisync wallet import %s FILE`, or pick another with --wallet)",
			name, path, name, name)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	return priv, nil
}

// saveKey writes a new wallet file in --wallet-dir, readable only by its owner, and never
// over an old one. A new wallet takes a name, never a path: see checkWalletName.
func (f *remoteFlags) saveKey(name string, priv ed25519.PrivateKey) (walletInfo, error) {
	path, err := f.walletPath(name)
	if err != nil {
		return walletInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return walletInfo{}, err
	}
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return walletInfo{}, fmt.Errorf("wallet %q already exists at %s; choose another name (its key is not overwritten)", name, path)
	}
	if err != nil {
		return walletInfo{}, err
	}
	_, err = file.Write(keys.MarshalSolanaJSON(priv))
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path) // a half-written key is worse than none
		return walletInfo{}, fmt.Errorf("write wallet %s: %w", path, err)
	}
	return walletInfo{Name: name, Address: string(keys.AddressOfKey(priv)), File: path}, nil
}

// walletInfo is what wallet new, import and show report.
type walletInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	File    string `json:"file"`
}

// txReceipt is what every command that sends a transaction reports.
type txReceipt struct {
	From   string `json:"from"`
	Hash   string `json:"hash"`
	Height int64  `json:"height"` // 0 when the daemon cannot tell
}

// sendTx signs msg with the wallet's key for the daemon's chain at the account's next
// sequence, submits it and waits for it to commit.
func (f *remoteFlags) sendTx(ctx context.Context, c *api.Client, msg ledger.Msg) (txReceipt, error) {
	if err := msg.ValidateBasic(); err != nil {
		return txReceipt{}, err
	}
	priv, err := f.loadKey()
	if err != nil {
		return txReceipt{}, err
	}
	health, err := c.Health(ctx)
	if err != nil {
		return txReceipt{}, err
	}
	chainID := health["chain_id"]
	if chainID == "" {
		return txReceipt{}, fmt.Errorf("the daemon at %s does not say which chain it serves (no chain_id in /v1/health); point --api at a router", f.api)
	}
	from := string(keys.AddressOfKey(priv))
	acct, err := c.ChainAccount(ctx, from)
	if err != nil {
		return txReceipt{}, err
	}
	tx, err := ledger.SignTx(priv, chainID, acct.Seq, msg)
	if err != nil {
		return txReceipt{}, err
	}
	res, err := c.BroadcastTx(ctx, tx)
	var fe *api.FieldError
	switch {
	case err == nil:
	case errors.As(err, &fe) && fe.Field == "tx": // the ledger's reason, without the field name
		return txReceipt{}, fmt.Errorf("%s from %s: %s", msg.Kind(), from, fe.Msg)
	case errors.Is(err, api.ErrConflict) && strings.Contains(err.Error(), "sequence"):
		return txReceipt{}, fmt.Errorf("%s from %s: %w\n(another transaction from this wallet was committed first; run the command again)", msg.Kind(), from, err)
	default:
		return txReceipt{}, fmt.Errorf("%s from %s: %w", msg.Kind(), from, err)
	}
	return txReceipt{From: from, Hash: res.Hash, Height: res.Height}, nil
}

// printTx reports a committed transaction: headline, then its hash and block.
func (g *globals) printTx(r txReceipt, headline string, args ...any) {
	fmt.Fprintf(g.stdout, "✓ "+headline+"\n", args...)
	block := ""
	if r.Height > 0 {
		block = fmt.Sprintf(" (block %d)", r.Height)
	}
	fmt.Fprintf(g.stdout, "  tx %s%s\n", r.Hash, block)
}

// omni renders uomni as "12.5 OMNI".
func omni(uomni uint64) string { return ledger.FormatOMNI(uomni) + " OMNI" }

// unixTime renders a block time.
func unixTime(sec int64) string { return time.Unix(sec, 0).UTC().Format(time.RFC3339) }

// addressArg is the account a read command is about: its argument, or the wallet's.
func (f *remoteFlags) addressArg(args []string) (string, error) {
	if len(args) > 0 {
		if err := keys.Address(args[0]).Validate(); err != nil {
			return "", err
		}
		return args[0], nil
	}
	priv, err := f.loadKey()
	if err != nil {
		return "", err
	}
	return string(keys.AddressOfKey(priv)), nil
}

func newWalletCmd(g *globals) *cobra.Command {
	f := &remoteFlags{}
	cmd := &cobra.Command{
		Use:   "wallet",
		Short: "Create, import and use OMNI wallets",
		Long: `Wallets are ed25519 keys stored as Solana CLI keypair files (a JSON array of 64 bytes,
mode 0600) in --wallet-dir; an address is the base58 public key, as in Solana. Commands that
read or send go through a daemon's REST API (--api).`,
	}
	f.addWalletFlags(cmd)
	cmd.AddCommand(
		&cobra.Command{
			Use:   "new NAME",
			Short: "Create a wallet with a fresh key",
			Args:  namedArgs("NAME"),
			RunE: func(_ *cobra.Command, args []string) error {
				priv, err := keys.Generate(rand.Reader)
				if err != nil {
					return err
				}
				info, err := f.saveKey(args[0], priv)
				if err != nil {
					return err
				}
				return g.printWallet(info, "created")
			},
		},
		&cobra.Command{
			Use:   "import NAME KEYPAIR_FILE",
			Short: "Import a Solana CLI keypair JSON file as a wallet",
			Args:  namedArgs("NAME", "KEYPAIR_FILE"),
			RunE: func(_ *cobra.Command, args []string) error {
				priv, err := keyfile.Load(args[1])
				if err != nil {
					return err
				}
				info, err := f.saveKey(args[0], priv)
				if err != nil {
					return err
				}
				return g.printWallet(info, "imported")
			},
		},
		&cobra.Command{
			Use:   "show",
			Short: "Show the wallet's name, address and key file (offline)",
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				priv, err := f.loadKey()
				if err != nil {
					return err
				}
				name, path, _ := f.walletFile(f.wallet) // loadKey checked it
				return g.printWallet(walletInfo{Name: name, Address: string(keys.AddressOfKey(priv)), File: path}, "")
			},
		},
		newWalletBalanceCmd(g, f),
		&cobra.Command{
			Use:   "send RECIPIENT AMOUNT",
			Short: "Send OMNI (AMOUNT in OMNI, e.g. 12.5); the chain burns its burn rate on the way",
			Args:  namedArgs("RECIPIENT", "AMOUNT"),
			RunE: func(cmd *cobra.Command, args []string) error {
				amount, err := parseAmountArg("AMOUNT", args[1])
				if err != nil {
					return err
				}
				return f.run(cmd, func(ctx context.Context, c *api.Client) error {
					msg := ledger.MsgTransfer{To: keys.Address(args[0]), Amount: amount}
					r, err := f.sendTx(ctx, c, ledger.Msg{Transfer: &msg})
					if err != nil {
						return err
					}
					if g.json() {
						return writeJSON(g.stdout, struct {
							txReceipt
							To     string `json:"to"`
							Amount uint64 `json:"amount"`
						}{r, args[0], amount})
					}
					g.printTx(r, "sent %s from %s to %s", omni(amount), r.From, args[0])
					return nil
				})
			},
		},
	)
	return cmd
}

// Where wallet balance --prove finds a validator's CometBFT RPC: the devnet's, which is
// also validator-1's of a network from chain init.
const (
	defaultRPCURL = "http://127.0.0.1:26657"
	envRPCURL     = "OMNISYNC_RPC"
)

func newWalletBalanceCmd(g *globals, f *remoteFlags) *cobra.Command {
	var (
		prove bool
		rpc   string
	)
	cmd := &cobra.Command{
		Use:   "balance [ADDRESS]",
		Short: "Show an account's balance: the wallet's, or ADDRESS's",
		Long: `Shows an account's balance: the wallet's, or ADDRESS's, as the REST API (--api) reports it.

With --prove the account comes instead from a validator's CometBFT RPC (--rpc) with a Merkle
proof, which is checked against the app hash in the header of a committed block (the next
one, which it may wait for); the command fails if the proof does not verify. It shows what
the proof covers: the account's balance, sequence and vesting schedule.`,
		Example: `  omnisync wallet balance
  omnisync wallet balance --prove --rpc http://127.0.0.1:26657`,
		Args: optionalArg("ADDRESS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if prove {
				return g.provenBalance(cmd, f, rpc, args)
			}
			return f.run(cmd, func(ctx context.Context, c *api.Client) error {
				addr, err := f.addressArg(args)
				if err != nil {
					return err
				}
				acct, err := c.ChainAccount(ctx, addr)
				if err != nil {
					return err
				}
				return g.printBalance(acct)
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&prove, "prove", false, "read the account from --rpc with a proof, checked against a committed block's app hash")
	fl.StringVar(&rpc, "rpc", envOr(envRPCURL, defaultRPCURL), "CometBFT RPC of a validator, for --prove (env "+envRPCURL+")")
	return cmd
}

// provenAccount is what wallet balance --prove reports: the proven record, and the block
// whose header holds the app hash it was proven against.
type provenAccount struct {
	ledger.Account
	Proven       bool   `json:"proven"`
	Height       int64  `json:"height"`        // the state after this block
	HeaderHeight int64  `json:"header_height"` // the block whose header holds AppHash
	AppHash      string `json:"app_hash"`
}

func (g *globals) provenBalance(cmd *cobra.Command, f *remoteFlags, rpc string, args []string) error {
	addr, err := f.addressArg(args)
	if err != nil {
		return err
	}
	c, err := chain.NewHTTPClient(rpc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	p, err := c.ProveAccount(ctx, keys.Address(addr))
	switch {
	case errors.Is(err, store.ErrBadProof):
		return fmt.Errorf("proof rejected: %w\n(the node at %s answered with state its chain did not commit: do not trust its answers)", err, rpc)
	case chain.Unreachable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("cannot reach the chain RPC at %s: %v\n(point --rpc or %s at a validator's CometBFT RPC, e.g. the devnet's %s)", rpc, err, envRPCURL, defaultRPCURL)
	case err != nil:
		return err
	}
	out := provenAccount{Account: p.Account, Proven: true, Height: p.Height, HeaderHeight: p.Height + 1, AppHash: fmt.Sprintf("%X", p.AppHash)}
	if g.json() {
		return writeJSON(g.stdout, out)
	}
	w := g.stdout
	fmt.Fprintf(w, "✓ proven against the app hash in block %d's header (the state after block %d)\n", out.HeaderHeight, out.Height)
	fmt.Fprintf(w, "address    %s\n", out.Address)
	fmt.Fprintf(w, "balance    %s\n", omni(out.Balance))
	fmt.Fprintf(w, "sequence   %d\n", out.Seq)
	if v := out.Vesting; v != nil {
		fmt.Fprintf(w, "vesting    %s, cliff %s, fully vested %s\n", omni(v.Total), unixTime(v.CliffUnix), unixTime(v.EndUnix))
	}
	fmt.Fprintf(w, "app hash   %s\n", out.AppHash)
	return nil
}

func (g *globals) printWallet(w walletInfo, verb string) error {
	if g.json() {
		return writeJSON(g.stdout, w)
	}
	if verb != "" {
		fmt.Fprintf(g.stdout, "✓ %s wallet %s\n", verb, w.Name)
	}
	fmt.Fprintf(g.stdout, "name     %s\naddress  %s\nfile     %s\n", w.Name, w.Address, w.File)
	if verb != "" {
		fmt.Fprintln(g.stdout, "keep a copy of the file somewhere safe: it is the only key to this account")
	}
	return nil
}

func (g *globals) printBalance(a api.ChainAccount) error {
	if g.json() {
		return writeJSON(g.stdout, a)
	}
	w := g.stdout
	fmt.Fprintf(w, "address    %s\n", a.Address)
	fmt.Fprintf(w, "balance    %s\n", omni(a.Balance))
	fmt.Fprintf(w, "spendable  %s\n", omni(a.Spendable))
	fmt.Fprintf(w, "locked     %s (vesting: can be staked, not sent)\n", omni(a.Locked))
	fmt.Fprintf(w, "bonded     %s (staked or unbonding, not in the balance)\n", omni(a.Bonded))
	fmt.Fprintf(w, "sequence   %d\n", a.Seq)
	if v := a.Vesting; v != nil {
		fmt.Fprintf(w, "vesting    %s, cliff %s, fully vested %s\n", omni(v.Total), unixTime(v.CliffUnix), unixTime(v.EndUnix))
	}
	return nil
}
