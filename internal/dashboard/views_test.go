package dashboard

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/sockproxy"
)

// chatterFunc runs turns with a function (the orchestrator in the daemon).
type chatterFunc func(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error)

func (f chatterFunc) Chat(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error) {
	return f(ctx, t)
}

// fakeMemory is a memory whose every string carries xss.
type fakeMemory struct{ pruned, restored atomic.Int32 }

func (m *fakeMemory) Stats(context.Context) (MemoryStats, error) {
	return MemoryStats{Count: 3, Ceiling: 100, PruneTrigger: 90, PruneTarget: 75, Store: "sql " + xss, Archive: "archive.jsonl"}, nil
}

func (m *fakeMemory) Search(_ context.Context, q string, k int) ([]MemoryHit, error) {
	return []MemoryHit{{ID: "m-1", Similarity: 0.9, Source: "tool", Text: "remembered " + q + " " + xss}}, nil
}

func (m *fakeMemory) Prune(context.Context) (string, error) {
	m.pruned.Add(1)
	return "pruned 0 memories", nil
}

func (m *fakeMemory) Restore(_ context.Context, run string) (string, error) {
	m.restored.Add(1)
	return "restored 0 memories of run " + run, nil
}

// proxyDenial sends a request the Docker socket proxy (the skills
// sandbox's) refuses, with audit as its audit log: a real denial line.
func proxyDenial(t *testing.T, audit *slog.Logger) {
	t.Helper()
	p, err := sockproxy.New(sockproxy.Config{Upstream: "unix://" + filepath.Join(t.TempDir(), "no-docker.sock"), Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sockproxy.Serve(ctx, ln, sockproxy.NewServer(p)) }()
	defer func() {
		cancel()
		<-done
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/v1.47/secrets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the socket proxy answered %d to a secrets request, want 403", resp.StatusCode)
	}
}

// viewDeps adds the views' sources to fakeDeps; the returned counters say
// how often the kill switch and the unlock were used.
func viewDeps(t *testing.T) (Deps, *atomic.Int32, *atomic.Int32, *LogFeed) {
	t.Helper()
	deps := fakeDeps(new(int))
	var panics, unlocks atomic.Int32
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "talos_test_gauge", Help: "test"})
	g.Set(42)
	reg.MustRegister(g)
	deps.Metrics = GatherMetrics(reg)
	logs := NewLogFeed(0)
	deps.Logs = logs
	audit := NewLogFeed(0)
	al := slog.New(audit)
	tlog.Audit(context.Background(), al, "turn", slog.String("session", "s-1"), slog.String("firewall", "block"), slog.String("rules", "INJ-001"+xss))
	tlog.Audit(context.Background(), al, "turn", slog.String("session", "s-2"), slog.String("firewall", "allow"), slog.String("rules", "none"))
	proxyDenial(t, al)
	deps.Audit = audit
	deps.Lockdown = func(context.Context) (firewall.LockdownState, error) {
		return firewall.LockdownState{Active: true, TriggeredAt: time.Unix(1_800_000_000, 0), TriggeredBy: "firewall", Reason: "injection " + xss}, nil
	}
	deps.Unlock = func(_ context.Context, code string) (firewall.UnlockResult, error) {
		unlocks.Add(1)
		if code == "123456" {
			return firewall.UnlockOK, nil
		}
		return firewall.UnlockInvalidCode, nil
	}
	deps.MCPPending = func(context.Context) ([]MCPPending, error) {
		return []MCPPending{{Server: "files" + xss, Reason: "definitions changed", Changes: "changed: read " + xss}}, nil
	}
	deps.Skills = func(context.Context) ([]quarantine.Record, error) {
		return []quarantine.Record{{Key: quarantine.Key{ID: "skill" + xss, Version: "1.0.0", Hash: strings.Repeat("ab", 32)},
			State: quarantine.State("quarantined"), Scan: quarantine.ScanPassed, UpdatedAt: time.Unix(1_800_000_000, 0),
			Approval: &quarantine.Approval{Status: quarantine.ApprovalPending, ExpiresAt: time.Unix(1_800_086_400, 0)}}}, nil
	}
	deps.Tokens = func(context.Context) (orchestrator.TokenSummary, error) {
		return orchestrator.TokenSummary{
			Live: orchestrator.LiveTokens{Date: "2026-12-07", DailyTotal: 42, DailyLimit: 100000,
				Models: map[string]orchestrator.ModelTokens{"qwen" + xss: {PromptTokens: 30, CompletionTokens: 12, TotalTokens: 42}}},
			History: []orchestrator.DayTokens{{Date: "2026-12-07", Models: map[string]int{"qwen" + xss: 42}, CombinedTotal: 42},
				{Date: "2026-12-06", Models: map[string]int{"old": 3}, CombinedTotal: 3}},
			Source: orchestrator.TokenSourceMemory, Note: "Redis does not answer, so these are this process's counts only" + xss,
		}, nil
	}
	deps.Dreams = func(context.Context) ([]DreamView, error) {
		return []DreamView{{ID: "2026-12-07-nightly", Kind: "nightly", Outcome: "ok", Started: time.Unix(1_800_000_000, 0), Duration: "3s", Summary: "Dream cycle " + xss}}, nil
	}
	deps.Memory = &fakeMemory{}
	deps.Panic = func(_ context.Context, reason string) error {
		if reason != "test stop" {
			return errors.New("unexpected reason " + reason)
		}
		panics.Add(1)
		return nil
	}
	return deps, &panics, &unlocks, logs
}

