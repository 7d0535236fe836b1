package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/talos-ironclad/talos"
)

// EnvHome is the variable that moves the whole tree.
const EnvHome = "TALOS_HOME"

// LoadOptions says where Load looks. The zero value reads the real
// environment and ~/talos.
type LoadOptions struct {
	// Home overrides TALOS_HOME (the --home flag). Empty: TALOS_HOME from
	// the environment, else ~/talos.
	Home string
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Flags are command-line overrides keyed by variable name
	// (for example {"LOG_LEVEL": "DEBUG"}); they win over everything.
	Flags map[string]string
	// SkipFiles makes Load ignore config.yaml and talos.env (for tests and
	// for commands that only need defaults and the environment).
	SkipFiles bool
}

// Load resolves the configuration with precedence flags > environment >
// talos.env > config.yaml > defaults, then validates it.
//
// It returns a *ValidationError listing every problem at once. Even then the
// returned Config is non-nil and filled as far as possible (so
// `talos config validate` can show it), but a daemon must not run with it.
// Unknown keys in config.yaml or talos.env are problems with their line
// numbers; a talos.env readable by group or others is refused.
func Load(opts LoadOptions) (*Config, error) {
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	home, err := resolveHome(opts.Home, lookup)
	if err != nil {
		return nil, err
	}
	c := &Config{Home: home, Origin: make(map[string]string, len(table))}

	type rawVal struct{ val, origin string }
	raw := make(map[string]rawVal, len(table))
	var probs []Problem
	envRefused := false

	// Lowest precedence first; later sources overwrite.
	if !opts.SkipFiles {
		yamlVals, yprobs := readYAMLFile(c.ConfigFile())
		probs = append(probs, yprobs...)
		for _, e := range yamlVals {
			raw[e.Key] = rawVal{e.Value, fmt.Sprintf("%s:%d", ConfigFileName, e.Line)}
		}
		envVals, eprobs := readEnvFile(c.EnvFile())
		probs = append(probs, eprobs...)
		if slices.ContainsFunc(eprobs, func(p Problem) bool { return p.Var == EnvFileName }) {
			// The file was refused, unreadable or has bad lines: a secret
			// it may set is unknown, so do not also claim it is missing.
			envRefused = true
		}
		for _, e := range envVals {
			raw[e.Key] = rawVal{e.Value, fmt.Sprintf("%s:%d", EnvFileName, e.Line)}
		}
	}
	for i := range table {
		if v, ok := lookup(table[i].name); ok {
			raw[table[i].name] = rawVal{v, "env"}
		}
	}
	for k, v := range opts.Flags {
		if lookupVar(k) == nil {
			probs = append(probs, Problem{Var: k, Value: "", Code: talos.CodeEnvInvalid, Source: "flag",
				Message: fmt.Sprintf("unknown configuration variable %q given as a flag override", k)})
			continue
		}
		raw[k] = rawVal{v, "flag"}
	}

	failed := map[string]bool{}
	for i := range table {
		v := &table[i]
		r, ok := raw[v.name]
		if !ok {
			r = rawVal{v.def, "default"}
		}
		c.Origin[v.name] = r.origin
		if envRefused && v.secret && r.origin == "default" {
			failed[v.name] = true // unknown, not missing
		}
		if p := v.parse(c, r.val); p != nil {
			if v.secret {
				p.Value = Redacted
			}
			p.Source = r.origin
			probs = append(probs, *p)
			failed[v.name] = true
			// Keep the default so the rest of the config stays usable.
			_ = v.parse(c, v.def)
		}
	}
	probs = append(probs, c.validate(failed)...)
	if len(probs) > 0 {
		return c, &ValidationError{Problems: probs}
	}
	return c, nil
}

// resolveHome picks --home, then TALOS_HOME, then ~/talos, as an absolute path.
func resolveHome(flag string, lookup func(string) (string, bool)) (string, error) {
	home := flag
	if home == "" {
		if v, ok := lookup(EnvHome); ok && strings.TrimSpace(v) != "" {
			home = strings.TrimSpace(v)
		}
	}
	if home == "" {
		uh, err := os.UserHomeDir()
		if err != nil {
			return "", talos.E(talos.CodeEnvInvalid, "config.Load", "cannot find the user's home directory; set TALOS_HOME or pass --home", err)
		}
		home = filepath.Join(uh, DefaultHomeDirName)
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return "", talos.E(talos.CodeEnvInvalid, "config.Load", fmt.Sprintf("TALOS_HOME %q cannot be made absolute", home), err)
	}
	return abs, nil
}

