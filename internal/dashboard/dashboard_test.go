package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/quarantine"
)

const (
	testUser = "admin"
	testPass = "correct-horse-Battery-9"
	// xss is in every string the fake sources return.
	xss = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`
)

// fakeDeps returns sources whose every string carries xss, and a chat
// handler that records what reached it.
func fakeDeps(chatHits *int) Deps {
	return Deps{
		Health: func(context.Context) (health.Report, error) {
			return health.Report{Status: health.Degraded, Version: "v-test", UptimeS: 12, Checks: map[string]health.Result{
				"redis": {Status: health.StatusOK, Detail: "redis at 127.0.0.1 " + xss},
				"disk":  {Status: health.StatusWarn, Detail: "disk 91 % full", Critical: true},
			}}, nil
		},
		Adapters: func(context.Context) ([]Adapter, error) {
			return []Adapter{{Role: "local-model", Name: "ollama", Detail: "model " + xss}}, nil
		},
		Maintenance: func(context.Context) (string, error) {
			return "next cycle 2026-12-08 04:00 UTC " + xss, errors.New("maintenance needs attention: vector_prune failed")
		},
		Skills: func(context.Context) ([]quarantine.Record, error) {
			return []quarantine.Record{{Key: quarantine.Key{ID: "skill" + xss, Version: "1.0.0", Hash: strings.Repeat("ab", 32)},
				State: quarantine.State("quarantined"), Scan: quarantine.ScanPassed, CleanRuns: 2, UpdatedAt: time.Unix(1_800_000_000, 0),
				Source: quarantine.Source{Type: "generated", Origin: "qwen"}}}, nil
		},
		Strikes: func(_ context.Context, k quarantine.Key) (int, error) {
			if k.Version != "1.0.0" {
				return 0, errors.New("no such skill " + k.Version)
			}
			return 2, nil
		},
		Chat: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*chatHits++
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: token\ndata: {\"text\":\"hi\"}\n\nevent: done\ndata: {\"answer\":\"hi\"}\n\n")
		}),
	}
}

func newTest(t *testing.T) (*httptest.Server, *int) {
	t.Helper()
	hits := new(int)
	d, err := New(Config{User: testUser, Pass: testPass}, fakeDeps(hits))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return srv, hits
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func get(t *testing.T, url string, user, pass string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	return do(t, req)
}

var allPaths = []string{"/", "/chat", "/skills", "/live", "/logs", "/security", "/memory", "/tokens", "/dreams",
	"/static/app.css", "/static/common.js", "/static/vendor/chartjs/chart.umd.min.js",
	OverviewPath, SkillsPath, MetricsPath, SecurityPath, TokensPath, DreamsPath, MemoryPath, SessionPath}

// csrfToken returns the dashboard's CSRF token as its pages read it.
func csrfToken(t *testing.T, base string) string {
	t.Helper()
	resp, body := get(t, base+SessionPath, testUser, testPass)
	var s Session
	if err := json.Unmarshal([]byte(body), &s); err != nil || resp.StatusCode != http.StatusOK || len(s.CSRF) != 64 {
		t.Fatalf("session: %d %s (%v)", resp.StatusCode, body, err)
	}
	return s.CSRF
}

func TestAuthRequired(t *testing.T) {
	srv, _ := newTest(t)
	for _, p := range append(allPaths, "/nope") {
		for _, c := range []struct{ name, user, pass string }{
			{"none", "", ""}, {"wrong password", testUser, testPass + "x"}, {"wrong user", "root", testPass}, {"empty password", testUser, ""},
		} {
			resp, body := get(t, srv.URL+p, c.user, c.pass)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s with %s: status %d, want 401", p, c.name, resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="`+Realm+`"`) {
				t.Errorf("%s with %s: WWW-Authenticate %q", p, c.name, got)
			}
			if strings.Contains(body, "pwned") {
				t.Errorf("%s with %s: data leaked into a refused answer: %s", p, c.name, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+ChatPath, strings.NewReader(`{"message":"hi"}`))
		if resp, _ := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: status %d, want 401", ChatPath, resp.StatusCode)
		}
	}
}

func TestPagesAndHeaders(t *testing.T) {
	srv, _ := newTest(t)
	for _, p := range allPaths {
		resp, body := get(t, srv.URL+p, testUser, testPass)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", p, resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Content-Security-Policy") != CSP || !strings.Contains(CSP, "default-src 'self'") || strings.Contains(CSP, "unsafe-inline") {
			t.Errorf("%s: CSP %q", p, h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, X-Content-Type-Options %q", p, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		}
	}
	// Unknown paths and methods.
	if resp, _ := get(t, srv.URL+"/etc/passwd", testUser, testPass); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/", nil)
	req.SetBasicAuth(testUser, testPass)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /: %d, want 405", resp.StatusCode)
	}
}

// The HTML pages are the embedded files byte for byte: no data from any
// source is ever written into HTML, and no page has inline script or
// style.
func TestPagesNeverEmbedData(t *testing.T) {
	srv, _ := newTest(t)
	for p, file := range pages() {
		resp, body := get(t, srv.URL+p, testUser, testPass)
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, ct)
		}
		want, err := staticFiles.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if body != string(want) {
			t.Errorf("%s differs from its embedded file %s", p, file)
		}
		for _, bad := range []string{"pwned", "<script>", " on", "style=", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
	// No script sets HTML from a string.
	entries, err := staticFiles.ReadDir("static")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".js") {
			continue
		}
		b, _ := staticFiles.ReadFile("static/" + e.Name())
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("static/%s uses %s", e.Name(), bad)
			}
		}
	}
}

