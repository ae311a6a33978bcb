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

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/omnisync/omnisync/internal/cli.Version=…".
var Version = "dev"

// exitError carries a process exit code through cobra.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run executes the command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
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

func newRoot(stdout, stderr io.Writer) *cobra.Command {
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
			return fmt.Errorf("--output %q: want text or json", g.output)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	root.AddCommand(newDevnetCmd(g), newChainCmd(g), newVersionCmd(g),
		newWalletCmd(g), newStakeCmd(g), newGovCmd(g), newTokenCmd(g), newValidatorCmd(g), newJobCmd(g),
		newRouterCmd(g), newNodeCmd(g), newConfigCmd(g))
	return root
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
