package main

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/redact"
)

// homeFlag is the global flag that overrides TALOS_HOME.
const homeFlag = "home"

// setFlag is the global, repeatable flag `--set NAME=VALUE` that overrides
// one configuration variable (the flags layer: flags > env > talos.env >
// config.yaml > defaults).
const setFlag = "set"

// homeFrom returns the value of --home as seen by cmd (the root's persistent
// flag, or a local flag of the same name), or "" when not given.
func homeFrom(cmd *cobra.Command) string {
	if f := cmd.Flag(homeFlag); f != nil {
		return f.Value.String()
	}
	return ""
}

// setOverrides parses every --set NAME=VALUE given to cmd into a map of
// variable name → value. NAME may be written in upper case (the variable)
// or lower case (the config.yaml key). Every malformed pair and unknown name
// is reported at once (errors.Join, one line each), naming the flag and the
// name, never the value (it may be a secret).
func setOverrides(cmd *cobra.Command) (map[string]string, error) {
	f := cmd.Flag(setFlag)
	if f == nil {
		return nil, nil
	}
	sv, ok := f.Value.(interface{ GetSlice() []string })
	if !ok {
		return nil, nil
	}
	out := map[string]string{}
	var errs []error
	for i, pair := range sv.GetSlice() {
		name, val, ok := strings.Cut(pair, "=")
		name = strings.ToUpper(strings.TrimSpace(name))
		if !ok || name == "" {
			// Do not echo the argument: without '=' it may be a bare secret.
			errs = append(errs, fmt.Errorf("--set number %d is not NAME=VALUE (for example --set LOG_LEVEL=DEBUG)", i+1))
			continue
		}
		shown := name
		if !plainName.MatchString(name) {
			shown = redact.Value(name)
		}
		if name == config.EnvHome {
			errs = append(errs, fmt.Errorf("--set %s: the home directory is chosen with --home (or the %s environment variable)", name, config.EnvHome))
			continue
		}
		if !config.IsVariable(name) {
			errs = append(errs, fmt.Errorf("--set %s: %s is not a configuration variable%s; `talos config vars` lists every valid name", shown, shown, config.Suggest(name)))
			continue
		}
		out[name] = val
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// plainName is a --set name shown as it is in messages; any other is
// quoted and clipped.
var plainName = regexp.MustCompile(`^[A-Z0-9_]{1,64}$`)

// loadConfig loads the configuration for cmd: --home (else TALOS_HOME, else
// ~/talos), then config.yaml, talos.env, the environment, every --set
// NAME=VALUE and finally overrides (variable name → value, from the
// command's own flags such as run --health-addr; may be nil), each layer
// winning over the ones before.
// On invalid configuration it returns the Config filled as far as possible
// and a *config.ValidationError listing every problem. A malformed or
// unknown --set returns a nil Config and an error naming it.
func loadConfig(cmd *cobra.Command, overrides map[string]string) (*config.Config, error) {
	flags, err := setOverrides(cmd)
	if err != nil {
		return nil, err
	}
	for k, v := range overrides {
		if flags == nil {
			flags = map[string]string{}
		}
		flags[k] = v
	}
	return config.Load(config.LoadOptions{Home: homeFrom(cmd), Flags: flags})
}

// resolveHome returns the absolute home directory for cmd without reading
// the configuration files.
func resolveHome(cmd *cobra.Command) (string, error) {
	return config.ResolveHome(homeFrom(cmd), nil)
}

// reportProblems prints, to w, the configuration problems of the variables
// a command reads (uses), one per line with where the value came from, as
// `talos config validate` does, and returns them. Problems with variables
// the command does not read are not its business (a home never initialised
// has no BASIC_AUTH_PASS, which `ask` and `memory` do not need).
func reportProblems(w io.Writer, ve *config.ValidationError, uses func(name string) bool) []config.Problem {
	var mine []config.Problem
	for _, p := range ve.Problems {
		if uses(p.Var) {
			mine = append(mine, p)
		}
	}
	for _, p := range mine {
		src := ""
		if p.Source != "" && p.Source != "default" {
			src = " [" + p.Source + "]"
		}
		fmt.Fprintf(w, "%s: %s%s\n", p.Var, p.Message, src)
	}
	return mine
}