func TestJSONEndpoints(t *testing.T) {
	srv, _ := newTest(t)
	resp, body := get(t, srv.URL+OverviewPath, testUser, testPass)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("overview Content-Type %q", ct)
	}
	var ov Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if ov.Health.Status != "degraded" || len(ov.Health.Checks) != 2 || ov.Health.Checks[0].Name != "disk" || !ov.Health.Checks[0].Critical ||
		ov.Health.Checks[1].Detail != "redis at 127.0.0.1 "+xss {
		t.Errorf("health %+v", ov.Health)
	}
	if len(ov.Adapters.List) != 1 || ov.Adapters.List[0].Detail != "model "+xss {
		t.Errorf("adapters %+v", ov.Adapters)
	}
	if !strings.HasSuffix(ov.Maintenance.Summary, xss) || ov.Maintenance.Problem != "maintenance needs attention: vector_prune failed" {
		t.Errorf("maintenance %+v", ov.Maintenance)
	}
	// JSON escapes the markup: a browser sniffing it would find no tag.
	if strings.Contains(body, "<script>") {
		t.Errorf("overview JSON carries raw markup: %s", body)
	}

	_, body = get(t, srv.URL+SkillsPath, testUser, testPass)
	var sv SkillsView
	if err := json.Unmarshal([]byte(body), &sv); err != nil {
		t.Fatal(err)
	}
	if len(sv.Records) != 1 || sv.Records[0].Hash != "abababababab" || sv.Records[0].State != "quarantined" || sv.Records[0].Source != "generated (qwen)" ||
		sv.Records[0].Strikes == nil || *sv.Records[0].Strikes != 2 {
		t.Errorf("skills %+v", sv)
	}
}

// A view without its source says so; a failing source's error is shown
// with credentials redacted.
func TestMissingAndFailingSources(t *testing.T) {
	d, err := New(Config{User: testUser, Pass: testPass}, Deps{
		Skills: func(context.Context) ([]quarantine.Record, error) {
			return nil, errors.New("cannot open postgres://talos:hunter2hunter2@127.0.0.1/talos")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	_, body := get(t, srv.URL+OverviewPath, testUser, testPass)
	var ov Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if ov.Health.Error != notWired || ov.Adapters.Error != notWired || ov.Maintenance.Error != notWired {
		t.Errorf("overview without sources: %+v", ov)
	}
	_, body = get(t, srv.URL+SkillsPath, testUser, testPass)
	if strings.Contains(body, "hunter2") || !strings.Contains(body, "cannot open postgres://") {
		t.Errorf("skills error: %s", body)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+ChatPath, strings.NewReader(`{"message":"hi"}`))
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set(CSRFHeader, csrfToken(t, srv.URL))
	if resp, _ := do(t, req); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("chat without a handler: %d, want 503", resp.StatusCode)
	}
}

func TestChatCrossOriginRefused(t *testing.T) {
	srv, hits := newTest(t)
	token := csrfToken(t, srv.URL)
	post := func(hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+ChatPath, strings.NewReader(`{"message":"hi"}`))
		req.SetBasicAuth(testUser, testPass)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(CSRFHeader, token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, _ := do(t, req)
		return resp.StatusCode
	}
	for _, hdr := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1.nip.io"},
		{"Origin": "null"},
	} {
		if code := post(hdr); code != http.StatusForbidden {
			t.Errorf("POST with %v: %d, want 403", hdr, code)
		}
	}
	if *hits != 0 {
		t.Fatalf("a cross-origin POST reached the chat handler %d times", *hits)
	}
	// The dashboard's own page (same origin) gets through.
	if code := post(map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}); code != http.StatusOK {
		t.Errorf("same-origin POST: %d, want 200", code)
	}
	if *hits != 1 {
		t.Errorf("same-origin POST reached the chat handler %d times, want 1", *hits)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{DataTimeout: -1}, Deps{})
	if err == nil {
		t.Fatal("New accepted an empty user and password and a negative timeout")
	}
	for _, want := range []string{"BASIC_AUTH_PASS", "BASIC_AUTH_USER", "DataTimeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "[::1]:8080", "127.0.0.2:9000"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:8080", "[::]:8080", "192.168.1.2:8080", "localhost:8080", "example.com:80", "8080", ""} {
		err := CheckLoopback(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if err := CheckLoopback("0.0.0.0:8080"); !strings.Contains(err.Error(), "WEB_BIND_ADDRESS") {
		t.Errorf("error does not name WEB_BIND_ADDRESS: %v", err)
	}
	if _, err := Listen(context.Background(), "0.0.0.0:0"); err == nil {
		t.Error("Listen accepted 0.0.0.0")
	}
}

func TestServeStopsWithContext(t *testing.T) {
	d, err := New(Config{User: testUser, Pass: testPass}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	resp, _ := get(t, "http://"+ln.Addr().String()+"/", testUser, testPass)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
