package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"

	"github.com/omnisync/omnisync/internal/config"
)

func newConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the daemons' merged configuration",
	}
	var role, file string
	print := &cobra.Command{
		Use:   "print",
		Short: "Print each setting's merged value and where it came from (default, file, env, flag)",
		Long: `Merges the built-in defaults, --config (or OMNISYNC_CONFIG) and the OMNISYNC_* environment
variables as the daemon commands do, and prints the result as a TOML file whose comments say
where each value came from; a daemon's own flags override it further. Nothing here is secret:
daemons name their wallet, whose key stays in its file.`,
		Example: `  omnisync config print --role router --config /etc/omnisync/omnisync.toml
  omnisync config print --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles := config.Roles
			if role != "" {
				if !slices.Contains(config.Roles, role) {
					return fmt.Errorf("--role %q: want one of %s", role, strings.Join(config.Roles, ", "))
				}
				roles = []string{role}
			}
			if !cmd.Flags().Changed("config") {
				file = os.Getenv(config.EnvConfig)
			}
			c, err := config.Load(config.Inputs{File: file})
			if err != nil {
				return err
			}
			var problems []error
			for _, r := range roles {
				if err := c.Validate(r); err != nil {
					problems = append(problems, err)
				}
			}
			if g.json() {
				err = g.printConfigJSON(c, roles)
			} else {
				err = g.printConfigText(c, roles)
			}
			if err != nil {
				return err
			}
			if len(problems) > 0 {
				return fmt.Errorf("the configuration has problems; the daemons would refuse it:\n%w", errors.Join(problems...))
			}
			return nil
		},
	}
	print.Flags().StringVar(&role, "role", "", "print one role: chain, router, node or validator (default all)")
	_ = print.RegisterFlagCompletionFunc("role", fixedCompletions(config.Roles...))
	print.Flags().StringVar(&file, "config", "", "TOML config file (env "+config.EnvConfig+")")
	cmd.AddCommand(print)
	return cmd
}

// configReport is config print's JSON.
type configReport struct {
	ConfigFile string           `json:"config_file"`
	Settings   []config.Setting `json:"settings"`
}

func (g *globals) printConfigJSON(c *config.Config, roles []string) error {
	r := configReport{ConfigFile: c.File, Settings: []config.Setting{}}
	for _, role := range roles {
		r.Settings = append(r.Settings, c.Settings(role)...)
	}
	return writeJSON(g.stdout, r)
}

// printConfigText writes a TOML file that would configure the same, with each value's
// origin as a comment.
func (g *globals) printConfigText(c *config.Config, roles []string) error {
	w := g.stdout
	if c.File != "" {
		fmt.Fprintf(w, "# merged: defaults ← %s ← OMNISYNC_* environment (a daemon's flags override these)\n", c.File)
	} else {
		fmt.Fprintf(w, "# merged: defaults ← OMNISYNC_* environment (no config file; a daemon's flags override these)\n")
	}
	for _, role := range roles {
		settings := c.Settings(role)
		lines := make([]string, len(settings))
		width := 0
		for i, s := range settings {
			v, err := tomlValue(s.Value)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Key, err)
			}
			lines[i] = strings.TrimPrefix(s.Key, role+".") + " = " + v
			width = max(width, len(lines[i]))
		}
		fmt.Fprintf(w, "\n[%s]\n", role)
		for i, s := range settings {
			origin := string(s.Source)
			switch s.Source {
			case config.FromFile:
				origin = "file"
			case config.FromEnv:
				origin = "env " + s.Env
			}
			fmt.Fprintf(w, "%-*s  # %s\n", width, lines[i], origin)
		}
	}
	return nil
}

// tomlValue renders one value as TOML writes it.
func tomlValue(v any) (string, error) {
	b, err := toml.Marshal(map[string]any{"v": v})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimPrefix(string(bytes.TrimSpace(b)), "v = ")), nil
}
