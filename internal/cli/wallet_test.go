package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/httpapi"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

const testChainID = "omnisync-test"

// testKey is a fixed key, so addresses in golden files never change.
func testKey(b byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32)) }

func testAddr(b byte) string { return string(keys.AddressOfKey(testKey(b))) }

// fakeDaemon serves canned chain state behind the real REST handler and checks and records
// the transactions it is sent as the ledger would: signature, chain id and sequence.
// Methods the commands must not call are left to the nil embedded Service (a 500).
type fakeDaemon struct {
	httpapi.Service

	mu         sync.Mutex
	accounts   map[string]api.ChainAccount
	supply     api.Supply
	params     api.Params
	validators []api.Validator
	nodes      []api.Node
	proposals  []api.Proposal
	unbonding  map[string][]api.Unbonding
	history    map[string]api.NodeHistory // by node, served whatever page is asked for
	asked      [2]int64                   // the last history page asked for: before, limit
	txs        []ledger.Tx
	txErr      error // rejects the next transaction
}

func (d *fakeDaemon) ChainAccount(_ context.Context, address string) (api.ChainAccount, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := keys.Address(address).Validate(); err != nil {
		return api.ChainAccount{}, &api.FieldError{Field: "address", Msg: err.Error()}
	}
	if a, ok := d.accounts[address]; ok {
		return a, nil
	}
	return api.ChainAccount{Address: address}, nil
}

// with runs fn on the daemon's state under its lock.
func (d *fakeDaemon) with(fn func(*fakeDaemon)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fn(d)
}

func (d *fakeDaemon) Supply(context.Context) (s api.Supply, _ error) {
	d.with(func(d *fakeDaemon) { s = d.supply })
	return s, nil
}

func (d *fakeDaemon) Params(context.Context) (p api.Params, _ error) {
	d.with(func(d *fakeDaemon) { p = d.params })
	return p, nil
}

func (d *fakeDaemon) Nodes(context.Context) (n []api.Node, _ error) {
	d.with(func(d *fakeDaemon) { n = d.nodes })
	return n, nil
}

func (d *fakeDaemon) NodeHistory(_ context.Context, node string, before int64, limit int) (h api.NodeHistory, _ error) {
	d.with(func(d *fakeDaemon) { h, d.asked = d.history[node], [2]int64{before, int64(limit)} })
	h.Node = node
	return h, nil
}

func (d *fakeDaemon) Validators(context.Context) (v []api.Validator, _ error) {
	d.with(func(d *fakeDaemon) { v = d.validators })
	return v, nil
}

func (d *fakeDaemon) Proposals(context.Context) ([]api.Proposal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proposals, nil
}

func (d *fakeDaemon) Proposal(_ context.Context, id uint64) (api.Proposal, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.proposals {
		if p.ID == id {
			return p, nil
		}
	}
	return api.Proposal{}, fmt.Errorf("%w: proposal %d", api.ErrNotFound, id)
}

func (d *fakeDaemon) Unbonding(_ context.Context, address string) (u []api.Unbonding, _ error) {
	d.with(func(d *fakeDaemon) { u = d.unbonding[address] })
	return u, nil
}

func (d *fakeDaemon) BroadcastTx(_ context.Context, raw []byte) (api.BroadcastTxResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.txErr; err != nil {
		d.txErr = nil
		return api.BroadcastTxResponse{}, err
	}
	tx, err := ledger.DecodeTx(raw)
	if err != nil {
		return api.BroadcastTxResponse{}, err
	}
	acct := d.accounts[string(tx.Signer)]
	switch {
	case tx.Body.ChainID != testChainID:
		return api.BroadcastTxResponse{}, ledger.ErrorFor(ledger.CodeWrongChain, "wrong chain id: "+tx.Body.ChainID)
	case tx.Body.Seq != acct.Seq:
		return api.BroadcastTxResponse{}, ledger.ErrorFor(ledger.CodeWrongSequence, fmt.Sprintf("wrong sequence: %d, want %d", tx.Body.Seq, acct.Seq))
	}
	acct.Seq++
	d.accounts[string(tx.Signer)] = acct
	d.txs = append(d.txs, tx)
	if p := tx.Body.Propose; p != nil {
		d.proposals = append(d.proposals, api.Proposal{ID: uint64(len(d.proposals) + 1), Proposer: string(tx.Signer),
			Title: p.Title, Status: ledger.ProposalVoting, SubmitHeight: 42, VotingEnd: 142})
	}
	return api.BroadcastTxResponse{Hash: ledger.HashHex(raw), Height: 42}, nil
}

func (d *fakeDaemon) lastTx(t *testing.T) ledger.Tx {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.txs) == 0 {
		t.Fatal("no transaction was broadcast")
	}
	return d.txs[len(d.txs)-1]
}

