// Package cli holds the omnisync command tree (spf13/cobra). Commands parse flags, build a
// daemon's Options and run it; they hold no business logic. Every command that reports a
// result accepts --output json.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Version is set at build time with -ldflags "-X github.com/omnisync/omnisync/internal/cli.Version=…".
var Version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root, g := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	}
	fmt.Fprintln(stderr, "error:", err)
	if g.json() {
		_ = writeJSON(stdout, map[string]string{"error": err.Error(), "code": errorCode(err)})
	}
	return 1
}

type globals struct {
	output   string
	logLevel string
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globals) json() bool { return g.output == "json" }

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl})), nil
}

func newRoot(stdout, stderr io.Writer) (*cobra.Command, *globals) {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "omnisync",
		Short:         "OmniSync: decentralized, verified AI compute",
		Long:          "OmniSync rents idle GPUs to AI developers; every result is verified and every payment settled on the OMNI chain.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			switch g.output {
			case "text", "json":
				return nil
			}
			return usageError{fmt.Errorf("--output %q: want text or json", g.output)}
		},
		Version: versionString(),
	}
	root.SetVersionTemplate("omnisync {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	root.AddCommand(newDevnetCmd(g), newChainCmd(g), newVersionCmd(g),
		newWalletCmd(g), newStakeCmd(g), newGovCmd(g), newTokenCmd(g), newValidatorCmd(g), newJobCmd(g),
		newRouterCmd(g), newNodeCmd(g), newConfigCmd(g), newStatusCmd(g))
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletions("text", "json"))
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	return root, g
}

// rejectUnknownSubcommands makes every group (a command that only holds subcommands) fail
// on an argument that names none of them, instead of printing its help and exiting 0. With
// no arguments a group still prints its help.
func rejectUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		rejectUnknownSubcommands(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only for the root
	}
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if name, ok := closest(args[0], cmd.SuggestionsFor(args[0])); ok {
			msg += fmt.Sprintf("; did you mean %q?", name)
		}
		return usageError{errors.New(msg)}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// closest is the name nearest to typed, counting a swap of two neighbouring letters as one
// edit ("sned" is one from "send", two from "new"); ties go to the earlier name.
func closest(typed string, names []string) (string, bool) {
	best, bestDist := "", -1
	for _, name := range names {
		if d := editDistance(typed, name); bestDist < 0 || d < bestDist {
			best, bestDist = name, d
		}
	}
	return best, bestDist >= 0
}

// editDistance is the optimal string alignment distance: insertions, deletions,
// substitutions and transpositions of adjacent letters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// usageError is a command line the user must fix: an unknown subcommand, flag or argument.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// namedArgs requires exactly the arguments its Use line lists and names them when they are
// missing: "wallet send needs RECIPIENT and AMOUNT: got 1 argument".
func namedArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		return usageError{fmt.Errorf("%s needs %s: got %s", commandName(cmd), joinAnd(names), plural(len(args), "argument"))}
	}
}

// optionalArg allows one optional argument called name.
func optionalArg(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= 1 {
			return nil
		}
		return usageError{fmt.Errorf("%s takes at most one argument, %s: got %d", commandName(cmd), name, len(args))}
	}
}

// commandName is cmd's path without the program's name: "wallet send".
func commandName(cmd *cobra.Command) string {
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// errorCode is the machine word --output json reports for err.
func errorCode(err error) string {
	var (
		ue usageError
		fe *api.FieldError
	)
	switch {
	case errors.Is(err, api.ErrNotFound), errors.Is(err, ledger.ErrNotFound):
		return "not_found"
	case errors.Is(err, api.ErrConflict), errors.Is(err, ledger.ErrDuplicate):
		return "conflict"
	case errors.Is(err, api.ErrUnauthorized), errors.Is(err, ledger.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, api.ErrForbidden):
		return "forbidden"
	case errors.Is(err, api.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, api.ErrInsufficientFunds), errors.Is(err, ledger.ErrInsufficientFunds):
		return "insufficient_funds"
	case errors.As(err, &ue), errors.As(err, &fe), errors.Is(err, api.ErrBadRequest), errors.Is(err, ledger.ErrInvalidMsg):
		return "invalid"
	}
	return "error"
}

// fixedCompletions completes a flag with a fixed set of values.
func fixedCompletions(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// versionString is the version, with the module version and Go toolchain that built it.
func versionString() string {
	v, goVersion := Version, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if m := bi.Main.Version; m != "" && m != "(devel)" && m != Version {
			v += " (module " + m + ")"
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	return v + ", " + goVersion
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if g.json() {
				return writeJSON(g.stdout, map[string]string{"version": Version})
			}
			fmt.Fprintln(g.stdout, "omnisync", Version)
			return nil
		},
	}
}
