package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Allowlist is a parsed list of host patterns: what a Proxy admits, and
// what any other egress path (a fetcher of its own, say) can check a URL's
// host and port against so it admits exactly what the proxy would. The zero
// value admits nothing.
type Allowlist struct {
	patterns []pattern
}

type pattern struct {
	name     string // lower case; without "*." for a wildcard
	wildcard bool
	ip       netip.Addr
	port     int // 0: 80 and 443
}

// NewAllowlist parses entries, each "name", "*.name" (subdomains only) or
// an IP address, optionally with ":port" (IPv6 in brackets then); without
// a port, 80 and 443 are admitted. A trailing dot is dropped. The error
// names every bad entry at once as field[index], with its value and what
// is allowed.
func NewAllowlist(field string, entries []string) (Allowlist, error) {
	var a Allowlist
	var errs []error
	for i, s := range entries {
		p, err := parsePattern(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			continue
		}
		a.patterns = append(a.patterns, p)
	}
	if len(errs) > 0 {
		return Allowlist{}, errors.Join(errs...)
	}
	return a, nil
}

// CheckPattern reports whether s is one entry NewAllowlist accepts; the
// error names the value and what is allowed.
func CheckPattern(s string) error {
	_, err := parsePattern(s)
	return err
}

// Len is how many entries the list has.
func (a Allowlist) Len() int { return len(a.patterns) }

// Allows reports whether host (a name or an IP address, any case, no
// brackets, a trailing dot ignored) and port are on the list.
func (a Allowlist) Allows(host string, port int) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip, ipErr := netip.ParseAddr(host)
	for _, p := range a.patterns {
		if p.port == 0 && port != 80 && port != 443 || p.port != 0 && p.port != port {
			continue
		}
		switch {
		case p.ip.IsValid():
			if ipErr == nil && ip.Unmap() == p.ip {
				return true
			}
		case p.wildcard:
			if strings.HasSuffix(host, "."+p.name) {
				return true
			}
		case host == p.name:
			return true
		}
	}
	return false
}

// parsePattern parses one allowlist entry ("name", "*.name", an IP, each
// optionally with ":port"). The error names the value and what is allowed.
func parsePattern(s string) (pattern, error) {
	bad := func(why string) (pattern, error) {
		return pattern{}, fmt.Errorf("%q: %s", clip(s), why)
	}
	host, port := s, 0
	if h, ps, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != ps {
			return bad("the port must be 1–65535")
		}
		host, port = h, n
	} else if strings.HasPrefix(s, "[") {
		return bad("an IPv6 address in brackets needs a port; write it without brackets otherwise")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return bad("an address with a zone is not allowed")
		}
		return pattern{ip: ip.Unmap(), port: port}, nil
	}
	name, wild := strings.CutPrefix(strings.TrimSuffix(host, "."), "*.")
	if !hostName(name) {
		return bad("want a lower-case host name (letters, digits, '-', '.'), *.name for its subdomains, or an IP address, optionally with :port")
	}
	return pattern{name: name, wildcard: wild, port: port}, nil
}

func hostName(h string) bool {
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasPrefix(h, "-") || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