// newFakeDaemon holds one of everything: a vesting account with stake and unbonding
// (the default wallet, testKey(1)), a balanced supply, two validators (one jailed) and two
// proposals.
func newFakeDaemon() *fakeDaemon {
	me := testAddr(1)
	d := &fakeDaemon{
		accounts: map[string]api.ChainAccount{me: {
			Address: me, Balance: 1_234_500_000, Spendable: 1_000_000_000, Locked: 234_500_000,
			Bonded: 10_600_000_000, Seq: 3,
			Vesting: &api.Vesting{Total: 300_000_000, CliffUnix: 1_767_225_600, EndUnix: 1_798_761_600},
		}},
		supply: api.Supply{
			Total: 1_000_000_000_000_000, Vesting: 270_000_000_000_000, Staked: 10_500_000_000,
			Unbonding: 100_000_000, Escrowed: 5_000_000, Burned: 123_456,
			Pools: map[string]uint64{
				ledger.PoolRewards: 399_999_000_000_000, ledger.PoolEcosystem: 200_000_000_000_000,
				ledger.PoolBuyback: 1_500_000, ledger.PoolValidatorRewards: 250_000,
			},
		},
		params: api.Params{BurnBP: 200, FeeBP: 500, MinNodeStake: 500_000_000, MinValidatorStake: 10_000_000_000,
			RouterWeights:   api.RouterWeights{Compute: 3500, Latency: 3000, Reliability: 2000, Price: 1500},
			GovVotingBlocks: 100, Routers: []string{testAddr(9)}},
		validators: []api.Validator{
			{Address: me, PubKey: bytes.Repeat([]byte{7}, 32), Stake: 10_000_000_000, Power: 10_000},
			{Address: testAddr(3), PubKey: bytes.Repeat([]byte{8}, 32), Stake: 12_345_670_000, Power: 0, Jailed: true},
		},
		nodes: []api.Node{{ID: me, Stake: 500_000_000}, {ID: testAddr(4), Stake: 900_000_000}},
		proposals: []api.Proposal{
			{ID: 1, Proposer: me, Title: "Burn 3% of transfers", Description: "Deflation, gently.",
				Params: map[string]json.RawMessage{"burn_bp": json.RawMessage("300"),
					"router_weights": json.RawMessage(`{"compute":4000,"latency":3000,"reliability":2000,"price":1000}`)},
				SubmitHeight: 10, VotingEnd: 110, Status: ledger.ProposalPassed, Yes: 10_000_000_000, No: 1_500_000,
				AppliedHeight: 110},
			{ID: 2, Proposer: testAddr(3), Title: "Fund GPU driver work", Spend: &api.Spend{To: testAddr(5), Amount: 25_000_000_000},
				SubmitHeight: 120, VotingEnd: 220, Status: ledger.ProposalVoting, Abstain: 12_345_670_000},
		},
		unbonding: map[string][]api.Unbonding{me: {
			{ID: 4, Address: me, Role: ledger.RoleNode, Amount: 100_000_000, MatureUnix: 1_770_000_000},
		}},
	}
	s := &d.supply
	s.Liquid = s.Total - s.Vesting - s.Staked - s.Unbonding - s.Escrowed - s.Burned
	for _, v := range s.Pools {
		s.Liquid -= v
	}
	return d
}