// readEnvFile parses talos.env if it exists. A missing file is not a
// problem (defaults and the environment may be enough). A file readable by
// group or others is refused (mode 600; 400 is accepted too).
func readEnvFile(path string) ([]Entry, []Problem) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []Problem{{Var: EnvFileName, Value: path, Code: talos.CodeEnvInvalid,
			Message: fmt.Sprintf("cannot read %s: %v", path, err)}}
	}
	var probs []Problem
	if !st.Mode().IsRegular() {
		// chmod advice would not help: it is the wrong kind of file.
		return nil, []Problem{{Var: EnvFileName, Value: path, Allowed: "a regular file, mode 0600",
			Code: talos.CodeConfigInvalid, Source: EnvFileName,
			Message: fmt.Sprintf("%s is a %s, not a regular file; move it away and put the secrets in a file of that name with mode 0600 (`talos init` writes one)", path, fileKind(st.Mode()))}}
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		probs = append(probs, Problem{
			Var: EnvFileName, Value: fmt.Sprintf("%04o", mode), Allowed: "0600 or 0400",
			Code: talos.CodeDirPermissions, Source: EnvFileName,
			Message: fmt.Sprintf("%s has mode %04o: it holds secrets and must not be readable by group or others; fix: chmod 600 %s", path, mode, path),
		})
		// Do not even use the values of an exposed secrets file.
		return nil, probs
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []Problem{{Var: EnvFileName, Value: path, Code: talos.CodeEnvInvalid,
			Message: fmt.Sprintf("cannot read %s: %v", path, err)}}
	}
	entries, err := ParseEnvFile(data)
	var perrs ParseErrors
	if errors.As(err, &perrs) {
		for _, pe := range perrs {
			probs = append(probs, Problem{Var: EnvFileName, Code: talos.CodeEnvInvalid, Source: fmt.Sprintf("%s:%d", EnvFileName, pe.Line),
				Message: pe.Msg})
		}
	}
	var out []Entry
	for _, e := range entries {
		if e.Key == EnvHome {
			probs = append(probs, Problem{Var: e.Key, Code: talos.CodeEnvInvalid, Source: fmt.Sprintf("%s:%d", EnvFileName, e.Line),
				Message: fmt.Sprintf("%s cannot be set inside talos.env (the file lives in TALOS_HOME); set it in the environment or pass --home", EnvHome)})
			continue
		}
		if lookupVar(e.Key) == nil {
			probs = append(probs, Problem{Var: e.Key, Code: talos.CodeEnvInvalid, Source: fmt.Sprintf("%s:%d", EnvFileName, e.Line),
				Message: fmt.Sprintf("unknown variable %s at line %d%s", e.Key, e.Line, suggest(e.Key))})
			continue
		}
		out = append(out, e)
	}
	return out, probs
}

// readYAMLFile parses config.yaml if it exists and maps its keys to
// variable names.
// A config.yaml that someone else could change (writable by group or
// others, owned by another user, or in a directory others can write) is
// refused: it sets TRUST_LEVEL and the prompts.
func readYAMLFile(path string) ([]Entry, []Problem) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err == nil {
		if why := unsafeFile(path, st); why != "" {
			return nil, []Problem{fileSafetyProblem(ConfigFileName, path, why)}
		}
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []Problem{{Var: ConfigFileName, Value: path, Code: talos.CodeConfigInvalid,
			Message: fmt.Sprintf("cannot read %s: %v", path, err)}}
	}
	entries, perrs := ParseYAML(data)
	var probs []Problem
	for _, pe := range perrs {
		name := ConfigFileName
		if pe.Key != "" {
			name = show(pe.Key)
		}
		probs = append(probs, Problem{Var: name, Value: show(pe.Key), Code: talos.CodeConfigInvalid,
			Source: fmt.Sprintf("%s:%d", ConfigFileName, pe.Line), Message: pe.Msg})
	}
	return entries, probs
}

// legacy maps the variables the original specification's scripts use without
// documenting them to what replaces them.
var legacy = map[string]string{
	"REDIS_HOST":    "TALOS_REDIS_URL=redis://HOST:PORT",
	"REDIS_PORT":    "TALOS_REDIS_URL=redis://HOST:PORT",
	"CHROMADB_HOST": "TALOS_CHROMA_URL=http://HOST:PORT",
	"CHROMADB_PORT": "TALOS_CHROMA_URL=http://HOST:PORT",
	"POSTGRES_HOST": "TALOS_POSTGRES_URL=postgres://USER@HOST:PORT/DB",
	"POSTGRES_PORT": "TALOS_POSTGRES_URL=postgres://USER@HOST:PORT/DB",
	"HEALTH_BIND":   "TALOS_HEALTH_ADDR=127.0.0.1:PORT",
	"HEALTH_PORT":   "TALOS_HEALTH_ADDR=127.0.0.1:PORT",
	"DOCKER_HOST":   "TALOS_DOCKER_HOST=unix:///var/run/docker.sock",
	"OLLAMA_HOST":   "TALOS_OLLAMA_URL=http://HOST:PORT",
}

// suggest returns a "did you mean" hint for a misspelt variable name.
func suggest(name string) string {
	if len(name) > 64 {
		return "" // no variable name is that long
	}
	if repl, ok := legacy[strings.ToUpper(name)]; ok {
		return fmt.Sprintf(" (Talos does not read %s; use %s)", strings.ToUpper(name), repl)
	}
	best, bestD := "", 4
	for i := range table {
		if d := editDistance(strings.ToUpper(name), table[i].name); d < bestD {
			best, bestD = table[i].name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Defaults returns a Config with every variable at its spec default and the
// tree rooted at home, ignoring files and the environment. It is not
// validated: BASIC_AUTH_PASS is empty. Tests and tools use it as a base.
func Defaults(home string) *Config {
	c := &Config{Home: home, Origin: make(map[string]string, len(table))}
	for i := range table {
		_ = table[i].parse(c, table[i].def)
		c.Origin[table[i].name] = "default"
	}
	return c
}

// ResolveHome returns the absolute home directory Load would use: home (the
// --home flag) if set, else TALOS_HOME from lookup (nil = os.LookupEnv),
// else ~/talos. Commands that need only the tree (`talos logs verify`) use
// it so a broken configuration does not stop them.
func ResolveHome(home string, lookup func(string) (string, bool)) (string, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return resolveHome(home, lookup)
}
