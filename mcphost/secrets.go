package mcphost

import (
	"regexp"
	"sort"
	"strings"
)

// secretPattern is one kind of secret the scanner redacts.
type secretPattern struct {
	kind string
	// hint is a literal every match contains (cheap pre-filter), "" for none.
	hint string
	re   *regexp.Regexp
}

// Redaction counts the secrets of one kind replaced in a call's arguments
// or result.
type Redaction struct {
	// Kind names the secret, for example "private-key" or "aws-access-key".
	Kind string
	// Count is how many were replaced.
	Count int
}

// SecretScanner finds secrets in text and replaces each with a typed
// placeholder "[REDACTED:kind]". The zero value is not usable; build it with
// NewSecretScanner.
type SecretScanner struct {
	patterns []secretPattern
	own      []string
}

// NewSecretScanner returns a scanner for private keys, cloud and API tokens
// and the given own secrets (values shorter than 8 bytes are ignored).
func NewSecretScanner(own []string) *SecretScanner {
	// Every expression starts with a literal, so the regexp engine jumps
	// from one occurrence of it to the next instead of stepping through
	// every byte; the hint check skips an expression whose literal is
	// absent altogether. Matches are not bounded by \b: a key glued to a
	// word is still a key, and a false redaction costs little.
	s := &SecretScanner{patterns: []secretPattern{
		{"private-key", "PRIVATE KEY", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|$)`)},
		{"aws-access-key", "AKIA", regexp.MustCompile(`AKIA[0-9A-Z]{16}`)},
		{"aws-access-key", "ASIA", regexp.MustCompile(`ASIA[0-9A-Z]{16}`)},
		{"aws-secret-key", "", regexp.MustCompile(`(?i)aws_?secret_?access_?key["'\s:=]{1,8}[A-Za-z0-9/+]{40}`)},
		{"github-token", "gh", regexp.MustCompile(`gh[pousr]_[A-Za-z0-9]{36,255}`)},
		{"github-token", "github_pat_", regexp.MustCompile(`github_pat_[A-Za-z0-9_]{60,255}`)},
		{"google-api-key", "AIza", regexp.MustCompile(`AIza[0-9A-Za-z_-]{35}`)},
		{"slack-token", "xox", regexp.MustCompile(`xox[abposr]-[0-9A-Za-z-]{10,}`)},
		{"stripe-key", "sk_live_", regexp.MustCompile(`sk_live_[0-9A-Za-z]{20,}`)},
		{"stripe-key", "rk_live_", regexp.MustCompile(`rk_live_[0-9A-Za-z]{20,}`)},
		{"openai-key", "sk-", regexp.MustCompile(`sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}`)},
		{"jwt", "eyJ", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
	}}
	for _, o := range own {
		if len(o) >= 8 {
			s.own = append(s.own, o)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(s.own, func(i, j int) bool { return len(s.own[i]) > len(s.own[j]) })
	return s
}

// Redact returns text with every secret replaced by "[REDACTED:kind]", and
// adds what it replaced to counts (kind → number).
func (s *SecretScanner) Redact(text string, counts map[string]int) string {
	for _, o := range s.own {
		if n := strings.Count(text, o); n > 0 {
			text = strings.ReplaceAll(text, o, "[REDACTED:talos-secret]")
			counts["talos-secret"] += n
		}
	}
	lowerChecked, hasSecretWord := false, false
	for _, p := range s.patterns {
		if p.hint != "" && !strings.Contains(text, p.hint) {
			continue
		}
		if p.hint == "" { // the case-insensitive AWS secret: look for "secret" first
			if !lowerChecked {
				lowerChecked, hasSecretWord = true, containsFold(text, "secret")
			}
			if !hasSecretWord {
				continue
			}
		}
		n := 0
		text = p.re.ReplaceAllStringFunc(text, func(string) string {
			n++
			return "[REDACTED:" + p.kind + "]"
		})
		if n > 0 {
			counts[p.kind] += n
		}
	}
	return text
}

// redactValue redacts every string inside a decoded JSON value in place
// (maps and slices are modified) and returns the new value.
func (s *SecretScanner) redactValue(v any, counts map[string]int) any {
	switch x := v.(type) {
	case string:
		return s.Redact(x, counts)
	case map[string]any:
		for k, e := range x {
			x[k] = s.redactValue(e, counts)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = s.redactValue(e, counts)
		}
		return x
	}
	return v
}

func redactions(counts map[string]int) []Redaction {
	var out []Redaction
	for _, k := range sortedKeys(counts) {
		out = append(out, Redaction{Kind: k, Count: counts[k]})
	}
	return out
}

// containsFold reports whether text contains the lower-case ASCII word w in
// any letter case.
func containsFold(text, w string) bool {
	for i := 0; i+len(w) <= len(text); i++ {
		j := 0
		for j < len(w) && text[i+j]|0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}
