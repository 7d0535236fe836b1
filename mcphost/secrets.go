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
	s := &SecretScanner{patterns: []secretPattern{
		{"private-key", "PRIVATE KEY", regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)},
		{"aws-access-key", "", regexp.MustCompile(`\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b`)},
		{"aws-secret-key", "", regexp.MustCompile(`(?i)aws_?secret_?access_?key["'\s:=]+[A-Za-z0-9/+]{40}\b`)},
		{"github-token", "", regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b`)},
		{"google-api-key", "AIza", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`)},
		{"slack-token", "xox", regexp.MustCompile(`\bxox[abposr]-[0-9A-Za-z-]{10,}\b`)},
		{"stripe-key", "_live_", regexp.MustCompile(`\b[rs]k_live_[0-9A-Za-z]{20,}\b`)},
		{"openai-key", "sk-", regexp.MustCompile(`\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}\b`)},
		{"jwt", "eyJ", regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)},
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
	for _, p := range s.patterns {
		if p.hint != "" && !strings.Contains(text, p.hint) {
			continue
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
