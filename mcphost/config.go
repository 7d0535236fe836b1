package mcphost

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/server"
	talos "github.com/talos-ironclad/talos"
)

// Defaults of a server entry (`mcp_servers.<name>` in config.yaml).
const (
	// DefaultTimeoutSeconds is the per-request timeout of a server whose
	// TimeoutSeconds is 0: 30 s.
	DefaultTimeoutSeconds = 30
	// MinTimeoutSeconds and MaxTimeoutSeconds bound TimeoutSeconds: a
	// value outside [1, 300] is refused.
	MinTimeoutSeconds = 1
	MaxTimeoutSeconds = 300
	// DefaultMaxRetries is how many times in a row a server that failed is
	// restarted before the host gives up on it, when MaxRetries is nil
	// (2).
	DefaultMaxRetries = 2
	// MaxMaxRetries is the largest MaxRetries accepted.
	MaxMaxRetries = 20
	// DefaultMaxResultBytes caps the size of one tool result handed to the
	// model when Config.MaxResultBytes is 0; larger results are truncated.
	DefaultMaxResultBytes = 64 << 10
	// BaseRetryDelay is the wait before the first restart of a failed
	// server; each further consecutive failure doubles it up to
	// MaxRetryDelay.
	BaseRetryDelay = time.Second
	// MaxRetryDelay caps the wait between two restarts of a failed server.
	MaxRetryDelay = 30 * time.Second
)

