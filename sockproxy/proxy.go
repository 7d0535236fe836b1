package sockproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talos-ironclad/talos"
)

// upstreamHost is the Host used for requests to the engine; the engine
// ignores it (it listens on a socket).
const upstreamHost = "docker"

// maxInspectBytes bounds an inspect answer read for the label check.
const maxInspectBytes = 4 << 20

// Proxy is an http.Handler that forwards allowed Docker API calls to the
// engine and answers everything else with 403 and a Docker-style JSON
// message. It is safe for concurrent use.
type Proxy struct {
	profile     Profile
	label       string
	maxBody     int64
	minMajor    int
	minMinor    int
	cacheTTL    time.Duration
	filter      bodyFilter
	rt          http.RoundTripper
	rp          *httputil.ReverseProxy
	limiter     *limiter
	audit, log  *slog.Logger
	cacheMu     sync.Mutex
	cache       map[string]cacheEntry
	nAllowed    atomic.Uint64
	nDenied     atomic.Uint64
	nRateLimit  atomic.Uint64
	nUpstream   atomic.Uint64
	closeIdleFn func()
}

type cacheEntry struct {
	id      string
	managed bool
	expires time.Time
}

// maxCacheEntries bounds the resolution cache; it is cleared when full.
const maxCacheEntries = 4096

// Stats are the proxy's counters since New.
type Stats struct {
	Allowed       uint64 // requests forwarded to the engine
	Denied        uint64 // requests answered 403 (or 404 for unknown containers)
	RateLimited   uint64 // requests answered 429
	UpstreamError uint64 // requests answered 502 because the engine failed
}

// New builds a Proxy from cfg. It does not contact the engine.
func New(cfg Config) (*Proxy, error) {
	const op = "sockproxy.New"
	p := &Proxy{
		profile:  cfg.Profile,
		label:    cfg.Label,
		maxBody:  cfg.MaxBodyBytes,
		cacheTTL: cfg.InspectCacheTTL,
		audit:    cfg.Audit,
		log:      cfg.Logger,
		cache:    map[string]cacheEntry{},
	}
	if p.profile.Name == "" && len(p.profile.Ops) == 0 {
		p.profile = SkillsProfile()
	}
	if err := p.profile.validate(); err != nil {
		return nil, err
	}
	if p.label == "" {
		p.label = LabelManaged
	}
	if !reLabelKey.MatchString(p.label) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Label %q is not a valid label key ([a-z0-9._-]+)", p.label)
	}
	if p.maxBody == 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.maxBody < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MaxBodyBytes %d is negative: use 0 for the default (%d) or a positive size", p.maxBody, DefaultMaxBodyBytes)
	}
	if p.cacheTTL == 0 {
		p.cacheTTL = DefaultInspectCacheTTL
	}
	minV := cfg.MinAPIVersion
	if minV == "" {
		minV = DefaultMinAPIVersion
	}
	var ok bool
	if p.minMajor, p.minMinor, ok = parseVersion(minV); !ok {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MinAPIVersion %q is not a version like %q", minV, DefaultMinAPIVersion)
	}
	rate, burst := cfg.RateLimit, cfg.RateBurst
	if rate == 0 {
		rate = DefaultRateLimit
	}
	if burst == 0 {
		burst = DefaultRateBurst
	}
	if burst < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "RateBurst %d is negative: use 0 for the default (%d)", burst, DefaultRateBurst)
	}
	if rate > 0 {
		p.limiter = newLimiter(rate, burst)
	}
	if p.audit == nil {
		p.audit = slog.New(slog.DiscardHandler)
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.filter = bodyFilter{profile: p.profile, label: p.label}

	p.rt = cfg.Transport
	if p.rt == nil {
		upstream := cfg.Upstream
		if upstream == "" {
			upstream = DefaultUpstream
		}
		network, addr, err := parseUpstream(upstream)
		if err != nil {
			return nil, err
		}
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr := newEngineTransport(func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		})
		p.rt = tr
		p.closeIdleFn = tr.CloseIdleConnections
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.Out.Host = upstreamHost },
		Transport:     p.rt,
		FlushInterval: -1, // stream logs, wait and attach without buffering
		ErrorHandler:  p.upstreamError,
		BufferPool:    &bufferPool{},
	}
	return p, nil
}

// Close releases idle connections to the engine.
func (p *Proxy) Close() error {
	if p.closeIdleFn != nil {
		p.closeIdleFn()
	}
	return nil
}

