package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
)

// Defaults of Config.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultIdleTimeout = 60 * time.Second
	DefaultMaxBytes    = 64 << 20
	DefaultMaxConns    = 16
	// MaxPatterns is how many entries Config.Allow may have.
	MaxPatterns = 256
)

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a Proxy. The zero value refuses everything.
type Config struct {
	// Allow lists the host patterns a client may reach: "name", "*.name"
	// (subdomains only) or an IP address, each optionally with ":port"
	// (IPv6 in brackets then). Without a port, 80 and 443 are allowed.
	Allow []string
	// AllowAddrs are address ranges that may be dialled although CheckAddr
	// refuses them (a test server on loopback, an operator's own service).
	AllowAddrs []netip.Prefix
	// DialTimeout bounds name resolution plus connecting; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// IdleTimeout closes a connection on which no byte moved either way for
	// that long; 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxBytes caps the bytes relayed over the proxy's life, both
	// directions and all connections together; past it every connection
	// is closed and new ones are refused. 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxConns caps the connections served at once; 0 means
	// DefaultMaxConns.
	MaxConns int
	// Events, when set, is called once per request with the decision and,
	// for an allowed one, the bytes it moved. It must not block for long.
	Events func(Event)
	// Logger gets one line per refused request; nil discards.
	Logger *slog.Logger
}

// Event is one request the proxy decided on.
type Event struct {
	Time    time.Time `json:"time"`
	Method  string    `json:"method"` // CONNECT, GET, …
	Host    string    `json:"host"`   // as asked, lower case, without the port
	Port    int       `json:"port"`
	Allowed bool      `json:"allowed"`
	// Reason says why a request was refused or failed ("not on the
	// allowlist", "private address 10.0.0.5", "byte cap reached", …);
	// empty for an allowed request that completed.
	Reason string `json:"reason,omitempty"`
	// Bytes is what the request moved, both directions.
	Bytes int64 `json:"bytes"`
}

// Proxy is a forward HTTP proxy that admits only allowed hosts. It is an
// http.Handler; New returns one ready to serve.
type Proxy struct {
	cfg      Config
	allow    Allowlist
	log      *slog.Logger
	resolver Resolver
	slots    chan struct{}
	used     atomic.Int64
	client   *http.Transport

	tmu     sync.Mutex
	tunnels map[net.Conn]net.Conn // open CONNECT tunnels: client side → upstream
	cut     bool                  // CloseTunnels was called
}

// New checks cfg — every bad entry is reported at once — and returns a
// Proxy resolving host names with resolver; nil means net.DefaultResolver.
func New(cfg Config, resolver Resolver) (*Proxy, error) {
	var errs []error
	if len(cfg.Allow) > MaxPatterns {
		errs = append(errs, fmt.Errorf("Allow has %d entries: at most %d", len(cfg.Allow), MaxPatterns))
	}
	allow, err := NewAllowlist("Allow", cfg.Allow)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.DialTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxBytes < 0 || cfg.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("DialTimeout %v, IdleTimeout %v, MaxBytes %d, MaxConns %d: want 0 (the default) or more",
			cfg.DialTimeout, cfg.IdleTimeout, cfg.MaxBytes, cfg.MaxConns))
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, "egress.New", "invalid egress configuration", errors.Join(errs...))
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	p := &Proxy{cfg: cfg, allow: allow, log: cfg.Logger, resolver: resolver, slots: make(chan struct{}, cfg.MaxConns)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	p.client = &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dialContext,
		ResponseHeaderTimeout:  cfg.IdleTimeout,
		MaxResponseHeaderBytes: 64 << 10,
		DisableKeepAlives:      true,
		DisableCompression:     true,
	}
	return p, nil
}

// Allowed reports whether host (a name or an IP address, any case, no
// brackets) and port are on the allowlist.
func (p *Proxy) Allowed(host string, port int) bool { return p.allow.Allows(host, port) }

// ErrSpecialAddr is what CheckAddr's errors wrap.
var ErrSpecialAddr = errors.New("loopback, private, link-local or otherwise special address")

// CheckAddr returns an error wrapping ErrSpecialAddr when ip is loopback,
// private, link-local, multicast, unspecified or another special-purpose
// address that a program in a sandbox must not reach, unless a range of
// allow contains it.
func CheckAddr(ip netip.Addr, allow []netip.Prefix) error {
	ip = ip.Unmap()
	for _, p := range allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() || !ip.IsGlobalUnicast() || special(ip) {
		return fmt.Errorf("%s is a %w", ip, ErrSpecialAddr)
	}
	return nil
}

var specialRanges = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "64:ff9b::/96", "64:ff9b:1::/48", "2001:db8::/32",
		"2002::/16", "fec0::/10"} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// special reports ranges that are not on the public internet besides those
