package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// The tests here follow what a new user hit (issue 11): each case failed before its fix.

func TestMistypedSubcommandFailsWithASuggestion(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"wallet", "sned"}, `unknown command "sned" for "omnisync wallet"; did you mean "send"?`},
		{[]string{"gov", "lst"}, `unknown command "lst" for "omnisync gov"; did you mean "list"?`},
		{[]string{"stake", "ad"}, `unknown command "ad" for "omnisync stake"; did you mean "add"?`},
		{[]string{"job", "stauts"}, `unknown command "stauts" for "omnisync job"; did you mean "status"?`},
		{[]string{"chain", "strat"}, `unknown command "strat" for "omnisync chain"; did you mean "start"?`},
		{[]string{"wallet", "xyzzy"}, `unknown command "xyzzy" for "omnisync wallet"` + "\n"},
	} {
		out, errOut, code := e.run(tt.args...)
		if code != 1 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q, want exit 1 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
	for _, group := range []string{"wallet", "gov", "job", "node"} {
		if out := e.ok(group); !strings.Contains(out, "Available Commands:") {
			t.Errorf("%s with no arguments printed %q, want its help", group, out)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	out := runOK(t, "--version")
	if !strings.HasPrefix(out, "omnisync "+Version) || !strings.Contains(out, "go1.") {
		t.Errorf("--version printed %q, want the version and Go's (%s)", out, runtime.Version())
	}
}

func TestErrorsAsJSON(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args      []string
		wantError string
		wantCode  string
	}{
		{[]string{"gov", "show", "99", "-o", "json"}, "proposal 99 not found", "not_found"},
		{[]string{"-o", "json", "wallet", "send", testAddr(2)}, "wallet send needs RECIPIENT and AMOUNT: got 1 argument", "invalid"},
		{[]string{"wallet", "sned", "-o", "json"}, `unknown command "sned" for "omnisync wallet"; did you mean "send"?`, "invalid"},
		{[]string{"wallet", "balance", "-o", "json", "--bogus"}, "unknown flag: --bogus", "invalid"},
	} {
		out, errOut, code := e.run(tt.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tt.args, code)
		}
		got := decodeJSON[map[string]string](t, out)
		if got["error"] != tt.wantError || got["code"] != tt.wantCode || len(got) != 2 {
			t.Errorf("%v printed %v, want error %q, code %q", tt.args, got, tt.wantError, tt.wantCode)
		}
		if !strings.Contains(errOut, tt.wantError) {
			t.Errorf("%v: stderr %q, want the message too", tt.args, errOut)
		}
	}
	if out, _, code := e.run("gov", "show", "99"); code != 1 || out != "" {
		t.Errorf("text output: exit %d, stdout %q, want 1 and nothing", code, out)
	}
}

func TestErrorCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: proposal 9", api.ErrNotFound), "not_found"},
		{fmt.Errorf("%w: job 3", api.ErrConflict), "conflict"},
		{api.ErrUnauthorized, "unauthorized"},
		{api.ErrForbidden, "forbidden"},
		{fmt.Errorf("%w: broadcast", api.ErrUnavailable), "unavailable"},
		{fmt.Errorf("%w: need 5 OMNI", ledger.ErrInsufficientFunds), "insufficient_funds"},
		{&api.FieldError{Field: "address", Msg: "bad"}, "invalid"},
		{usageError{errors.New("wallet send needs RECIPIENT and AMOUNT: got 0 arguments")}, "invalid"},
		{errors.New("disk full"), "error"},
	} {
		if got := errorCode(tt.err); got != tt.want {
			t.Errorf("errorCode(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestArgumentErrorsNameTheArguments(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"wallet", "send", testAddr(2)}, "error: wallet send needs RECIPIENT and AMOUNT: got 1 argument\n"},
		{[]string{"wallet", "new"}, "error: wallet new needs NAME: got 0 arguments\n"},
		{[]string{"wallet", "import", "a", "b", "c"}, "error: wallet import needs NAME and KEYPAIR_FILE: got 3 arguments\n"},
		{[]string{"wallet", "balance", testAddr(2), testAddr(3)}, "error: wallet balance takes at most one argument, ADDRESS: got 2\n"},
		{[]string{"stake", "show", testAddr(2), testAddr(3)}, "error: stake show takes at most one argument, ADDRESS: got 2\n"},
		{[]string{"gov", "vote", "1"}, "error: gov vote needs ID and yes|no|abstain: got 1 argument\n"},
		{[]string{"gov", "show"}, "error: gov show needs ID: got 0 arguments\n"},
	} {
		if _, errOut, code := e.run(tt.args...); code != 1 || errOut != tt.want {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestProposalNotFoundSaysItOnce(t *testing.T) {
	e := newCLIEnv(t)
	// a real daemon wraps the ledger's sentinel in the API's: "not found: not found: proposal 99"
	e.daemon.with(func(d *fakeDaemon) { d.proposals = nil })
	if _, errOut, code := e.run("gov", "show", "99"); code != 1 || errOut != "error: proposal 99 not found\n" {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestVoteHintIsACommandToPaste(t *testing.T) {
	e := newCLIEnv(t)
	api := os.Getenv(envAPIURL)
	out := e.ok("gov", "propose", "--title", "t", "--param", "fee_bp=400")
	if want := "omnisync gov vote 3 yes -w default --api " + api + "\n"; !strings.Contains(out, want) {
		t.Errorf("propose printed %q, want %q", out, want)
	}
	f := &remoteFlags{api: defaultAPIURL, wallet: "my wallet's.json"}
	if got, want := f.voteCommand(7), `omnisync gov vote 7 yes -w 'my wallet'\''s.json'`; got != want {
		t.Errorf("voteCommand = %q, want %q", got, want)
	}
}

func TestCompletionOffersValues(t *testing.T) {
	e := newCLIEnv(t)
	for _, name := range []string{"alice.json", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(e.walletDir, name), []byte("[]"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"wallet", "send", "-w", ""}, "alice\ndefault\n:4\n"},
		{[]string{"gov", "vote", "--wallet", ""}, "alice\ndefault\n:4\n"},
		{[]string{"wallet", "show", "--wallet-dir", t.TempDir(), "-w", ""}, ":4\n"},
		{[]string{"token", "supply", "-o", ""}, "text\njson\n:4\n"},
		{[]string{"stake", "add", "--role", ""}, "node\nvalidator\n:4\n"},
		{[]string{"config", "print", "--role", ""}, "chain\nrouter\nnode\nvalidator\n:4\n"},
	} {
		if out := e.ok(append([]string{"__complete"}, tt.args...)...); out != tt.want {
			t.Errorf("completing %v: %q, want %q", tt.args, out, tt.want)
		}
	}
}

// The demo's burn line shows the chain's rate, which governance may have changed.
func TestBurnLabelShowsTheCurrentRate(t *testing.T) {
	for bp, want := range map[uint64]string{200: "burned (2%)", 150: "burned (1.5%)", 125: "burned (1.25%)", 5: "burned (0.05%)", 0: "burned (0%)"} {
		if got := burnLabelFor(bp); got != want {
			t.Errorf("burnLabelFor(%d) = %q, want %q", bp, got, want)
		}
	}
}
