package config

import (
	"fmt"
	"strings"

	"github.com/talos-ironclad/talos"
)

// Problem is one thing wrong with the configuration. Value never holds a
// secret: secrets show as "<redacted>".
type Problem struct {
	Var     string     // the variable (TRUST_LEVEL) or file (talos.env) at fault
	Value   string     // the offending value, "<redacted>" for secrets
	Allowed string     // what is allowed, e.g. "0-5 (integer)"
	Message string     // a full sentence naming the variable, the value and the fix
	Code    talos.Code // T004 invalid value, T005 file permissions, T006 missing secret, T010 bad config file
	Source  string     // where the value came from: "config.yaml:12", "talos.env:3", "env", "flag", "default"
}

// String returns the message, prefixed by the source when it is a file line.
func (p Problem) String() string {
	if strings.Contains(p.Source, ":") {
		return p.Source + ": " + p.Message
	}
	return p.Message
}

// ValidationError holds every problem found, so an operator fixes them all
// in one pass: all errors are reported, not only the first.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	n := len(e.Problems)
	if n == 1 {
		b.WriteString("configuration is invalid (1 problem):")
	} else {
		fmt.Fprintf(&b, "configuration is invalid (%d problems):", n)
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Is makes errors.Is(err, talos.ErrEnvInvalid) true for any validation
// error, and errors.Is(err, talos.ErrSecretMissing) (or any other code) true
// when one of the problems carries that code.
func (e *ValidationError) Is(target error) bool {
	c, ok := target.(talos.Code)
	if !ok {
		return false
	}
	if c == talos.CodeEnvInvalid {
		return true
	}
	for _, p := range e.Problems {
		if p.Code == c {
			return true
		}
	}
	return false
}

// Validate checks every variable against its range and the cross-variable
// rules (required secrets, distinct ports, loopback health address). It
// returns nil or a *ValidationError listing all problems.
func (c *Config) Validate() error {
	probs := c.validate(nil)
	if len(probs) == 0 {
		return nil
	}
	return &ValidationError{Problems: probs}
}

// validate runs the checks, skipping variables in skip (they already failed
// to parse and have a problem of their own).
func (c *Config) validate(skip map[string]bool) []Problem {
	var probs []Problem
	for i := range table {
		v := &table[i]
		if skip[v.name] || v.check == nil {
			continue
		}
		for _, p := range v.check(c) {
			p.Source = c.Origin[v.name]
			probs = append(probs, p)
		}
	}
	probs = append(probs, c.crossChecks(skip)...)
	return probs
}

// crossChecks are the rules that involve more than one variable.
//
// Which secrets are required: the original specification marks
// GEMINI_API_KEY, BASIC_AUTH_PASS and POSTGRES_PASSWORD required but also
// wants the system local-first with no cloud dependency, and Talos must run
// on embedded defaults with no services. So:
//   - BASIC_AUTH_PASS is always required: the dashboard always runs and must
//     never be served without authentication (fail closed). `talos init`
//     generates one.
//   - GEMINI_API_KEY is required only when Gemini is enabled
//     (TALOS_GEMINI_ENABLED=true); without it the daemon is local-only.
//   - POSTGRES_PASSWORD is required only when PostgreSQL is configured
//     (TALOS_POSTGRES_URL set) and that URL carries no password itself;
//     otherwise the embedded SQLite store needs none.
//   - TAILSCALE_AUTH_KEY is never required (the table says optional).
func (c *Config) crossChecks(skip map[string]bool) []Problem {
	var probs []Problem
	var missing []string
	if c.BasicAuthPass == "" {
		missing = append(missing, "BASIC_AUTH_PASS")
	}
	if c.GeminiEnabled && c.GeminiAPIKey == "" {
		missing = append(missing, "GEMINI_API_KEY")
	}
	if c.PostgresURL != "" && c.PostgresPassword == "" && !urlHasPassword(c.PostgresURL) {
		missing = append(missing, "POSTGRES_PASSWORD")
	}
	for _, name := range missing {
		if skip[name] {
			continue
		}
		why, source := "", ""
		switch name {
		case "GEMINI_API_KEY":
			why, source = " (needed because TALOS_GEMINI_ENABLED=true)", "your Gemini API key, or set TALOS_GEMINI_ENABLED=false to stay local-only"
		case "POSTGRES_PASSWORD":
			why, source = " (needed because TALOS_POSTGRES_URL has no password)", "the password of the PostgreSQL role"
		case "BASIC_AUTH_PASS":
			why, source = " (the dashboard never runs without a password)", "`talos init` generates one"
		}
		probs = append(probs, Problem{
			Var: name, Allowed: "a non-empty secret", Code: talos.CodeSecretMissing,
			Message: fmt.Sprintf("Required variable %s is not set%s; set it in %s (%s)", name, why, c.EnvFile(), source),
		})
	}

	// Ports must be distinct.
	ports := []struct {
		name string
		port int
	}{{"WEB_PORT", c.WebPort}, {"WEB_HTTPS_PORT", c.WebHTTPSPort}}
	if c.MetricsEnabled {
		ports = append(ports, struct {
			name string
			port int
		}{"METRICS_PORT", c.MetricsPort})
	}
	if hp := portOf(c.HealthAddr); hp > 0 {
		ports = append(ports, struct {
			name string
			port int
		}{"TALOS_HEALTH_ADDR", hp})
	}
	for i := range ports {
		for j := i + 1; j < len(ports); j++ {
			if ports[i].port != 0 && ports[i].port == ports[j].port {
				probs = append(probs, Problem{
					Var: ports[j].name, Value: fmt.Sprint(ports[j].port), Allowed: "a port not used by " + ports[i].name,
					Code:    talos.CodeEnvInvalid,
					Message: fmt.Sprintf("%s and %s both use port %d; give each listener its own port", ports[i].name, ports[j].name, ports[j].port),
					Source:  c.Origin[ports[j].name],
				})
			}
		}
	}
	return probs
}