// netip names: this network, shared address space, IETF protocol
// assignments, documentation, benchmarking, reserved; and IPv6 prefixes
// that embed an IPv4 address (NAT64, 6to4) or are deprecated site-local.
func special(ip netip.Addr) bool {
	for _, p := range specialRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refusal is a request the proxy refuses, with the status it answers.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string { return r.reason }

// dialContext resolves address's host, keeps only addresses CheckAddr
// allows, and connects to the first that answers; the socket's Control
// checks the address again right before the connection is made.
func (p *Proxy) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, ps, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &refusal{http.StatusBadRequest, "cannot read the address " + clip(address)}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = p.resolver.LookupNetIP(ctx, "ip", host); err != nil {
		return nil, &refusal{http.StatusBadGateway, "cannot resolve " + clip(host)}
	}
	var why error
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("cannot check the address %q", address)
		}
		return CheckAddr(ap.Addr(), p.cfg.AllowAddrs)
	}}
	for _, a := range addrs {
		if err := CheckAddr(a, p.cfg.AllowAddrs); err != nil {
			why = err
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), ps))
		if err == nil {
			return c, nil
		}
		why = err
	}
	if why == nil {
		return nil, &refusal{http.StatusBadGateway, clip(host) + " has no address"}
	}
	var op *net.OpError
	if !errors.As(why, &op) || errors.Is(why, ErrSpecialAddr) {
		return nil, &refusal{http.StatusForbidden, "connection to " + clip(host) + " refused: " + why.Error()}
	}
	return nil, &refusal{http.StatusBadGateway, "cannot connect to " + clip(host) + ": " + why.Error()}
}

// ServeHTTP serves one proxy request: CONNECT or an absolute http URL.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev := Event{Time: time.Now(), Method: r.Method}
	defer func() {
		if p.cfg.Events != nil {
			p.cfg.Events(ev)
		}
	}()
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	default:
		p.refuse(w, r, &ev, &refusal{http.StatusServiceUnavailable, fmt.Sprintf("more than %d connections at once", p.cfg.MaxConns)})
		return
	}
	if p.used.Load() >= p.cfg.MaxBytes {
		p.refuse(w, r, &ev, &refusal{http.StatusForbidden, fmt.Sprintf("the byte cap of %d bytes is reached", p.cfg.MaxBytes)})
		return
	}
	var hostport, defPort string
	if r.Method == http.MethodConnect {
		hostport = r.Host
	} else {
		if !r.URL.IsAbs() || r.URL.Scheme != "http" || r.URL.Host == "" {
			p.refuse(w, r, &ev, &refusal{http.StatusBadRequest, "this is a proxy: send CONNECT host:port, or a request with an absolute http:// URL"})
			return
		}
		if r.URL.User != nil {
			p.refuse(w, r, &ev, &refusal{http.StatusForbidden, "a URL with credentials is refused"})
			return
		}
		hostport, defPort = r.URL.Host, "80"
	}
	host, ps, err := net.SplitHostPort(hostport)
	if err != nil && defPort != "" {
		host, ps, err = strings.Trim(hostport, "[]"), defPort, nil
	}
	port, perr := strconv.Atoi(ps)
	if err != nil || perr != nil || port < 1 || port > 65535 || host == "" {
		p.refuse(w, r, &ev, &refusal{http.StatusBadRequest, "cannot read host:port from " + clip(hostport)})
		return
	}
	ev.Host, ev.Port = strings.ToLower(strings.TrimSuffix(host, ".")), port
	if !p.Allowed(host, port) {
		p.refuse(w, r, &ev, &refusal{http.StatusForbidden, fmt.Sprintf("%s port %d is not on the allowlist", clip(ev.Host), port)})
		return
	}
	ev.Allowed = true
	if r.Method == http.MethodConnect {
		p.tunnel(w, r, &ev, net.JoinHostPort(host, ps))
		return
	}
	p.forward(w, r, &ev)
}

func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, ev *Event, ref *refusal) {
	ev.Allowed, ev.Reason = false, ref.reason
	p.log.WarnContext(r.Context(), "egress: refused", "method", clip(r.Method), "host", ev.Host, "port", ev.Port, "reason", ref.reason)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(ref.status)
	fmt.Fprintf(w, "talos egress: refused: %s\n", ref.reason)
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, ev *Event, err error) {
	var ref *refusal
	if !errors.As(err, &ref) {
		ref = &refusal{http.StatusBadGateway, err.Error()}
	}
	p.refuse(w, r, ev, ref)
	ev.Allowed = ref.status != http.StatusForbidden
}

// hopHeaders are removed from forwarded requests and answers.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func stripHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, k := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(k))
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// forward relays one plain-HTTP request and its answer.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, ev *Event) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.Close = true
	stripHop(out.Header)
	if r.Body != nil && r.ContentLength != 0 {
		out.Body = &counted{r: r.Body, p: p, ev: ev, cancel: cancel}
	}
	resp, err := p.client.RoundTrip(out)
	if err != nil {
		p.fail(w, r, ev, err)
		return
	}
	defer resp.Body.Close()
	stripHop(resp.Header)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, &counted{r: resp.Body, p: p, ev: ev, cancel: cancel}); err != nil && ev.Reason == "" {
		ev.Reason = "relay ended: " + err.Error()
	}
}