func newViewTest(t *testing.T) (*httptest.Server, Deps, *atomic.Int32, *atomic.Int32, *LogFeed) {
	t.Helper()
	deps, panics, unlocks, logs := viewDeps(t)
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return srv, deps, panics, unlocks, logs
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := get(t, url, testUser, testPass)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

func post(t *testing.T, url, token, body string) (int, ActionResult) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.SetBasicAuth(testUser, testPass)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(CSRFHeader, token)
	}
	resp, b := do(t, req)
	var res ActionResult
	_ = json.Unmarshal([]byte(b), &res)
	return resp.StatusCode, res
}

func TestViewsJSON(t *testing.T) {
	srv, _, _, _, _ := newViewTest(t)
	var mv MetricsView
	getJSON(t, srv.URL+MetricsPath, &mv)
	found := false
	for _, s := range mv.Samples {
		if s.Name == "talos_test_gauge" && s.Value == 42 {
			found = true
		}
	}
	if !found || mv.Health.Status != "degraded" || mv.MetricsError != "" || mv.Time.IsZero() {
		t.Errorf("metrics view: %+v", mv)
	}
	var sv SecurityView
	getJSON(t, srv.URL+SecurityPath, &sv)
	if !sv.Lockdown.Locked || sv.Lockdown.Reason != "injection "+xss {
		t.Errorf("lockdown: %+v", sv.Lockdown)
	}
	if len(sv.Decisions) != 1 || sv.Decisions[0].Rules != "INJ-001"+xss || sv.Decisions[0].Action != "block" || sv.Decisions[0].Session != "s-1" {
		t.Errorf("decisions (only the block, not the plain allow): %+v", sv.Decisions)
	}
	if len(sv.Promotions) != 1 || !strings.HasPrefix(sv.Promotions[0].Approval, "pending until ") {
		t.Errorf("promotions: %+v", sv.Promotions)
	}
	if len(sv.Strikes) != 1 || *sv.Strikes[0].Strikes != 2 {
		t.Errorf("strikes: %+v", sv.Strikes)
	}
	if len(sv.MCP) != 1 {
		t.Errorf("mcp %+v", sv.MCP)
	}
	if len(sv.ProxyDenials) != 1 || sv.ProxyDenialsError != "" || !strings.Contains(sv.ProxyDenials[0].Path, "/secrets") ||
		sv.ProxyDenials[0].Status != "403" || sv.ProxyDenials[0].Reason == "" || sv.ProxyDenials[0].Profile == "" {
		t.Errorf("proxy denials %+v (%q)", sv.ProxyDenials, sv.ProxyDenialsError)
	}
	var tv TokensView
	getJSON(t, srv.URL+TokensPath, &tv)
	if len(tv.Rows) != 2 || tv.Rows[0] != (TokenRow{Day: "2026-12-07", Model: "qwen" + xss, Prompt: 30, Completion: 12, Total: 42, Split: true}) ||
		tv.Rows[1] != (TokenRow{Day: "2026-12-06", Model: "old", Total: 3}) {
		t.Errorf("tokens, today split and newest first, earlier days as totals: %+v", tv.Rows)
	}
	if tv.Today != "2026-12-07" || tv.DailyTotal != 42 || tv.DailyLimit != 100000 || tv.Source != orchestrator.TokenSourceMemory || !strings.Contains(tv.Note, "this process's counts only") {
		t.Errorf("tokens view lost the summary's totals or source: %+v", tv)
	}
	var dv DreamsView
	getJSON(t, srv.URL+DreamsPath, &dv)
	if len(dv.Reports) != 1 || dv.Reports[0].Summary != "Dream cycle "+xss {
		t.Errorf("dreams: %+v", dv)
	}
	var mem MemoryView
	getJSON(t, srv.URL+MemoryPath, &mem)
	if mem.Stats == nil || mem.Stats.Count != 3 {
		t.Errorf("memory: %+v", mem)
	}
	var hits SearchView
	getJSON(t, srv.URL+MemorySearchPath+"?q=cats&k=5", &hits)
	if len(hits.Hits) != 1 || !strings.HasPrefix(hits.Hits[0].Text, "remembered cats ") {
		t.Errorf("search: %+v", hits)
	}
}