// cliEnv runs commands against a fakeDaemon behind httpapi's handler, with the default
// wallet (testKey(1)) in a fresh wallet directory; both are found through the environment.
type cliEnv struct {
	t         *testing.T
	daemon    *fakeDaemon
	walletDir string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	d := newFakeDaemon()
	h, err := httpapi.NewHandler(httpapi.Options{Service: d, Info: map[string]string{"chain_id": testChainID}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "default.json"), keys.MarshalSolanaJSON(testKey(1)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envAPIURL, srv.URL)
	t.Setenv(envWalletDir, dir)
	return &cliEnv{t: t, daemon: d, walletDir: dir}
}

// run executes a command line; the wallet directory reads as $WALLET_DIR in its output.
func (e *cliEnv) run(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code = Run(e.t.Context(), args, &out, &errOut)
	clean := func(s string) string { return strings.ReplaceAll(s, e.walletDir, "$WALLET_DIR") }
	return clean(out.String()), clean(errOut.String()), code
}

// ok runs a command that must succeed and returns its output.
func (e *cliEnv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// checkGolden compares got with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestGolden checks the text and JSON output of the read commands.
func TestGolden(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
		setup  func(*fakeDaemon)
	}{
		{golden: "wallet_show", args: []string{"wallet", "show"}},
		{golden: "wallet_balance", args: []string{"wallet", "balance"}},
		{golden: "wallet_balance_other", args: []string{"wallet", "balance", testAddr(6)}},
		{golden: "token_supply", args: []string{"token", "supply"}},
		{golden: "token_supply_unbalanced", args: []string{"token", "supply"},
			setup: func(d *fakeDaemon) { d.supply.Burned++ }},
		{golden: "validator_list", args: []string{"validator", "list"}},
		{golden: "validator_list_empty", args: []string{"validator", "list"},
			setup: func(d *fakeDaemon) { d.validators = nil }},
		{golden: "gov_list", args: []string{"gov", "list"}},
		{golden: "gov_show", args: []string{"gov", "show", "1"}},
		{golden: "gov_show_spend", args: []string{"gov", "show", "2"}},
		{golden: "gov_params", args: []string{"gov", "params"}},
		{golden: "stake_show", args: []string{"stake", "show"}},
		{golden: "node_history", args: []string{"node", "history", testAddr(4), "--limit", "3"}, setup: withNodeHistory},
		{golden: "node_history_empty", args: []string{"node", "history", "--wallet", "default"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			e := newCLIEnv(t)
			if tt.setup != nil {
				e.daemon.with(tt.setup)
			}
			checkGolden(t, tt.golden+".golden", e.ok(tt.args...))
			js := e.ok(append(tt.args, "--output", "json")...)
			if !json.Valid([]byte(js)) {
				t.Errorf("--output json is not JSON:\n%s", js)
			}
			checkGolden(t, tt.golden+".json.golden", js)
		})
	}
}

func TestWalletNewAndImport(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("wallet", "new", "alice", "-o", "json")
	var info walletInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(e.walletDir, "alice.json")
	if info.Name != "alice" || info.File != "$WALLET_DIR/alice.json" {
		t.Errorf("wallet new reported %+v", info)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode())
	}
	data, _ := os.ReadFile(path)
	priv, err := keys.ParseSolanaJSON(data)
	if err != nil || string(keys.AddressOfKey(priv)) != info.Address {
		t.Fatalf("key file holds %v, %v; reported address %s", priv, err, info.Address)
	}

	if _, errOut, code := e.run("wallet", "new", "alice"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second wallet new: exit %d, %s", code, errOut)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("wallet new overwrote an existing key")
	}

	// A Solana CLI keypair file imports under a new name with the same address; the file
	// may live anywhere and the wallet may be named by path afterwards.
	solana := filepath.Join(t.TempDir(), "id.json")
	_ = os.WriteFile(solana, keys.MarshalSolanaJSON(testKey(5)), 0o600)
	out = e.ok("wallet", "import", "bob", solana)
	if !strings.Contains(out, testAddr(5)) {
		t.Errorf("import output %q lacks the address %s", out, testAddr(5))
	}
	if out := e.ok("wallet", "show", "--wallet", solana, "-o", "json"); !strings.Contains(out, testAddr(5)) {
		t.Errorf("wallet show by path: %s", out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"wallet", "import", "carol", filepath.Join(t.TempDir(), "missing.json")}, "no such file"},
		{[]string{"wallet", "new", "a b"}, "wallet name"},
		{[]string{"wallet", "new", ".hidden"}, "wallet name"},
		{[]string{"wallet", "show", "--wallet", "nobody"}, "omnisync wallet new nobody"},
	} {
		if _, errOut, code := e.run(tt.args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	corrupt := keys.MarshalSolanaJSON(testKey(5))
	corrupt[1] ^= 1 // the public half no longer matches the seed
	_ = os.WriteFile(bad, corrupt, 0o600)
	if _, errOut, code := e.run("wallet", "import", "carol", bad); code != 1 || !strings.Contains(errOut, "invalid key") {
		t.Errorf("corrupt keypair: exit %d, %s", code, errOut)
	}
}

func TestWalletSend(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("wallet", "send", testAddr(2), "12.5")
	tx := e.daemon.lastTx(t)
	want := ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.Address(testAddr(2)), Amount: 12_500_000}}
	if tx.Signer != keys.Address(testAddr(1)) || tx.Body.Seq != 3 || !reflect.DeepEqual(tx.Body.Msg, want) {
		t.Errorf("sent %+v", tx.Body)
	}
	if !strings.Contains(out, "sent 12.5 OMNI") || !strings.Contains(out, "(block 42)") {
		t.Errorf("output %q", out)
	}

	// The next send uses the next sequence; JSON reports uomni.
	var r struct {
		txReceipt
		To     string `json:"to"`
		Amount uint64 `json:"amount"`
	}
	if err := json.Unmarshal([]byte(e.ok("wallet", "send", testAddr(2), "0.000001", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Amount != 1 || r.Height != 42 || r.From != testAddr(1) || e.daemon.lastTx(t).Body.Seq != 4 {
		t.Errorf("JSON receipt %+v", r)
	}
}

// Rejections and unreachable daemons read as what went wrong and what to do.
func TestTxErrors(t *testing.T) {
	e := newCLIEnv(t)
	tests := []struct {
		name  string
		txErr error
		args  []string
		want  []string
	}{
		{"insufficient funds", ledger.ErrorFor(ledger.CodeInsufficientFunds, "insufficient funds: A has 1 OMNI, needs 2 OMNI"),
			[]string{"wallet", "send", testAddr(2), "2"}, []string{"error: transfer from " + testAddr(1) + ": insufficient funds: A has 1 OMNI, needs 2 OMNI"}},
		{"wrong sequence", ledger.ErrorFor(ledger.CodeWrongSequence, "wrong sequence: 3, want 4"),
			[]string{"wallet", "send", testAddr(2), "2"}, []string{"wrong sequence", "run the command again"}},
		{"duplicate vote", ledger.ErrorFor(ledger.CodeDuplicate, "duplicate: already voted on proposal 1"),
			[]string{"gov", "vote", "1", "yes"}, []string{"error: vote from " + testAddr(1) + ": duplicate: already voted on proposal 1\n"}},
		{"stake too low", ledger.ErrorFor(ledger.CodeStakeTooLow, "stake too low: validators need 10000 OMNI"),
			[]string{"stake", "add", "--role", "validator", "--amount", "1"}, []string{"error: stake from " + testAddr(1) + ": stake too low: validators need 10000 OMNI\n"}},
		{"bad amount", nil, []string{"wallet", "send", testAddr(2), "1.0000001"}, []string{"AMOUNT", "more than 6 decimal places"}},
		{"bad recipient", nil, []string{"wallet", "send", "nobody", "1"}, []string{"invalid message: to:"}},
		{"no wallet", nil, []string{"wallet", "send", testAddr(2), "1", "--wallet", "ghost"}, []string{`no wallet "ghost"`, "omnisync wallet import ghost FILE"}},
		{"unreachable", nil, []string{"token", "supply", "--api", "http://127.0.0.1:1"},
			[]string{"cannot reach the OmniSync REST API at http://127.0.0.1:1", "omnisync devnet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.daemon.with(func(d *fakeDaemon) { d.txErr = tt.txErr })
			_, errOut, code := e.run(tt.args...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

// A flag beats the environment, which beats the default.
func TestAPIFlagOverridesEnv(t *testing.T) {
	e := newCLIEnv(t)
	url := os.Getenv(envAPIURL)
	t.Setenv(envAPIURL, "http://127.0.0.1:1")
	if _, _, code := e.run("token", "supply"); code != 1 {
		t.Error("OMNISYNC_API was not used")
	}
	e.ok("token", "supply", "--api", url)
	e.ok("token", "supply", "--api", strings.TrimPrefix(url, "http://")) // scheme optional
}

// TestWalletNamesStayInTheWalletDir is the attack of finding 8: a wallet name that is a
// path (../evil, a/b) made wallet new and import write a key outside --wallet-dir. Every
// such name now fails with the rule it breaks, and no file appears anywhere.
func TestWalletNamesStayInTheWalletDir(t *testing.T) {
	e := newCLIEnv(t)
	root := t.TempDir()
	walletDir := filepath.Join(root, "home", "wallets")
	if err := os.MkdirAll(walletDir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envWalletDir, walletDir)
	work := filepath.Join(root, "home", "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(work) // a relative path must not land next to the test's sources either
	keyFile := filepath.Join(t.TempDir(), "id.json")
	_ = os.WriteFile(keyFile, keys.MarshalSolanaJSON(testKey(5)), 0o600)

	for _, tt := range []struct{ name, rule string }{
		{"../evil", "path separator"},
		{"../../evil", "path separator"},
		{"a/b", "path separator"},
		{`a\b`, "path separator"},
		{"/tmp/evil", "path separator"},
		{"..", "'..'"},
		{"a..b", "'..'"},
		{".hidden", "starts with '.'"},
		{"", "empty"},
		{"a b", "letters, digits"},
		{"é", "letters, digits"},
		{"_x", "start with a letter or digit"},
		{"evil.json", ".json"},
		{strings.Repeat("a", 65), "longer than 64"},
	} {
		for _, args := range [][]string{{"wallet", "new", tt.name}, {"wallet", "import", tt.name, keyFile}} {
			_, errOut, code := e.run(args...)
			if code != 1 || !strings.Contains(errOut, "invalid wallet name") || !strings.Contains(errOut, tt.rule) {
				t.Errorf("%q: exit %d, stderr %q; want the rule %q", args, code, errOut, tt.rule)
			}
		}
	}
	var files []string
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("rejected names wrote %v", files)
	}
	// The longest allowed name still works, in the wallet directory.
	long := strings.Repeat("a", 64)
	e.ok("wallet", "new", long)
	if _, err := os.Stat(filepath.Join(walletDir, long+".json")); err != nil {
		t.Error(err)
	}
}