// Profile returns the profile the proxy applies.
func (p *Proxy) Profile() Profile { return p.profile }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{Allowed: p.nAllowed.Load(), Denied: p.nDenied.Load(), RateLimited: p.nRateLimit.Load(), UpstreamError: p.nUpstream.Load()}
}

// request carries one request's facts for audit records.
type request struct {
	id     string
	client clientInfo
	method string
	path   string
	op     Op
}

func (q *request) attrs() []any {
	a := []any{"correlation_id", q.id, "client", q.client.desc, "method", q.method, "path", truncate(q.path, 256)}
	if q.op != "" {
		a = append(a, "op", string(q.op))
	}
	return a
}

// ServeHTTP checks one request against the profile and forwards it, or
// answers 403 (429 when the client is over its rate) with {"message": …}.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rawPath, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	id := r.Header.Get(talos.CorrelationHeader)
	if !talos.ValidCorrelationID(id) {
		id = talos.NewCorrelationID()
	}
	q := &request{id: id, client: clientOf(r), method: r.Method, path: rawPath}
	w.Header().Set(talos.CorrelationHeader, q.id)

	if p.limiter != nil {
		if ok, wait := p.limiter.allow(q.client.key, time.Now()); !ok {
			p.nRateLimit.Add(1)
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			p.writeDenial(w, q, http.StatusTooManyRequests, talos.CodeRateLimited,
				fmt.Sprintf("rate limit of %g requests per second exceeded for this client; retry after %d s", p.limiter.rate, secs))
			return
		}
	}
	if r.URL.IsAbs() || r.URL.Host != "" || !strings.HasPrefix(r.RequestURI, "/") {
		p.denyf(w, q, "request target %q is not an absolute path (origin form)", truncate(r.RequestURI, 120))
		return
	}
	norm, err := NormalizePath(rawPath)
	if err != nil {
		p.denyf(w, q, "%v", err)
		return
	}
	rt, err := matchRoute(norm)
	if err != nil {
		p.denyf(w, q, "%v", err)
		return
	}
	q.op = rt.op
	if rt.version != "" {
		major, minor, _ := parseVersion(rt.version)
		if major < p.minMajor || (major == p.minMajor && minor < p.minMinor) {
			p.denyf(w, q, "API version %s is older than the minimum %d.%d", rt.version, p.minMajor, p.minMinor)
			return
		}
	}
	if !p.profile.allows(rt.op) {
		p.denyf(w, q, "endpoint %s (%s) is not allowed for profile %q", rt.rest, rt.op, p.profile.Name)
		return
	}
	if !slices.Contains(rt.op.methods(), r.Method) {
		p.denyf(w, q, "method %s not allowed on %s (allowed: %s)", truncate(r.Method, 16), rt.rest, strings.Join(rt.op.methods(), ", "))
		return
	}
	query, err := checkQuery(rt.op, rawQuery, p.label)
	if err != nil {
		p.denyf(w, q, "%v", err)
		return
	}
	var body []byte
	if rt.op.hasBody() {
		if body, err = p.readBody(r, rt.op); err != nil {
			p.denyf(w, q, "%v", err)
			return
		}
	} else if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		p.denyf(w, q, "%s takes no request body", rt.op)
		return
	}

	target := ""
	if rt.op.perContainer() {
		id, managed, status, err := p.resolve(r.Context(), rt.container)
		switch {
		case err != nil && status == http.StatusNotFound:
			// The engine's own answer, so clients still see "not found";
			// audited like a denial, since probing for containers by name
			// is worth a record.
			p.nDenied.Add(1)
			p.audit.Warn("sockproxy: request denied", append(q.attrs(),
				"event", "sockproxy.deny", "profile", p.profile.Name, "status", http.StatusNotFound,
				"code", string(talos.CodePolicyDenied), "reason", "no such container")...)
			writeMessage(w, http.StatusNotFound, "No such container: "+rt.container)
			return
		case err != nil:
			p.nUpstream.Add(1)
			p.log.Error("sockproxy: resolving a container failed", append(q.attrs(), "err", err)...)
			writeMessage(w, http.StatusBadGateway, "sockproxy: cannot check container "+rt.container+" with the Docker engine: "+err.Error())
			return
		case !managed:
			p.denyf(w, q, "container %s is not managed by Talos (it lacks the label %s=%s)", rt.container, p.label, LabelManagedValue)
			return
		}
		target = id
		if rt.op == OpRemove {
			p.forget(id)
		}
	}

	out := r.Clone(r.Context())
	out.URL = &url.URL{Scheme: "http", Host: upstreamHost, Path: rt.forwardPath(target), RawQuery: query}
	out.RequestURI = ""
	out.Host = upstreamHost
	out.Header.Del("Content-Length")
	out.TransferEncoding = nil
	if rt.op.hasBody() {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.Header.Set("Content-Type", "application/json")
	} else {
		out.Body = http.NoBody
		out.ContentLength = 0
	}
	p.nAllowed.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a := append(q.attrs(), "event", "sockproxy.allow", "profile", p.profile.Name)
		if target != "" {
			a = append(a, "container", target)
		}
		p.audit.Info("sockproxy: request allowed", a...)
	}
	p.rp.ServeHTTP(w, out)
}