// Without sources every view says it is not wired instead of showing
// anything.
func TestViewsNotWired(t *testing.T) {
	d, err := New(Config{User: testUser, Pass: testPass}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	var mv MetricsView
	getJSON(t, srv.URL+MetricsPath, &mv)
	var sv SecurityView
	getJSON(t, srv.URL+SecurityPath, &sv)
	var tv TokensView
	getJSON(t, srv.URL+TokensPath, &tv)
	var dv DreamsView
	getJSON(t, srv.URL+DreamsPath, &dv)
	var mem MemoryView
	getJSON(t, srv.URL+MemoryPath, &mem)
	for name, got := range map[string]string{"metrics": mv.MetricsError, "health": mv.Health.Error, "lockdown": sv.Lockdown.Error,
		"decisions": sv.DecisionsError, "proxy": sv.ProxyDenialsError, "mcp": sv.MCPError, "promotions": sv.PromotionsError, "tokens": tv.Error, "dreams": dv.Error, "memory": mem.Error} {
		if got != notWired {
			t.Errorf("%s: %q, want %q", name, got, notWired)
		}
	}
	resp, body := get(t, srv.URL+LogsStreamPath, testUser, testPass)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "event: unavailable") || !strings.Contains(body, notWired) {
		t.Errorf("logs stream without a feed: %d %q", resp.StatusCode, body)
	}
	token := csrfToken(t, srv.URL)
	for _, p := range []string{PanicPath, UnlockPath, MemoryPrunePath} {
		body := map[string]string{PanicPath: `{"reason":"x","confirm":"STOP"}`, UnlockPath: `{"code":"123456"}`, MemoryPrunePath: `{}`}[p]
		if code, res := post(t, srv.URL+p, token, body); code != http.StatusServiceUnavailable || !strings.Contains(res.Error, notWired) {
			t.Errorf("POST %s without a source: %d %+v", p, code, res)
		}
	}
}

// Every state-changing request needs the CSRF token: without it, or with a
// wrong one, it is refused before its handler runs.
func TestCSRFRequired(t *testing.T) {
	srv, deps, panics, unlocks, _ := newViewTest(t)
	token := csrfToken(t, srv.URL)
	bodies := map[string]string{PanicPath: `{"reason":"test stop","confirm":"STOP"}`, UnlockPath: `{"code":"123456"}`,
		MemoryPrunePath: `{}`, MemoryRestorePath: `{"run":""}`, ChatPath: `{"message":"hi"}`}
	for p, body := range bodies {
		flipped := "0" + token[1:]
		if token[0] == '0' {
			flipped = "1" + token[1:]
		}
		for _, bad := range []string{"", flipped, token + "x", strings.ToUpper(token)} {
			if code, _ := post(t, srv.URL+p, bad, body); code != http.StatusForbidden {
				t.Errorf("POST %s with token %q: %d, want 403", p, bad, code)
			}
		}
	}
	mem := deps.Memory.(*fakeMemory)
	if panics.Load() != 0 || unlocks.Load() != 0 || mem.pruned.Load() != 0 || mem.restored.Load() != 0 {
		t.Fatalf("a request without the token reached a handler")
	}
	// A second dashboard has its own token.
	other, _, _, _, _ := newViewTest(t)
	if csrfToken(t, other.URL) == token {
		t.Error("two dashboards share a CSRF token")
	}
}

