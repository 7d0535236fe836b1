package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Entry is one KEY=VALUE setting read from a file, with its 1-based line.
type Entry struct {
	Key   string
	Value string
	Line  int
}

// ParseError is a syntax error in talos.env, with its 1-based line.
type ParseError struct {
	Line int
	Msg  string
}

// Error formats as "talos.env line N: msg".
func (e *ParseError) Error() string { return fmt.Sprintf("%s line %d: %s", EnvFileName, e.Line, e.Msg) }

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseEnvFile parses dotenv text: KEY=VALUE lines, blank lines, # comments
// (whole-line, or after whitespace in an unquoted value), an optional
// "export " prefix, 'single-quoted' literal values and "double-quoted" values
// with the escapes \n \t \r \\ \" \$. It never evaluates anything: $(cmd),
// `cmd` and $VAR stay literal text (the spec sources the file as shell,
// which runs code; digest A §2 ). A key set twice is an error, so is
// an unterminated quote, a line without '=' and a NUL byte.
func ParseEnvFile(data []byte) ([]Entry, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	var out []Entry
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.IndexByte(line, 0) >= 0 {
			return nil, &ParseError{n, "contains a NUL byte"}
		}
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(t, "export"); ok && len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			t = strings.TrimLeft(rest, " \t")
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			// The line is not echoed: it may be a pasted secret.
			return nil, &ParseError{n, fmt.Sprintf("expected KEY=VALUE, got a line of %d characters without '='", len(t))}
		}
		k = strings.TrimRight(k, " \t")
		if !envKeyRE.MatchString(k) {
			return nil, &ParseError{n, fmt.Sprintf("invalid variable name %q (letters, digits and _, not starting with a digit)", clip(k))}
		}
		val, err := parseEnvValue(strings.TrimLeft(v, " \t"))
		if err != "" {
			return nil, &ParseError{n, k + ": " + err}
		}
		if prev, dup := seen[k]; dup {
			return nil, &ParseError{n, fmt.Sprintf("%s is already set at line %d", k, prev)}
		}
		seen[k] = n
		out = append(out, Entry{Key: k, Value: val, Line: n})
	}
	return out, nil
}

// parseEnvValue returns the value or a reason it is malformed.
func parseEnvValue(v string) (string, string) {
	if v == "" {
		return "", ""
	}
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", "unterminated single quote"
		}
		if bad := trailing(v[end+2:]); bad != "" {
			return "", bad
		}
		return v[1 : end+1], ""
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			ch := v[i]
			switch ch {
			case '\\':
				if i+1 >= len(v) {
					return "", "unterminated double quote"
				}
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '\\', '"', '$', '`':
					b.WriteByte(v[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(v[i])
				}
			case '"':
				if bad := trailing(v[i+1:]); bad != "" {
					return "", bad
				}
				return b.String(), ""
			default:
				b.WriteByte(ch)
			}
		}
		return "", "unterminated double quote"
	}
	// Unquoted: a # after whitespace starts a comment.
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			v = v[:i]
			break
		}
	}
	return strings.TrimRight(v, " \t"), ""
}

// trailing checks what follows a closing quote: only blanks and a comment.
func trailing(s string) string {
	s = strings.TrimLeft(s, " \t")
	if s == "" || s[0] == '#' {
		return ""
	}
	return "unexpected text after the closing quote (quote the whole value)"
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