// DefaultEnvAllowlist returns the names of the host environment variables
// a stdio server inherits when Config.EnvAllowlist is empty. Nothing else of
// the host's environment reaches a server; a server's own Env entries are
// added on top.
func DefaultEnvAllowlist() []string {
	return []string{"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "TERM"}
}

// deniedEnvNames are the secrets Talos itself holds (the original
// specification's denylist plus the ones it forgot). They are refused in a
// server's Env and in the EnvAllowlist.
var deniedEnvNames = []string{
	"GEMINI_API_KEY", "TALOS_SECRET", "REDIS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN",
	"DATABASE_PASSWORD", "PRIVATE_KEY", "POSTGRES_PASSWORD", "BASIC_AUTH_PASS", "TALOS_HMAC_KEY",
	"STRIKE_KEY", "AUDIT_KEY", "TALOS_TTS_SEED", "TAILSCALE_AUTH_KEY",
}

// ServerConfig is one entry of `mcp_servers:` in config.yaml, keyed by Name.
type ServerConfig struct {
	// Name is the entry's key: letters, digits, '_' and '-' (no dots, so
	// the qualified tool name "server.tool" is unambiguous), at most 64.
	Name string `yaml:"-"`
	// Command is the executable of a stdio server: an absolute path, or a
	// bare name looked up on PATH. After resolving symlinks it must lie in
	// Config.AllowedCommands. Exactly one of Command, URL and InProcess is
	// set.
	Command string `yaml:"command"`
	// URL is the endpoint of a server reached over the network: https, or
	// http to a loopback address only (localhost, 127.0.0.0/8, ::1).
	URL string `yaml:"url"`
	// Transport is "stdio" (the default with Command), "http" (streamable
	// HTTP, the default with URL) or "sse" (the older HTTP+SSE transport).
	Transport string `yaml:"transport"`
	// Headers are sent with every request to a URL server (for example its
	// Authorization). Values holding one of Config.Secrets are refused.
	Headers map[string]string `yaml:"headers"`
	// Args are the command's arguments. Flags that make a server listen
	// on the network (--port, --host, --listen, --serve, --http, --bind,
	// --address and their =value forms) and the bare transport words
	// "serve", "sse", "http" and "streamableHttp" are refused.
	Args []string `yaml:"args"`
	// Description is free text for operators.
	Description string `yaml:"description"`
	// Enabled is nil for the default (true); a disabled server is not
	// registered at all.
	Enabled *bool `yaml:"enabled"`
	// TimeoutSeconds bounds every request to the server; 0 means
	// DefaultTimeoutSeconds, otherwise 1–300.
	TimeoutSeconds int `yaml:"timeout_seconds"`
	// AutoStart keeps the server running from Host.Start on. A server
	// without it is still started once at Host.Start to discover its tools,
	// then stopped and started again at its first call.
	AutoStart bool `yaml:"auto_start"`
	// Env adds variables to the server's environment. Names of Talos's own
	// secrets and values containing any of Config.Secrets are refused.
	Env map[string]string `yaml:"env"`
	// MaxRetries is how many times in a row a failed server is restarted
	// before the host gives up on it (until Host.Reset); nil means
	// DefaultMaxRetries, 0 means never restart.
	MaxRetries *int `yaml:"max_retries"`
	// InProcess, for Go users, serves the tools of an mcp-go server in this
	// process instead of running Command. Exactly one of Command, URL and
	// InProcess is set.
	InProcess *server.MCPServer `yaml:"-"`
}

// Config configures a Host.
type Config struct {
	// Servers are the tool servers, in priority order: when two servers
	// offer a tool of the same name, the earlier one keeps it and the
	// later one's is refused.
	Servers []ServerConfig
	// AllowedCommands are absolute paths of executables, or of directories
	// whose executables (at any depth) may run as servers. Entries are
	// compared after resolving symlinks. Empty means no stdio server may
	// run (in-process servers need no entry).
	AllowedCommands []string
	// EnvAllowlist names the host environment variables a stdio server
	// inherits; empty means DefaultEnvAllowlist.
	EnvAllowlist []string
	// Secrets are values of Talos's own secrets. They may not appear in a
	// server's Env, and they are redacted from tool arguments and results.
	Secrets []string
	// Allow lists the tools that may be called, as "server.tool" or
	// "server.*"; empty allows every tool not denied.
	Allow []string
	// Deny lists tools that may never be called, in the same form; Deny
	// wins over Allow.
	Deny []string
	// RequireApproval quarantines a server seen for the first time until
	// Host.Approve; false trusts the definitions first discovered (they
	// are pinned, and any later change quarantines the server).
	RequireApproval bool
	// MaxResultBytes caps a tool result; 0 means DefaultMaxResultBytes.
	MaxResultBytes int
	// Logger receives operational messages and, at debug level, each
	// stdio server's stderr; nil discards them.
	Logger *slog.Logger
}

var (
	reServerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	reEnvName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	rePattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(\*|[A-Za-z0-9_][A-Za-z0-9_.-]*)$`)
)

// networkFlags are refused as arguments (compared case-insensitively,
// before any '='): they make a server listen on the network.
var networkFlags = []string{"port", "host", "listen", "serve", "http", "bind", "address", "addr"}

// networkWords are bare arguments that switch the reference servers to a
// network transport.
var networkWords = []string{"serve", "sse", "http", "streamablehttp"}

// Transports of a server entry.
const (
	TransportStdio     = "stdio"
	TransportHTTP      = "http"
	TransportSSE       = "sse"
	TransportInProcess = "inprocess"
)

// resolved is a validated server entry with its defaults applied.
type resolved struct {
	cfg        ServerConfig
	transport  string // TransportStdio, TransportHTTP, TransportSSE or TransportInProcess
	path       string // absolute command path of a stdio server
	env        []string
	timeout    time.Duration
	maxRetries int
}

// Validate checks cfg and reports every problem at once (errors.Join of
// T010 errors, each naming the field, the value and what is allowed). It
// resolves commands on this machine, so it also catches a command that is
// missing or outside AllowedCommands.
func (cfg Config) Validate() error {
	_, err := cfg.resolve()
	return err
}

func (cfg Config) resolve() ([]resolved, error) {
	const op = "mcphost.Config"
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, talos.Errorf(talos.CodeConfigInvalid, op, format, args...))
	}

	allowEnv := cfg.EnvAllowlist
	if len(allowEnv) == 0 {
		allowEnv = DefaultEnvAllowlist()
	}
	for _, n := range allowEnv {
		switch {
		case !reEnvName.MatchString(n):
			bad("EnvAllowlist entry %s is not a variable name: use letters, digits and '_'", clip(n))
		case secretName(n):
			bad("EnvAllowlist entry %s names a secret: Talos never passes its own secrets to a tool server; remove it", clip(n))
		}
	}

	var allowed []string
	for _, a := range cfg.AllowedCommands {
		if !filepath.IsAbs(a) {
			bad("AllowedCommands entry %s is not an absolute path: list executables or directories by absolute path", clip(a))
			continue
		}
		r, err := filepath.EvalSymlinks(a)
		if err != nil {
			bad("AllowedCommands entry %s cannot be resolved (%v): list paths that exist", clip(a), err)
			continue
		}
		allowed = append(allowed, r)
	}

	for _, p := range slices.Concat(cfg.Allow, cfg.Deny) {
		if !rePattern.MatchString(p) {
			bad("Allow/Deny pattern %s is not of the form server.tool or server.*", clip(p))
		}
	}
	if cfg.MaxResultBytes < 0 {
		bad("MaxResultBytes %d is negative: use 0 for the default (%d) or a positive size", cfg.MaxResultBytes, DefaultMaxResultBytes)
	}
	for _, s := range cfg.Secrets {
		if len(s) < 8 {
			bad("Secrets holds a value of %d characters: secrets shorter than 8 characters would redact ordinary text; leave them out", len(s))
		}
	}

	var out []resolved
	seen := map[string]bool{}
	for i, sc := range cfg.Servers {
		field := fmt.Sprintf("mcp_servers[%d]", i)
		if reServerName.MatchString(sc.Name) {
			field = "mcp_servers." + sc.Name
		}
		r := resolved{cfg: sc, timeout: DefaultTimeoutSeconds * time.Second, maxRetries: DefaultMaxRetries}
		switch {
		case !reServerName.MatchString(sc.Name):
			bad("%s: name %s is not allowed: use 1–64 letters, digits, '_' or '-', starting with a letter or digit (no dots)", field, clip(sc.Name))
		case seen[strings.ToLower(sc.Name)]:
			bad("%s: the name is used twice (names are compared without case): give each server its own name", field)
		}
		seen[strings.ToLower(sc.Name)] = true
		if sc.Enabled != nil && !*sc.Enabled {
			continue
		}

		set := 0
		for _, b := range []bool{sc.Command != "", sc.URL != "", sc.InProcess != nil} {
			if b {
				set++
			}
		}
		switch {
		case set > 1:
			bad("%s: more than one of command, url and an in-process server is set: set exactly one", field)
		case set == 0:
			bad("%s.command is missing: name the server's executable (absolute path or a name on PATH), or give its url", field)
		case sc.InProcess != nil:
			r.transport = TransportInProcess
		case sc.Command != "":
			r.transport = TransportStdio
			p, err := resolveCommand(sc.Command, allowed)
			if err != nil {
				bad("%s.command %s %v", field, clip(sc.Command), err)
			}
			r.path = p
		default:
			r.transport = TransportHTTP
			if err := checkURL(sc.URL); err != nil {
				bad("%s.url %s %v", field, clip(sc.URL), err)
			}
		}
		switch t := strings.ToLower(sc.Transport); {
		case t == "" || t == r.transport || set != 1:
		case t == TransportSSE && r.transport == TransportHTTP:
			r.transport = TransportSSE
		default:
			bad("%s.transport %s does not fit the entry: use stdio with command, http or sse with url", field, clip(sc.Transport))
		}
		if r.transport == TransportHTTP || r.transport == TransportSSE {
			if len(sc.Args) > 0 || len(sc.Env) > 0 {
				bad("%s: args and env apply to a command, not to a url server: remove them", field)
			}
			for _, k := range sortedKeys(sc.Headers) {
				if containsSecret(sc.Headers[k], cfg.Secrets) {
					bad("%s.headers.%s holds one of Talos's own secrets (value not shown): remove it", field, clip(k))
				}
			}
		} else if len(sc.Headers) > 0 {
			bad("%s.headers apply to a url server only: remove them", field)
		}
		for j, a := range sc.Args {
			if w := networkArg(a); w != "" {
				bad("%s.args[%d] %s makes the server listen on the network (%s): tool servers run over stdio only; remove it", field, j, clip(a), w)
			}
			if strings.ContainsRune(a, 0) {
				bad("%s.args[%d] contains a NUL byte", field, j)
			}
		}

		switch {
		case sc.TimeoutSeconds == 0:
		case sc.TimeoutSeconds < MinTimeoutSeconds || sc.TimeoutSeconds > MaxTimeoutSeconds:
			bad("%s.timeout_seconds %d is out of range: use %d–%d (0 means %d)", field, sc.TimeoutSeconds, MinTimeoutSeconds, MaxTimeoutSeconds, DefaultTimeoutSeconds)
		default:
			r.timeout = time.Duration(sc.TimeoutSeconds) * time.Second
		}
		if sc.MaxRetries != nil {
			if *sc.MaxRetries < 0 || *sc.MaxRetries > MaxMaxRetries {
				bad("%s.max_retries %d is out of range: use 0–%d (0 never restarts; leave it out for %d)", field, *sc.MaxRetries, MaxMaxRetries, DefaultMaxRetries)
			} else {
				r.maxRetries = *sc.MaxRetries
			}
		}

		if r.transport == TransportStdio {
			for _, n := range allowEnv {
				if v, ok := os.LookupEnv(n); ok && !secretName(n) {
					r.env = append(r.env, n+"="+v)
				}
			}
		}
		for _, n := range sortedKeys(sc.Env) {
			v := sc.Env[n]
			switch {
			case !reEnvName.MatchString(n):
				bad("%s.env: %s is not a variable name: use letters, digits and '_'", field, clip(n))
			case ourSecretName(n):
				bad("%s.env.%s names one of Talos's own secrets: it never reaches a tool server; remove it", field, n)
			case containsSecret(v, cfg.Secrets):
				bad("%s.env.%s holds one of Talos's own secrets (value not shown): remove it", field, n)
			case strings.ContainsRune(v, 0):
				bad("%s.env.%s contains a NUL byte", field, n)
			default:
				r.env = append(r.env, n+"="+v)
			}
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// resolveCommand finds cmd (absolute, or a bare name on PATH), resolves its
// symlinks and checks that the result lies inside one of allowed (already
// resolved). It returns the absolute path to execute.
func resolveCommand(cmd string, allowed []string) (string, error) {
	var p string
	switch {
	case filepath.IsAbs(cmd):
		p = filepath.Clean(cmd)
	case strings.ContainsRune(cmd, '/'):
		return "", errors.New("is a relative path: use an absolute path or a bare name found on PATH")
	default:
		lp, err := exec.LookPath(cmd)
		if err != nil {
			return "", errors.New("is not found on PATH: install it or give its absolute path")
		}
		if p, err = filepath.Abs(lp); err != nil {
			return "", fmt.Errorf("cannot be made absolute: %v", err)
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", errors.New("does not exist: install it or fix the path")
	}
	st, err := os.Stat(real)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("resolves to %s, which is not an executable file", clip(real))
	}
	for _, a := range allowed {
		if real == a || within(a, real) {
			return p, nil
		}
	}
	return "", fmt.Errorf("resolves to %s, which is outside AllowedCommands: add that file or its directory to AllowedCommands", clip(real))
}

// checkURL accepts https URLs, and http ones to a loopback address.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.User != nil:
		return errors.New("carries credentials: send them in headers instead")
	case u.Host == "":
		return errors.New("has no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme != "http":
		return errors.New("must use https (or http to a loopback address)")
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("uses plain http to a host that is not loopback: use https")
}

// within reports whether p lies strictly below directory dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// networkArg returns why a is a network-listening argument, or "".
func networkArg(a string) string {
	l := strings.ToLower(a)
	if strings.HasPrefix(l, "-") {
		name, _, _ := strings.Cut(strings.TrimLeft(l, "-"), "=")
		if slices.Contains(networkFlags, name) {
			return "flag --" + name
		}
		return ""
	}
	if slices.Contains(networkWords, l) {
		return "transport " + l
	}
	return ""
}

// ourSecretName reports whether n names one of Talos's own secrets.
func ourSecretName(n string) bool {
	u := strings.ToUpper(n)
	return slices.Contains(deniedEnvNames, u) || strings.HasPrefix(u, "TALOS_")
}

// secretName reports whether an inherited variable n looks like a secret:
// one of ours, or any name with SECRET, PASSWORD, TOKEN or KEY in it.
func secretName(n string) bool {
	u := strings.ToUpper(n)
	if ourSecretName(u) {
		return true
	}
	for _, w := range []string{"SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "CREDENTIAL"} {
		if strings.Contains(u, w) {
			return true
		}
	}
	return false
}

func containsSecret(v string, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && strings.Contains(v, s) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// clip quotes s for an error message: control characters escaped, at most
// 80 characters kept.
func clip(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}