func TestKillSwitchNeedsConfirmation(t *testing.T) {
	srv, _, panics, _, _ := newViewTest(t)
	token := csrfToken(t, srv.URL)
	code, res := post(t, srv.URL+PanicPath, token, `{"reason":"","confirm":"yes"}`)
	if code != http.StatusBadRequest || !strings.Contains(res.Error, "field reason") || !strings.Contains(res.Error, `field confirm is "yes": type STOP`) {
		t.Errorf("unconfirmed: %d %+v", code, res)
	}
	if code, res := post(t, srv.URL+PanicPath, token, `{"reason":"test stop","confirm":"STOP","extra":1}`); code != http.StatusBadRequest || !strings.Contains(res.Error, "extra") {
		t.Errorf("unknown field: %d %+v", code, res)
	}
	if panics.Load() != 0 {
		t.Fatal("the kill switch fired without a confirmation")
	}
	if code, res := post(t, srv.URL+PanicPath, token, `{"reason":"test stop","confirm":"STOP"}`); code != http.StatusAccepted || res.Result == "" {
		t.Errorf("confirmed: %d %+v", code, res)
	}
	if panics.Load() != 1 {
		t.Errorf("the kill switch fired %d times, want 1", panics.Load())
	}
}

func TestUnlockAndMemoryActions(t *testing.T) {
	srv, deps, _, unlocks, _ := newViewTest(t)
	token := csrfToken(t, srv.URL)
	if code, res := post(t, srv.URL+UnlockPath, token, `{"code":"12a<b>"}`); code != http.StatusBadRequest || !strings.Contains(res.Error, "field code") {
		t.Errorf("bad code: %d %+v", code, res)
	}
	if unlocks.Load() != 0 {
		t.Error("a malformed code reached the lockdown")
	}
	if code, res := post(t, srv.URL+UnlockPath, token, `{"code":"654321"}`); code != http.StatusForbidden || res.Result != string(firewall.UnlockInvalidCode) {
		t.Errorf("wrong code: %d %+v", code, res)
	}
	if code, res := post(t, srv.URL+UnlockPath, token, `{"code":"123456"}`); code != http.StatusOK || res.Result != string(firewall.UnlockOK) {
		t.Errorf("right code: %d %+v", code, res)
	}
	if code, res := post(t, srv.URL+MemoryPrunePath, token, `{}`); code != http.StatusOK || res.Result != "pruned 0 memories" {
		t.Errorf("prune: %d %+v", code, res)
	}
	if code, res := post(t, srv.URL+MemoryRestorePath, token, `{"run":"r-1"}`); code != http.StatusOK || res.Result != "restored 0 memories of run r-1" {
		t.Errorf("restore: %d %+v", code, res)
	}
	if code, res := post(t, srv.URL+MemoryRestorePath, token, `{"run":"a\nb"}`); code != http.StatusBadRequest || !strings.Contains(res.Error, `field run is "a\nb"`) {
		t.Errorf("restore with a control character: %d %+v", code, res)
	}
	if m := deps.Memory.(*fakeMemory); m.pruned.Load() != 1 || m.restored.Load() != 1 {
		t.Errorf("prune %d, restore %d", m.pruned.Load(), m.restored.Load())
	}
	resp, body := get(t, srv.URL+MemorySearchPath+"?q=&k=99", testUser, testPass)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "parameter q") || !strings.Contains(body, "parameter k is \\\"99\\\"") {
		t.Errorf("bad search: %d %s", resp.StatusCode, body)
	}
}

