package genesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/internal/redact"
)

// Defaults of FetchConfig.
const (
	DefaultFetchMaxBytes  = 1 << 20 // 1 MiB of a page is read, the rest cut
	DefaultFetchTimeout   = 15 * time.Second
	DefaultFetchRedirects = 5
)

// FetchConfig configures a Fetcher, the egress Talos runs for web_scraper:
// the skill's container has no network at all; Talos fetches the page and
// hands it to the skill.
type FetchConfig struct {
	// AllowedHosts are the hosts the operator approved, as egress.NewAllowlist
	// reads them: "example.org" (that name only), "*.example.org" (its
	// subdomains) or an IP address, on ports 80 and 443 unless the entry
	// names one ("example.org:8080"). The browser's egress proxy is built
	// from the same list and matcher, so both admit the same hosts and
	// ports. Empty: every fetch is refused.
	AllowedHosts []string
	// MaxBytes is how much of a body is read; 0 means DefaultFetchMaxBytes.
	MaxBytes int64
	// Timeout bounds a whole fetch with its redirects; 0 means
	// DefaultFetchTimeout.
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed, each to an allowed
	// host; 0 means DefaultFetchRedirects.
	MaxRedirects int
	// AllowAddrs are address ranges that may be dialled although they are
	// loopback, private or link-local (a page on a local or test network;
	// the operator's allow-address lines); empty means none. A host must
	// still be on AllowedHosts.
	AllowAddrs []netip.Prefix
}

// Fetcher fetches pages from allowed hosts only: http and https, no
// credentials in the URL, no proxy from the environment, every redirect to
// an allowed host, and never a connection to a loopback, private,
// link-local, shared (100.64/10), multicast or unspecified address,
// checked on the address actually dialled (so a name that resolves to one,
// or a DNS answer that changes, is refused too).
type Fetcher struct {
	cfg    FetchConfig
	allow  egress.Allowlist
	client *http.Client
}

// Page is a fetched page.
type Page struct {
	URL         string // after redirects
	Status      int
	ContentType string
	Body        []byte
	Truncated   bool // the body was longer than MaxBytes
}

// NewFetcher checks cfg and returns a Fetcher.
func NewFetcher(cfg FetchConfig) (*Fetcher, error) {
	var errs []error
	allow, err := egress.NewAllowlist("AllowedHosts", cfg.AllowedHosts)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxBytes < 0 || cfg.Timeout < 0 || cfg.MaxRedirects < 0 || cfg.MaxRedirects > 20 {
		errs = append(errs, fmt.Errorf("MaxBytes %d, Timeout %v, MaxRedirects %d: want 0 (the default) or more, at most 20 redirects", cfg.MaxBytes, cfg.Timeout, cfg.MaxRedirects))
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, "genesis.NewFetcher", "invalid egress configuration", errors.Join(errs...))
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultFetchMaxBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultFetchTimeout
	}
	if cfg.MaxRedirects == 0 {
		cfg.MaxRedirects = DefaultFetchRedirects
	}
	f := &Fetcher{cfg: cfg, allow: allow}
	d := &net.Dialer{Timeout: cfg.Timeout, Control: f.control}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true,
		ForceAttemptHTTP2:      true,
	}
	f.client = &http.Client{Transport: tr, CheckRedirect: f.checkRedirect}
	return f, nil
}

// Allowed reports whether host (no port) is on the allowlist for port, as
// the browser's egress proxy would decide.
func (f *Fetcher) Allowed(host string, port int) bool { return f.allow.Allows(host, port) }

// urlPort is u's port: the one it names, else the scheme's.
func urlPort(u *url.URL) (int, bool) {
	ps := u.Port()
	if ps == "" {
		switch u.Scheme {
		case "http":
			return 80, true
		case "https":
			return 443, true
		}
		return 0, false
	}
	n, err := strconv.Atoi(ps)
	return n, err == nil && n >= 1 && n <= 65535
}

func (f *Fetcher) checkURL(u *url.URL) error {
	const op = "genesis.Fetcher"
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return talos.Errorf(talos.CodePolicyDenied, op, "URL scheme %q refused: only http and https", clipPath(u.Scheme))
	case u.User != nil:
		return talos.Errorf(talos.CodePolicyDenied, op, "a URL with credentials is refused")
	}
	port, ok := urlPort(u)
	switch {
	case !ok:
		return talos.Errorf(talos.CodePolicyDenied, op, "port %q refused: want 1–65535", clipPath(u.Port()))
	case !f.Allowed(u.Hostname(), port):
		if u.Port() != "" {
			return talos.Errorf(talos.CodePolicyDenied, op, "host %q on port %d is not on the operator's allowlist of web hosts (an entry without a port admits 80 and 443 only; list %s to admit it)",
				clipPath(u.Hostname()), port, clipPath(net.JoinHostPort(u.Hostname(), strconv.Itoa(port))))
		}
		return talos.Errorf(talos.CodePolicyDenied, op, "host %q is not on the operator's allowlist of web hosts", clipPath(u.Hostname()))
	}
	return nil
}

func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.cfg.MaxRedirects {
		return talos.Errorf(talos.CodePolicyDenied, "genesis.Fetcher", "more than %d redirects", f.cfg.MaxRedirects)
	}
	if err := f.checkURL(req.URL); err != nil {
		return fmt.Errorf("redirect to %s refused: %w", clipPath(req.URL.Redacted()), err)
	}
	return nil
}

// control refuses a connection to a special-purpose address, after name
// resolution, before the connection is made.
func (f *Fetcher) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return talos.Errorf(talos.CodePolicyDenied, "genesis.Fetcher", "cannot check the address %q", clipPath(address))
	}
	if err := egress.CheckAddr(ap.Addr(), f.cfg.AllowAddrs); err != nil {
		return talos.E(talos.CodePolicyDenied, "genesis.Fetcher", "connection refused", err)
	}
	return nil
}

