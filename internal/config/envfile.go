package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/talos-ironclad/talos/internal/redact"
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

// ParseErrors is every syntax error found in one talos.env, in line order.
// ParseEnvFile returns it so an operator fixes every line in one pass.
type ParseErrors []*ParseError

// Error lists the problems, one per line.
func (e ParseErrors) Error() string {
	msgs := make([]string, len(e))
	for i, pe := range e {
		msgs[i] = pe.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns each *ParseError, so errors.As finds the first.
func (e ParseErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, pe := range e {
		out[i] = pe
	}
	return out
}

// ParseEnvFile parses dotenv text: KEY=VALUE lines, blank lines, # comments
// (whole-line, or after whitespace in an unquoted value), an optional
// "export " prefix, 'single-quoted' literal values and "double-quoted" values
// with the escapes \n \t \r \\ \" \$. It never evaluates anything: $(cmd),
// `cmd` and $VAR stay literal text (the spec sources the file as shell,
// which runs code). A key set twice is an error, so is an unterminated
// quote, a line without '=' and a NUL byte.
//
// It reads the whole text whatever it finds: the error, when not nil, is a
// ParseErrors holding every bad line and every repeated key, and the
// entries are the lines that parsed (for a repeated key, its first line).
func ParseEnvFile(data []byte) ([]Entry, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	var out []Entry
	var errs ParseErrors
	seen := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.IndexByte(line, 0) >= 0 {
			errs = append(errs, &ParseError{n, "contains a NUL byte"})
			continue
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
			errs = append(errs, &ParseError{n, fmt.Sprintf("expected KEY=VALUE, got a line of %d characters without '='", len(t))})
			continue
		}
		k = strings.TrimRight(k, " \t")
		if !envKeyRE.MatchString(k) {
			errs = append(errs, &ParseError{n, fmt.Sprintf("invalid variable name %s (letters, digits and _, not starting with a digit)", redact.Value(k))})
			continue
		}
		val, err := parseEnvValue(strings.TrimLeft(v, " \t"))
		if err != "" {
			errs = append(errs, &ParseError{n, k + ": " + err})
			continue
		}
		if prev, dup := seen[k]; dup {
			errs = append(errs, &ParseError{n, fmt.Sprintf("%s is already set at line %d (remove one of the two lines)", k, prev)})
			continue
		}
		seen[k] = n
		out = append(out, Entry{Key: k, Value: val, Line: n})
	}
	if len(errs) > 0 {
		return out, errs
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