func TestLogFeed(t *testing.T) {
	f := NewLogFeed(3)
	l := slog.New(f).With("component", "test")
	cid := tlog.NewCorrelationID()
	ctx := tlog.WithCorrelationID(context.Background(), cid)
	l.DebugContext(ctx, "debug line")
	l.Info("connect to redis://user:hunter2@127.0.0.1:6379/0 failed", "url", "postgres://u:hunter2@db/x", slog.Group("g", "password", "hunter2"))
	l.Warn("third")
	l.Error("fourth")
	lines, changed := f.After(0)
	if len(lines) != 3 || lines[0].Seq != 2 || lines[2].Msg != "fourth" {
		t.Fatalf("ring of 3: %+v", lines)
	}
	for _, ln := range lines {
		if strings.Contains(ln.Msg+ln.Attrs, "hunter2") {
			t.Errorf("a secret reached the feed: %+v", ln)
		}
	}
	if lines[0].Tier != 2 || lines[0].Level != "INFO" || !strings.Contains(lines[0].Attrs, "component=test") || !strings.Contains(lines[0].Attrs, "g.password=") {
		t.Errorf("line: %+v", lines[0])
	}
	select {
	case <-changed:
		t.Fatal("changed closed before a new line")
	default:
	}
	f2 := NewLogFeed(10)
	slog.New(f2).DebugContext(ctx, "debug line")
	got, _ := f2.After(0)
	if len(got) != 1 || got[0].Tier != 3 || got[0].CorrelationID != cid {
		t.Errorf("debug line: %+v", got)
	}
	l.Info("fifth")
	select {
	case <-changed:
	default:
		t.Fatal("changed not closed after a new line")
	}
	if after, _ := f.After(4); len(after) != 1 || after[0].Msg != "fifth" {
		t.Errorf("After(4): %+v", after)
	}
}

// The logs stream sends the kept lines, then a line logged while the page
// is open, as it is logged.
func TestLogsStreamLive(t *testing.T) {
	srv, _, _, _, logs := newViewTest(t)
	log := slog.New(logs)
	log.Info("before the page opened")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+LogsStreamPath, nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() LogLine {
		t.Helper()
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var l LogLine
				if err := json.Unmarshal([]byte(d), &l); err != nil {
					t.Fatal(err)
				}
				return l
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return LogLine{}
	}
	if l := next(); l.Msg != "before the page opened" {
		t.Fatalf("first line %+v", l)
	}
	log.Warn("live " + xss)
	if l := next(); l.Msg != "live "+xss || l.Level != "WARN" {
		t.Fatalf("live line %+v", l)
	}
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + WSChatPath
}

func authHeader(user, pass string) http.Header {
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	return h
}