// counted reads from r, charging each byte to the proxy's budget; past it,
// it cancels the request and reads end with an error.
type counted struct {
	r      io.Reader
	p      *Proxy
	ev     *Event
	cancel context.CancelFunc
}

var errCap = errors.New("the byte cap is reached")

func (c *counted) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		c.ev.Bytes += int64(n)
		if c.p.used.Add(int64(n)) > c.p.cfg.MaxBytes {
			c.ev.Reason = fmt.Sprintf("the byte cap of %d bytes is reached", c.p.cfg.MaxBytes)
			c.cancel()
			return 0, errCap
		}
	}
	return n, err
}

func (c *counted) Close() error {
	if rc, ok := c.r.(io.Closer); ok {
		return rc.Close()
	}
	return nil
}

// tunnel answers CONNECT: dial, then relay bytes both ways until either
// side closes, the connection stays idle for IdleTimeout or the byte cap
// is reached.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, ev *Event, address string) {
	up, err := p.dialContext(r.Context(), "tcp", address)
	if err != nil {
		p.fail(w, r, ev, err)
		return
	}
	defer up.Close()
	rc := http.NewResponseController(w)
	down, buf, err := rc.Hijack()
	if err != nil {
		ev.Reason = "cannot take over the client connection: " + err.Error()
		return
	}
	defer down.Close()
	p.tmu.Lock()
	if p.cut {
		p.tmu.Unlock()
		ev.Reason = "the proxy is closing"
		return
	}
	if p.tunnels == nil {
		p.tunnels = map[net.Conn]net.Conn{}
	}
	p.tunnels[down] = up
	p.tmu.Unlock()
	defer func() {
		p.tmu.Lock()
		delete(p.tunnels, down)
		p.tmu.Unlock()
	}()
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		ev.Reason = "client gone"
		return
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var moved atomic.Int64
	type end struct {
		eof    bool // the source ended cleanly; the other way may go on
		reason string
	}
	done := make(chan end, 2)
	pump := func(dst net.Conn, src io.Reader, srcConn net.Conn) {
		b := make([]byte, 32<<10)
		for {
			_ = srcConn.SetReadDeadline(time.Now().Add(p.cfg.IdleTimeout))
			n, err := src.Read(b)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				moved.Add(int64(n))
				if p.used.Add(int64(n)) > p.cfg.MaxBytes {
					done <- end{reason: fmt.Sprintf("the byte cap of %d bytes is reached", p.cfg.MaxBytes)}
					return
				}
				if _, werr := dst.Write(b[:n]); werr != nil {
					done <- end{}
					return
				}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if time.Since(time.Unix(0, last.Load())) < p.cfg.IdleTimeout {
						continue // the other direction is busy
					}
					done <- end{reason: fmt.Sprintf("idle for %v", p.cfg.IdleTimeout)}
					return
				}
				// A clean end of one direction is passed on as a
				// half-close, so the answer to a request can still come.
				if cw, ok := dst.(interface{ CloseWrite() error }); ok && errors.Is(err, io.EOF) && cw.CloseWrite() == nil {
					done <- end{eof: true}
					return
				}
				done <- end{}
				return
			}
		}
	}
	// Bytes the client sent after CONNECT that the server already buffered.
	var fromClient io.Reader = down
	if buf != nil && buf.Reader.Buffered() > 0 {
		fromClient = io.MultiReader(io.LimitReader(buf.Reader, int64(buf.Reader.Buffered())), down)
	}
	go pump(up, fromClient, down)
	go pump(down, up, up)
	first := <-done
	if !first.eof {
		// Unblock the other pump.
		_ = up.Close()
		_ = down.Close()
	}
	second := <-done
	reason := first.reason
	if reason == "" {
		reason = second.reason
	}
	ev.Reason, ev.Bytes = reason, moved.Load()
}

// CloseTunnels cuts every CONNECT tunnel open now, and every one a
// request already in flight would open later; their handlers return and
// report their events. An http.Server's Close does not reach tunnels (they
// are hijacked connections): call it after closing the server that serves
// p, as UnixServer.Close does. It is for the end of p's use: p opens no
// tunnel afterwards.
func (p *Proxy) CloseTunnels() {
	p.tmu.Lock()
	defer p.tmu.Unlock()
	p.cut = true
	for down, up := range p.tunnels {
		_ = down.Close()
		_ = up.Close()
	}
}

// Used returns the bytes relayed so far, both directions, all connections.
func (p *Proxy) Used() int64 { return p.used.Load() }

// clip quotes nothing and cuts s to 120 bytes, escaping control characters.
func clip(s string) string {
	const n = 120
	if len(s) > n {
		s = s[:n] + "…"
	}
	q := strconv.QuoteToGraphic(s)
	return q[1 : len(q)-1]
}