// Fetch gets rawURL within the limits. A malformed URL is code T015; a
// refused scheme, host, redirect or address, and a failed connection, are
// code T406 with the cause (nothing was read then).
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (Page, error) {
	const op = "genesis.Fetcher.Fetch"
	u, err := url.Parse(rawURL)
	if err != nil || len(rawURL) > 2048 {
		return Page{}, talos.Errorf(talos.CodeInputInvalid, op, "url %q is not a valid URL of at most 2048 bytes", clipPath(rawURL))
	}
	if err := f.checkURL(u); err != nil {
		return Page{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, talos.E(talos.CodeInputInvalid, op, "cannot build a request for "+clipPath(u.Redacted()), err)
	}
	req.Header.Set("User-Agent", "Talos web_scraper")
	req.Header.Set("Accept", "text/html, text/plain;q=0.9, */*;q=0.1")
	resp, err := f.client.Do(req)
	if err != nil {
		var te *talos.Error
		if errors.As(err, &te) {
			return Page{}, talos.E(te.Code, op, "the fetch of "+clipPath(u.Redacted())+" was refused", err)
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return Page{}, talos.E(talos.CodePolicyDenied, op, fmt.Sprintf("the fetch of %s timed out after %v; nothing was read", clipPath(u.Redacted()), f.cfg.Timeout), err)
		}
		return Page{}, talos.E(talos.CodePolicyDenied, op, "the fetch of "+clipPath(u.Redacted())+" failed; nothing was read", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return Page{}, talos.E(talos.CodePolicyDenied, op, "reading "+clipPath(u.Redacted())+" failed", err)
	}
	p := Page{URL: resp.Request.URL.String(), Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Body: body}
	if int64(len(body)) > f.cfg.MaxBytes {
		p.Body, p.Truncated = body[:f.cfg.MaxBytes], true
	}
	return p, nil
}

// AllowAddressDirective starts a line of the allowlist file that opens one
// address range the special-address refusal would otherwise close, as in
// "allow-address 172.19.0.2/32". It never admits a host by itself: the
// host name (or literal address) must be listed too.
const AllowAddressDirective = "allow-address"

// Broadest ranges an allow-address line may open at once (IPv4 /8, IPv6
// /32): a broader one would open most of the private space by mistake.
const (
	MinAllowAddressBits4 = 8
	MinAllowAddressBits6 = 32
)

// Allowlist is the operator's approval of web hosts.
type Allowlist struct {
	// Hosts are the entries as egress.NewAllowlist reads them: host names,
	// *.name patterns and IP addresses, each optionally with :port.
	Hosts []string
	// Addrs are loopback, private or link-local ranges the operator opened
	// explicitly with allow-address lines (a page served on a local or
	// test network); empty unless listed.
	Addrs []netip.Prefix
}

// ParseAllowlist returns the host entries of the operator's list of web
// hosts (ParseWebAllowlist without the opened address ranges).
func ParseAllowlist(data []byte) ([]string, error) {
	al, err := ParseWebAllowlist(data)
	return al.Hosts, err
}

// ParseWebAllowlist parses the operator's list of web hosts: one host name,
// *.name or IP address per line, optionally with :port (without one, ports
// 80 and 443), lower-cased, at most egress.MaxPatterns; blank lines and
// lines starting with # are skipped. A line "allow-address PREFIX" (an address or CIDR range, at
// least /8 for IPv4 and /32 for IPv6) opens that range to the fetches of
// web_scraper although it is loopback, private or link-local; nothing is
// opened by default. Every invalid line is reported at once (code T015).
func ParseWebAllowlist(data []byte) (Allowlist, error) {
	var al Allowlist
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.ToLower(strings.TrimSpace(line))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, AllowAddressDirective); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			p, err := parseAllowAddress(strings.TrimSpace(rest))
			if err != nil {
				errs = append(errs, fmt.Errorf("line %d %s: %w", i+1, redact.Value(line), err))
				continue
			}
			al.Addrs = append(al.Addrs, p)
			continue
		}
		if egress.CheckPattern(line) != nil {
			errs = append(errs, fmt.Errorf("line %d %s: want a host name such as example.org or *.example.org, an IP address, either optionally with :port, or %s PREFIX", i+1, redact.Value(line), AllowAddressDirective))
			continue
		}
		al.Hosts = append(al.Hosts, line)
	}
	if len(al.Hosts) > egress.MaxPatterns {
		errs = append(errs, fmt.Errorf("%d hosts are listed: at most %d, as many as the browser's egress proxy takes", len(al.Hosts), egress.MaxPatterns))
	}
	if len(errs) > 0 {
		return Allowlist{}, talos.E(talos.CodeInputInvalid, "genesis.ParseWebAllowlist", "the allowlist of web hosts has invalid lines", errors.Join(errs...))
	}
	return al, nil
}

func parseAllowAddress(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("an address zone is not allowed")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	} else if p, err = netip.ParsePrefix(s); err != nil {
		return netip.Prefix{}, fmt.Errorf("want an IP address or CIDR range such as 172.19.0.2 or 172.19.0.0/16")
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("host bits are set: write %s", p.Masked())
	}
	if p.Addr().Is4() && p.Bits() < MinAllowAddressBits4 || p.Addr().Is6() && p.Bits() < MinAllowAddressBits6 {
		return netip.Prefix{}, fmt.Errorf("too broad: at least /%d for IPv4 and /%d for IPv6", MinAllowAddressBits4, MinAllowAddressBits6)
	}
	return p, nil
}