// The WebSocket chat streams a turn's tokens then its reply; a handshake
// from another origin, without an Origin or without credentials is
// refused; abort cancels the running turn.
func TestWSChat(t *testing.T) {
	aborted := make(chan struct{})
	deps := fakeDeps(new(int))
	deps.Turns = chatterFunc(func(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
		if turn.Message == "wait" {
			_ = turn.Stream("waiting")
			<-ctx.Done()
			close(aborted)
			return nil, ctx.Err()
		}
		for _, p := range []string{"echo: ", turn.Message} {
			if err := turn.Stream(p); err != nil {
				return nil, err
			}
		}
		return &orchestrator.Reply{SessionID: "s-ws", Answer: "echo: " + turn.Message, Outcome: orchestrator.OutcomeAnswered}, nil
	})
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()

	for name, h := range map[string]http.Header{
		"another origin": func() http.Header {
			h := authHeader(testUser, testPass)
			h.Set("Origin", "http://evil.example")
			return h
		}(),
		"another port": func() http.Header {
			h := authHeader(testUser, testPass)
			h.Set("Origin", "http://127.0.0.1:1")
			return h
		}(),
		"no origin": authHeader(testUser, testPass),
		"cross-site fetch": func() http.Header {
			h := authHeader(testUser, testPass)
			h.Set("Origin", srv.URL)
			h.Set("Sec-Fetch-Site", "cross-site")
			return h
		}(),
		"no credentials":   func() http.Header { h := http.Header{}; h.Set("Origin", srv.URL); return h }(),
		"a wrong password": func() http.Header { h := authHeader(testUser, "nope"); h.Set("Origin", srv.URL); return h }(),
	} {
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(srv), h)
		if err == nil {
			c.Close()
			t.Errorf("%s: the WebSocket was accepted", name)
			continue
		}
		want := http.StatusForbidden
		if strings.Contains(name, "credentials") || strings.Contains(name, "password") {
			want = http.StatusUnauthorized
		}
		if resp == nil || resp.StatusCode != want {
			t.Errorf("%s: %v, want HTTP %d", name, resp, want)
		}
	}

	h := authHeader(testUser, testPass)
	h.Set("Origin", srv.URL)
	c, _, err := websocket.DefaultDialer.Dial(wsURL(srv), h)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	read := func() WSEvent {
		t.Helper()
		var ev WSEvent
		if err := c.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"chat","message":"hi `+strings.ReplaceAll(xss, `"`, `\"`)+`"}`)); err != nil {
		t.Fatal(err)
	}
	var text string
	for {
		ev := read()
		if ev.Type == WSToken {
			text += ev.Text
			continue
		}
		if ev.Type != WSDone || ev.Reply == nil || ev.Reply.SessionID != "s-ws" {
			t.Fatalf("final event %+v", ev)
		}
		break
	}
	if text != "echo: hi "+xss {
		t.Errorf("streamed %q", text)
	}
	// The next message may follow the "done" at once: the turn is over.
	for i := range 20 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"chat","message":"again"}`)); err != nil {
			t.Fatal(err)
		}
		for ev := read(); ev.Type != WSDone; ev = read() {
			if ev.Type != WSToken {
				t.Fatalf("message %d sent on the previous one's done: %+v", i+1, ev)
			}
		}
	}
	// A bad frame gets an error naming the problem; the connection stays.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"shout"}`))
	if ev := read(); ev.Type != WSError || !strings.Contains(ev.Error, `field type is "shout"`) {
		t.Errorf("bad frame: %+v", ev)
	}
	// Abort.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"chat","message":"wait"}`))
	if ev := read(); ev.Type != WSToken || ev.Text != "waiting" {
		t.Fatalf("first token %+v", ev)
	}
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"abort"}`))
	if ev := read(); ev.Type != WSError || ev.Error != "aborted" {
		t.Errorf("after abort: %+v", ev)
	}
	select {
	case <-aborted:
	case <-time.After(30 * time.Second):
		t.Fatal("the turn never saw the abort")
	}
}

func TestDecodeWSMessage(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"chat","message":"hi"}`:                  "",
		`{"type":"chat","message":"hi","session_id":"s"}`: "",
		`{"type":"abort"}`:                                "",
		`{"type":"chat"}`:                                 "field message is empty",
		`{"type":"abort","message":"x"}`:                  "an abort carries no message",
		`{"type":1,"message":2,"x":3}`:                    `field "x" is unknown: allowed fields are type, session_id and message; field message is 2: it must be a string; field type is "": allowed types are chat and abort; field type is 1: it must be a string`,
		`[1]`:                                             "not a JSON object",
		`{"type":"abort"} {}`:                             "more than one JSON value",
		"{\"type\":\"chat\",\"message\":\"\xff\"}":        "not valid UTF-8",
		`{"type":"chat\u0000<script>","message":"x"}`:     `field type is "chat\x00<script>"`,
	} {
		_, err := DecodeWSMessage([]byte(in))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", in, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want it to contain %q", in, err, want)
		}
	}
	if _, err := DecodeWSMessage([]byte(`{"type":"chat","message":"` + strings.Repeat("a", MaxWSMessageBytes) + `"}`)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized: %v", err)
	}
}

// The vendored Chart.js is the npm release it says it is, with its licence.
func TestVendoredChartJS(t *testing.T) {
	b, err := staticFiles.ReadFile("static/vendor/chartjs/chart.umd.min.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2" {
		t.Errorf("chart.umd.min.js sha256 %s: not the file of chart.js@4.6.1 (update README.md and this test together)", got)
	}
	if !strings.Contains(string(b[:200]), "Chart.js v4.6.1") {
		t.Error("chart.umd.min.js does not say it is v4.6.1")
	}
	lic, err := staticFiles.ReadFile("static/vendor/chartjs/LICENSE.md")
	if err != nil || !strings.Contains(string(lic), "MIT") {
		t.Errorf("licence: %v", err)
	}
}

// A page following the live logs and an open chat WebSocket do not hold
// the shutdown up: when Serve's context ends both end, and Serve's
// graceful shutdown finds no request left (it returns nil, not a
// deadline error).
func TestServeEndsStreams(t *testing.T) {
	deps, _, _, _ := viewDeps(t)
	deps.Turns = chatterFunc(func(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()

	req, _ := http.NewRequest(http.MethodGet, base+LogsStreamPath, nil)
	req.SetBasicAuth(testUser, testPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := authHeader(testUser, testPass)
	h.Set("Origin", base)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+WSChatPath, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteJSON(WSMessage{Type: WSChat, Message: "wait forever"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("log stream: %v", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("the WebSocket stayed open after the dashboard stopped")
			}
			break
		}
	}
}