// readBody reads and filters a create or update body.
func (p *Proxy) readBody(r *http.Request, op Op) ([]byte, error) {
	if r.ContentLength > p.maxBody {
		return nil, fmt.Errorf("body of %d bytes is larger than the limit of %d", r.ContentLength, p.maxBody)
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("body must be application/json, not %q", truncate(ct, 60))
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the body failed: %v", err)
	}
	if int64(len(raw)) > p.maxBody {
		return nil, fmt.Errorf("body is larger than the limit of %d bytes", p.maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("%s needs a JSON body (an empty body skips no check here)", op)
	}
	if op == OpCreate {
		return p.filter.checkCreate(raw)
	}
	return p.filter.checkUpdate(raw)
}

func (p *Proxy) denyf(w http.ResponseWriter, q *request, format string, args ...any) {
	p.nDenied.Add(1)
	p.writeDenial(w, q, http.StatusForbidden, talos.CodePolicyDenied, fmt.Sprintf(format, args...))
}

func (p *Proxy) writeDenial(w http.ResponseWriter, q *request, status int, code talos.Code, reason string) {
	p.audit.Warn("sockproxy: request denied", append(q.attrs(),
		"event", "sockproxy.deny", "profile", p.profile.Name, "status", status, "code", string(code), "reason", reason)...)
	writeMessage(w, status, "sockproxy: denied: "+reason)
}

// writeMessage answers with a Docker-style error body.
func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	p.nUpstream.Add(1)
	p.log.Error("sockproxy: forwarding to the Docker engine failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeMessage(w, http.StatusBadGateway, "sockproxy: the Docker engine did not answer: check that it runs and that the proxy's upstream socket is right")
}

// resolve inspects ref on the engine and returns the full ID and whether the
// container carries the Talos label. status is the engine's status on error.
func (p *Proxy) resolve(ctx context.Context, ref string) (id string, managed bool, status int, err error) {
	now := time.Now()
	if p.cacheTTL > 0 {
		p.cacheMu.Lock()
		e, ok := p.cache[ref]
		p.cacheMu.Unlock()
		if ok && now.Before(e.expires) {
			return e.id, e.managed, http.StatusOK, nil
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+upstreamHost+"/containers/"+ref+"/json", nil)
	if err != nil {
		return "", false, 0, err
	}
	resp, err := p.rt.RoundTrip(req)
	if err != nil {
		return "", false, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return "", false, resp.StatusCode, fmt.Errorf("engine answered %s", resp.Status)
	}
	var info struct {
		ID     string `json:"Id"`
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxInspectBytes)).Decode(&info); err != nil {
		return "", false, 0, fmt.Errorf("decoding the engine's inspect answer: %w", err)
	}
	// Read the rest (the engine's closing newline), so the connection goes
	// back to the pool instead of being closed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if !reFullID.MatchString(info.ID) {
		return "", false, 0, fmt.Errorf("engine returned an unexpected container ID %q", truncate(info.ID, 80))
	}
	managed = info.Config.Labels[p.label] == LabelManagedValue
	if p.cacheTTL > 0 {
		p.cacheMu.Lock()
		if len(p.cache) >= maxCacheEntries {
			clear(p.cache)
		}
		p.cache[ref] = cacheEntry{id: info.ID, managed: managed, expires: now.Add(p.cacheTTL)}
		p.cacheMu.Unlock()
	}
	return info.ID, managed, http.StatusOK, nil
}

// forget drops every cache entry that resolves to id.
func (p *Proxy) forget(id string) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	for k, e := range p.cache {
		if e.id == id {
			delete(p.cache, k)
		}
	}
}

// bufferPool reuses the reverse proxy's copy buffers (32 KiB each).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
