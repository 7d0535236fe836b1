package sockproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
)

// fakeEngine answers the few endpoints the proxy forwards and records what
// it received.
type fakeEngine struct {
	mu       sync.Mutex
	inspects atomic.Int64
	lastURL  string
	lastBody []byte
	labelled map[string]string // ref -> full ID of labelled containers
	plain    map[string]string // ref -> full ID of unlabelled containers
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{
		labelled: map[string]string{"mine": strings.Repeat("a", 64), strings.Repeat("a", 12): strings.Repeat("a", 64)},
		plain:    map[string]string{"other": strings.Repeat("b", 64)},
	}
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	if strings.HasSuffix(r.URL.Path, "/json") && strings.HasPrefix(r.URL.Path, "/containers/") && r.URL.Path != "/containers/json" {
		f.inspects.Add(1)
		ref := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/containers/"), "/json")
		labels := map[string]string{}
		id, ok := f.labelled[ref]
		if ok {
			labels[LabelManaged] = LabelManagedValue
		} else if id, ok = f.plain[ref]; !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"No such container: `+ref+`"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"Id": id, "Config": map[string]any{"Labels": labels}})
		return
	}
	f.mu.Lock()
	f.lastURL = r.URL.RequestURI()
	f.lastBody = body
	f.mu.Unlock()
	w.Header().Set("Api-Version", "1.41")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{}`)
}

func (f *fakeEngine) last() (string, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastURL, f.lastBody
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func newTestProxy(t *testing.T, cfg Config) (*Proxy, *fakeEngine, *bytes.Buffer) {
	t.Helper()
	f := newFakeEngine()
	var audit bytes.Buffer
	cfg.Transport = handlerTransport{f}
	cfg.Audit = slog.New(slog.NewJSONHandler(&audit, nil))
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, f, &audit
}

func do(p http.Handler, method, target, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w
}

func TestProxyForwardsCanonicalCreateAndListFilter(t *testing.T) {
	p, f, _ := newTestProxy(t, Config{})
	w := do(p, "POST", "/v1.41/containers/create?name=x", `{"Image":"b","HostConfig":{"ReadonlyRootfs":true}}`)
	if w.Code != 200 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	u, body := f.last()
	if u != "/v1.41/containers/create?name=x" || !strings.Contains(string(body), `"Labels":{"talos.managed":"true"}`) {
		t.Fatalf("forwarded %s %s", u, body)
	}
	w = do(p, "GET", `/v1.41/containers/json?all=1&filters=`+`%7B%22status%22%3A%5B%22exited%22%5D%7D`, "")
	if w.Code != 200 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	u, _ = f.last()
	want := `all=1&filters=%7B%22label%22%3A%7B%22talos.managed%3Dtrue%22%3Atrue%7D%2C%22status%22%3A%7B%22exited%22%3Atrue%7D%7D`
	if !strings.HasSuffix(u, want) {
		t.Fatalf("list forwarded as %s; want the label filter added (%s)", u, want)
	}
}

func TestProxyPerContainerResolutionAndCache(t *testing.T) {
	p, f, audit := newTestProxy(t, Config{InspectCacheTTL: time.Hour})
	for i := 0; i < 3; i++ {
		if w := do(p, "POST", "/v1.41/containers/mine/start", ""); w.Code != 200 {
			t.Fatalf("start: %d %s", w.Code, w.Body)
		}
	}
	if n := f.inspects.Load(); n != 1 {
		t.Fatalf("%d inspects for 3 starts; want 1 (cached)", n)
	}
	u, _ := f.last()
	if u != "/v1.41/containers/"+strings.Repeat("a", 64)+"/start" {
		t.Fatalf("forwarded to %s; want the resolved full ID", u)
	}
	if w := do(p, "POST", "/v1.41/containers/other/stop", ""); w.Code != 403 || !strings.Contains(w.Body.String(), "not managed by Talos") {
		t.Fatalf("unlabelled stop: %d %s", w.Code, w.Body)
	}
	if w := do(p, "GET", "/v1.41/containers/ghost/json", ""); w.Code != 404 || !strings.Contains(w.Body.String(), "No such container") {
		t.Fatalf("missing container: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(audit.String(), `"reason":"no such container"`) {
		t.Fatalf("a probe for a missing container was not audited: %s", audit.String())
	}
	// Without the cache every call inspects.
	p2, f2, _ := newTestProxy(t, Config{InspectCacheTTL: -1})
	do(p2, "POST", "/v1.41/containers/mine/start", "")
	do(p2, "POST", "/v1.41/containers/mine/start", "")
	if n := f2.inspects.Load(); n != 2 {
		t.Fatalf("%d inspects with the cache off; want 2", n)
	}
}

func TestProxyRateLimit(t *testing.T) {
	p, _, audit := newTestProxy(t, Config{RateLimit: 0.001, RateBurst: 2})
	for i := 0; i < 2; i++ {
		if w := do(p, "GET", "/_ping", ""); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	w := do(p, "GET", "/_ping", "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("third request: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if !strings.Contains(audit.String(), `"code":"T403"`) || p.Stats().RateLimited != 1 {
		t.Fatalf("rate limit not audited: %s", audit)
	}
	// Another client has its own bucket.
	r := httptest.NewRequest("GET", "/_ping", nil)
	r.RemoteAddr = "127.0.0.2:1234"
	w = httptest.NewRecorder()
	p.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("other client: %d", w.Code)
	}
	// Disabled.
	p2, _, _ := newTestProxy(t, Config{RateLimit: -1})
	for i := 0; i < 300; i++ {
		if w := do(p2, "GET", "/_ping", ""); w.Code != 200 {
			t.Fatalf("unlimited proxy limited at %d", i)
		}
	}
}

func TestLimiterRefills(t *testing.T) {
	l := newLimiter(10, 1)
	t0 := time.Unix(1000, 0)
	if ok, _ := l.allow("c", t0); !ok {
		t.Fatal("first token refused")
	}
	ok, wait := l.allow("c", t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v; want refusal for 100ms", ok, wait)
	}
	if ok, _ := l.allow("c", t0.Add(99*time.Millisecond)); ok {
		t.Fatal("refilled too early")
	}
	if ok, _ := l.allow("c", t0.Add(200*time.Millisecond)); !ok {
		t.Fatal("not refilled after 100ms")
	}
}

func TestProxyUpstreamDown(t *testing.T) {
	var logs bytes.Buffer
	p, err := New(Config{Upstream: "unix:///nonexistent/docker.sock", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := do(p, "GET", "/_ping", "")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), `"message"`) {
		t.Fatalf("engine down: %d %s", w.Code, w.Body)
	}
	w = do(p, "POST", "/v1.41/containers/x/start", "")
	if w.Code != http.StatusBadGateway {
		t.Fatalf("engine down on resolve: %d %s", w.Code, w.Body)
	}
	if p.Stats().UpstreamError != 2 || !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("stats %+v, log %s", p.Stats(), logs.String())
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	bad := map[string]Config{
		"upstream scheme":     {Upstream: "http2://x"},
		"upstream empty path": {Upstream: "unix://"},
		"unknown op":          {Profile: Profile{Name: "x", Ops: []Op{"exec"}}},
		"no ops":              {Profile: Profile{Name: "x"}},
		"no name":             {Profile: Profile{Ops: []Op{OpPing}, CapAdd: []string{"X"}, BindAllowlist: []string{"/x"}}},
		"relative bind":       {Profile: Profile{Name: "x", Ops: []Op{OpPing}, BindAllowlist: []string{"srv"}}},
		"root bind":           {Profile: Profile{Name: "x", Ops: []Op{OpPing}, BindAllowlist: []string{"/"}}},
		"host network":        {Profile: Profile{Name: "x", Ops: []Op{OpPing}, NetworkModes: []string{"host"}}},
		"bad label":           {Label: "Bad Label"},
		"negative body":       {MaxBodyBytes: -1},
		"bad version":         {MinAPIVersion: "one"},
	}
	for name, cfg := range bad {
		if _, err := New(cfg); err == nil || !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%s: New = %v; want a CONFIG_INVALID error", name, err)
		}
	}
	if _, err := ProfileByName("root"); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("ProfileByName(root) = %v", err)
	}
	if p, err := ProfileByName(ProfileNameMaintenance); err != nil || !p.allows(OpRemove) || !p.allows(OpKill) || p.allows(OpAttach) {
		t.Errorf("maintenance profile %+v, %v", p, err)
	}
	if p := SkillsProfile(); p.allows(OpRemove) || p.allows(OpKill) {
		t.Errorf("skills profile allows kill or remove")
	}
	p, err := ProfileByName(ProfileNameDockerControl)
	if err != nil || p.Name != ProfileNameDockerControl {
		t.Fatalf("docker_control profile %+v, %v", p, err)
	}
	for _, o := range Ops() {
		want := o == OpPing || o == OpVersion || o == OpList || o == OpInspect || o == OpStart || o == OpStop
		if p.allows(o) != want {
			t.Errorf("docker_control profile allows %s: %v, want %v", o, p.allows(o), want)
		}
	}
}

func TestListen(t *testing.T) {
	if _, err := Listen("tcp://0.0.0.0:0", ListenOptions{}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("non-loopback TCP: %v; want refusal", err)
	}
	ln, err := Listen("tcp://127.0.0.1:0", ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := Listen("ftp://x", ListenOptions{}); err == nil {
		t.Fatal("ftp accepted")
	}

	dir, _ := os.MkdirTemp("", "spl")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "d.sock")
	// A stale socket (nobody listening) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = Listen("unix://"+sock, ListenOptions{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != SocketMode {
		t.Fatalf("socket mode %v, %v; want %v", fi.Mode().Perm(), err, SocketMode)
	}
	// In use: refused.
	if _, err := Listen("unix://"+sock, ListenOptions{}); err == nil {
		t.Fatal("a socket in use was taken over")
	}
	ln.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind after Close: %v", err)
	}
	// Not a socket: refused, file untouched.
	if err := os.WriteFile(sock, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen("unix://"+sock, ListenOptions{}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(sock); string(b) != "keep" {
		t.Fatal("regular file was changed")
	}
}

func TestPeerCredentials(t *testing.T) {
	dir, _ := os.MkdirTemp("", "spc")
	defer os.RemoveAll(dir)
	ln, err := Listen("unix://"+filepath.Join(dir, "s"), ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan clientInfo, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		got <- peerInfo(c)
		c.Close()
	}()
	c, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ci := <-got
	if want := "uid:" + itoa(os.Getuid()); ci.key != want || !strings.Contains(ci.desc, "pid:"+itoa(os.Getpid())) {
		t.Fatalf("peer %+v; want %s and our pid", ci, want)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestQueryChecks(t *testing.T) {
	ok := map[Op]string{
		OpLogs:   "follow=1&stdout=1&stderr=true&tail=all&since=1700000000.5&timestamps=0",
		OpStop:   "t=10&signal=SIGTERM",
		OpWait:   "condition=next-exit",
		OpCreate: "name=%2Fmy-box&platform=linux%2Famd64",
		OpRemove: "force=1&v=1",
		OpList:   "all=1&limit=5&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D",
	}
	for op, q := range ok {
		if _, err := checkQuery(op, q, LabelManaged); err != nil {
			t.Errorf("%s?%s: %v", op, q, err)
		}
	}
	bad := map[string]struct {
		op Op
		q  string
	}{
		"unknown":          {OpStart, "checkpoint=x"},
		"bad bool":         {OpLogs, "follow=yes"},
		"bad int":          {OpStop, "t=ten"},
		"bad condition":    {OpWait, "condition=forever"},
		"bad name":         {OpCreate, "name=..%2Fx"},
		"semicolon":        {OpLogs, "follow=1;stdout=1"},
		"bad escape":       {OpLogs, "follow=%zz"},
		"filters not json": {OpList, "filters=nope"},
		"filters false":    {OpList, "filters=%7B%22label%22%3A%7B%22a%22%3Afalse%7D%7D"},
		"filters dup":      {OpList, "filters=%7B%22label%22%3A%5B%5D%2C%22Label%22%3A%5B%5D%7D"},
		"filters trailing": {OpList, "filters=%7B%7D%7B%7D"},
		"too long":         {OpLogs, "tail=" + strings.Repeat("1", 5000)},
		"ping params":      {OpPing, "x=1"},
	}
	for name, c := range bad {
		if _, err := checkQuery(c.op, c.q, LabelManaged); err == nil {
			t.Errorf("%s: %s?%s accepted", name, c.op, c.q)
		}
	}
}

// BenchmarkProxyList measures the proxy's own work for a container list
// (checks, filter rewrite, reverse proxy) against an in-process engine stub.
func BenchmarkProxyList(b *testing.B) {
	p, err := New(Config{Transport: handlerTransport{newFakeEngine()}, RateLimit: -1})
	if err != nil {
		b.Fatal(err)
	}
	target := `/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%7B%22talos.managed%3Dtrue%22%3Atrue%7D%7D`
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", target, nil)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func TestProxyUpdateAndChunkedCreate(t *testing.T) {
	prof := SkillsProfile()
	prof.Name = "updater"
	prof.Ops = append(prof.Ops, OpUpdate)
	p, f, audit := newTestProxy(t, Config{Profile: prof})
	if w := do(p, "POST", "/v1.41/containers/mine/update", `{"Memory":67108864}`); w.Code != 200 {
		t.Fatalf("update: %d %s", w.Code, w.Body)
	}
	if u, body := f.last(); !strings.HasSuffix(u, "/update") || string(body) != `{"Memory":67108864}` {
		t.Fatalf("forwarded %s %s", u, body)
	}
	if w := do(p, "POST", "/v1.41/containers/mine/update", `{"CgroupParent":"/"}`); w.Code != 403 {
		t.Fatalf("update with CgroupParent: %d", w.Code)
	}
	if w := do(p, "POST", "/v1.41/containers/other/update", `{"Memory":1}`); w.Code != 403 {
		t.Fatalf("update of an unlabelled container: %d", w.Code)
	}
	// A valid chunked create is read, checked and forwarded with a length.
	r := httptest.NewRequest("POST", "/v1.41/containers/create", strings.NewReader(`{"Image":"b","HostConfig":{"ReadonlyRootfs":true}}`))
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("chunked create: %d %s", w.Code, w.Body)
	}
	if n := strings.Count(audit.String(), `"event":"sockproxy.deny"`); n != 2 {
		t.Fatalf("%d denials audited; want 2", n)
	}
}

func TestProxyCorrelationID(t *testing.T) {
	p, _, audit := newTestProxy(t, Config{})
	r := httptest.NewRequest("GET", "/v1.41/info", nil)
	r.Header.Set(talos.CorrelationHeader, "0123456789abcdef")
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	if w.Header().Get(talos.CorrelationHeader) != "0123456789abcdef" || !strings.Contains(audit.String(), `"correlation_id":"0123456789abcdef"`) {
		t.Fatalf("caller's correlation ID not kept: %q %s", w.Header().Get(talos.CorrelationHeader), audit)
	}
	r = httptest.NewRequest("GET", "/v1.41/info", nil)
	r.Header.Set(talos.CorrelationHeader, "not-an-id")
	w = httptest.NewRecorder()
	p.ServeHTTP(w, r)
	if id := w.Header().Get(talos.CorrelationHeader); !talos.ValidCorrelationID(id) {
		t.Fatalf("generated correlation ID %q", id)
	}
}
