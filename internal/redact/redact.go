package redact

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Redacted replaces a secret.
const Redacted = "<redacted>"

// Unparsable replaces an address that is not a URL (it may hold a secret
// anywhere, so none of it is shown).
const Unparsable = "<unparsable URL>"

// MaxValueRunes is how many characters of a value Value shows before
// clipping it.
const MaxValueRunes = 64

// safeParams are query parameters whose values are shown: connection
// options that are never credentials. Every other parameter's value is
// replaced, since a name cannot prove a value harmless (?token=, ?sig=,
// ?X-Amz-Credential=, ?key= …).
var safeParams = map[string]bool{
	"sslmode": true, "connect_timeout": true, "application_name": true, "target_session_attrs": true,
	"dial_timeout": true, "read_timeout": true, "write_timeout": true, "timeout": true,
	"pool_size": true, "protocol": true, "db": true, "tenant": true, "database": true,
	"_pragma": true, "_txlock": true, "mode": true, "cache": true,
}

// placeholder stands for the password while net/url builds the string (it
// would percent-encode "<redacted>").
const placeholder = "REDACTEDPASSWORD0f3a"

// URL returns rawURL with its secrets replaced by "<redacted>": the
// password (user:<redacted>@), a user name given without a password, the
// value of every query parameter except a few harmless connection options,
// and the fragment. A bare host:port or an absolute path is returned as is.
// Anything else that does not parse as scheme://… becomes "<unparsable URL>".
// The empty string stays empty.
func URL(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	if !strings.Contains(rawURL, "://") {
		if strings.HasPrefix(rawURL, "/") && !strings.ContainsAny(rawURL, "?#@") && !hasControl(rawURL) {
			return rawURL // a socket or file path
		}
		if _, _, err := net.SplitHostPort(rawURL); err == nil && !strings.ContainsAny(rawURL, "@/?#") && !hasControl(rawURL) {
			return rawURL // host:port has nothing secret
		}
		return Unparsable
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Opaque != "" || hasControl(rawURL) {
		return Unparsable
	}
	pw := false
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), placeholder)
			pw = true
		} else {
			u.User = url.User(placeholder)
			pw = true
		}
	}
	u.RawQuery = query(u.RawQuery)
	frag := u.Fragment != "" || u.RawFragment != "" || strings.Contains(rawURL, "#")
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	if pw {
		s = strings.Replace(s, placeholder, Redacted, 1)
	}
	if frag {
		s += "#" + Redacted
	}
	return s
}

// query rewrites a raw query string keeping every parameter name and the
// values of safeParams only.
func query(raw string) string {
	if raw == "" {
		return ""
	}
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' })
	for i, p := range parts {
		k, _, hasVal := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			parts[i] = Redacted
			continue
		}
		if !hasVal {
			// "?secret" alone: a bare word may itself be the credential.
			if !safeParams[strings.ToLower(name)] {
				parts[i] = Redacted
			}
			continue
		}
		if !safeParams[strings.ToLower(name)] {
			parts[i] = k + "=" + Redacted
		}
	}
	return strings.Join(parts, "&")
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// urlRE finds URLs inside free text. It stops at blanks, quotes and angle
// brackets, which end a URL in Go's error messages ("Get \"http://…\": …").
var urlRE = regexp.MustCompile("(?i)\\b[a-z][a-z0-9+.-]*://[^\\s\"'<>`]+")

// kvRE finds key=value credentials outside URLs, as in a PostgreSQL
// keyword DSN ("host=db password=hunter2") or a logged query string.
// The key must end in the credential word: "estimated_tokens=501" is not
// one.
var kvRE = regexp.MustCompile(`(?i)\b([a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|auth|credential|credentials|signature|sig))=("[^"]*"|'[^']*'|[^\s&;,"']+)`)

// Text returns msg with every URL in it passed through URL and every
// key=value pair whose key names a credential (password=, token=,
// api_key=, …) given the value "<redacted>". Use it on error messages and
// log lines that may quote an address.
func Text(msg string) string {
	if !needsText(msg) {
		return msg
	}
	msg = urlRE.ReplaceAllStringFunc(msg, func(m string) string {
		// A URL at the end of a sentence keeps its full stop or comma
		// outside; a closing bracket is kept outside when unbalanced.
		trail := ""
		for len(m) > 0 {
			last := m[len(m)-1]
			if last == '.' || last == ',' || last == ';' || last == ':' || last == '!' ||
				(last == ')' && strings.Count(m, "(") < strings.Count(m, ")")) {
				trail = string(last) + trail
				m = m[:len(m)-1]
				continue
			}
			break
		}
		return URL(m) + trail
	})
	return kvRE.ReplaceAllString(msg, "${1}="+Redacted)
}

// Value returns s quoted for an error message: Go-quoted (control
// characters and invalid UTF-8 escaped) and clipped to MaxValueRunes
// characters, with the full length in bytes after the quotes when clipped,
// as in "aaaa…" (20971520 bytes). It does not hide secrets: never pass it
// one.
func Value(s string) string {
	if utf8.RuneCountInString(s) <= MaxValueRunes {
		return strconv.Quote(s)
	}
	n := 0
	for i := range s {
		if n == MaxValueRunes {
			return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:i]), len(s))
		}
		n++
	}
	return strconv.Quote(s)
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that passes the message,
// every string value and every error value through Text, so a handler
// built with it never writes a URL's credentials. Chain it after a
// handler's own ReplaceAttr.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); needsText(s) {
			a.Value = slog.StringValue(Text(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok && err != nil {
			if s := err.Error(); needsText(s) {
				a.Value = slog.StringValue(Text(s))
			}
		}
	}
	return a
}

// needsText is a cheap test for text Text could change.
func needsText(s string) bool { return strings.Contains(s, "://") || strings.Contains(s, "=") }
