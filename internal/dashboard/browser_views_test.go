package dashboard

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/talos-ironclad/talos/orchestrator"
)

// text reads the textContent of the first element matching sel.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return run(t, ctx, "read "+sel, chromedp.Evaluate[string](`(document.querySelector(`+jsString(sel)+`) || {textContent: "<missing>"}).textContent`))
}

// In a real Chromium, logged in: the live view's chart (the vendored
// Chart.js) gains a point every second from a real Prometheus registry;
// a log line logged while the logs view is open appears in it; the
// security, memory, tokens and dreams views render data carrying
// <script> and an onerror image as text; the unlock and the kill switch
// (after its typed confirmation) reach their sources with the CSRF token.
func TestBrowserViews(t *testing.T) {
	deps, panics, unlocks, logs := viewDeps(t)
	reg := prometheus.NewRegistry()
	calls := prometheus.NewCounter(prometheus.CounterOpts{Name: "talos_test_calls_total", Help: "test"})
	reg.MustRegister(calls, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gather := GatherMetrics(reg)
	deps.Metrics = func(ctx context.Context) ([]Metric, error) {
		calls.Inc()
		return gather(ctx)
	}
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	ctx, challenges := browser(t, testUser, testPass)

	// Health and live metrics.
	start := time.Now()
	run(t, ctx, "open the live view", chromedp.Navigate(srv.URL+"/live"))
	run(t, ctx, "wait for the health checks", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#live-checks tbody tr").length === 2`))
	fcp := run(t, ctx, "read the first paint", chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`))
	t.Logf("live view: first contentful paint %.0f ms, rendered with data %s after the navigation began", fcp, time.Since(start).Round(time.Millisecond))
	// The goal is < 1 s (docs/benchmarks.md); on a shared test machine only
	// a page that does not paint within 5 s fails.
	if fcp < 0 || fcp > 5000 {
		t.Errorf("first contentful paint %.0f ms, goal < 1000 ms", fcp)
	}
	if challenges() == 0 {
		t.Error("the browser was never asked to log in")
	}
	const points = `(function(){ const c = window.Chart && Chart.getChart(document.getElementById("metrics-chart")); return c ? c.data.labels.length : -1; })()`
	run(t, ctx, "wait for two points", chromedp.Poll[chromedp.Void](points+` >= 2`))
	n := run(t, ctx, "count the points", chromedp.Evaluate[int](points))
	run(t, ctx, "wait for the next two points", chromedp.Poll[chromedp.Void](points+` >= `+strconv.Itoa(n+2)))
	rss := run(t, ctx, "read the resident memory series", chromedp.Evaluate[[]float64](`Chart.getChart(document.getElementById("metrics-chart")).data.datasets[0].data.filter(function (x) { return x !== null; })`))
	if len(rss) < n+2 || rss[len(rss)-1] <= 0 {
		t.Errorf("resident memory series %v: want %d positive points", rss, n+2)
	}
	if got := text(t, ctx, "#metric-samples tbody td"); got != "talos_test_calls_total" {
		t.Errorf("first talos metric %q", got)
	}
	checkNoInjection(t, ctx, "live")
	screenshot(t, ctx, "live")

	// Live logs: a line logged now shows up, as text.
	run(t, ctx, "open the logs", chromedp.Navigate(srv.URL+"/logs"))
	run(t, ctx, "wait for the stream", chromedp.Poll[chromedp.Void](`document.getElementById("logs-status").textContent === "live"`))
	slog.New(logs).Warn("payload "+xss, "tool", "fetch"+xss)
	run(t, ctx, "wait for the line", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#log-lines tbody tr").length === 1`))
	if got := text(t, ctx, "#log-lines tbody td:nth-child(4)"); got != "payload "+xss {
		t.Errorf("log message %q", got)
	}
	if got := text(t, ctx, "#log-lines tbody td:nth-child(5)"); !strings.Contains(got, "<script>") {
		t.Errorf("log fields %q", got)
	}
	// The filter hides it; clearing it shows it again.
	run(t, ctx, "filter on ERROR", chromedp.Evaluate[chromedp.Void](`const s = document.getElementById("f-level"); s.value = "ERROR"; s.dispatchEvent(new Event("change"))`))
	if n := run(t, ctx, "count filtered rows", chromedp.Evaluate[int](`document.querySelectorAll("#log-lines tbody tr").length`)); n != 0 {
		t.Errorf("%d rows with level >= ERROR, want 0", n)
	}
	run(t, ctx, "filter on INFO", chromedp.Evaluate[chromedp.Void](`const s2 = document.getElementById("f-level"); s2.value = "INFO"; s2.dispatchEvent(new Event("change"))`))
	checkNoInjection(t, ctx, "logs")
	screenshot(t, ctx, "logs")

	// Security: lockdown, decisions, approvals, strikes, unlock, kill switch.
	run(t, ctx, "open the security view", chromedp.Navigate(srv.URL+"/security"))
	run(t, ctx, "wait for it", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#decisions tbody tr").length === 1`))
	if got := text(t, ctx, "#lockdown-state"); !strings.HasPrefix(got, "LOCKED since ") || !strings.Contains(got, "injection "+xss) {
		t.Errorf("lockdown %q", got)
	}
	if got := text(t, ctx, "#decisions tbody td:nth-child(4)"); got != "INJ-001"+xss {
		t.Errorf("decision rules %q", got)
	}
	for sel, want := range map[string]string{"#mcp tbody td": "files" + xss, "#promotions tbody td": "skill" + xss + "@1.0.0 #abababababab",
		"#strikes tbody td:nth-child(3)": "2", "#proxy tbody td:nth-child(3)": "GET /v1.47/secrets", "#proxy-error": ""} {
		if got := text(t, ctx, sel); got != want {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	run(t, ctx, "enter the unlock code", chromedp.Evaluate[chromedp.Void](`document.getElementById("unlock-code").value = "123456"; document.querySelector("#unlock-form button").click()`))
	run(t, ctx, "wait for the unlock", chromedp.Poll[chromedp.Void](`document.getElementById("unlock-result").textContent !== ""`))
	if got := text(t, ctx, "#unlock-result"); got != "unlocked" || unlocks.Load() != 1 {
		t.Errorf("unlock: %q, %d calls", got, unlocks.Load())
	}
	run(t, ctx, "open the kill switch", chromedp.Evaluate[chromedp.Void](`document.getElementById("kill-open").click()`))
	run(t, ctx, "confirm it wrongly", chromedp.Evaluate[chromedp.Void](`document.getElementById("kill-reason").value = "test stop"; document.getElementById("kill-confirm").value = "stop"; document.getElementById("kill-go").click()`))
	run(t, ctx, "wait for the refusal", chromedp.Poll[chromedp.Void](`document.getElementById("kill-result").textContent !== ""`))
	if got := text(t, ctx, "#kill-result"); !strings.Contains(got, "type STOP") || panics.Load() != 0 {
		t.Errorf("kill switch without its confirmation: %q, %d panics", got, panics.Load())
	}
	run(t, ctx, "confirm it", chromedp.Evaluate[chromedp.Void](`document.getElementById("kill-confirm").value = "STOP"; document.getElementById("kill-go").click()`))
	run(t, ctx, "wait for the kill switch", chromedp.Poll[chromedp.Void](`document.getElementById("kill-result").textContent.startsWith("stopping")`))
	if panics.Load() != 1 {
		t.Errorf("kill switch: %d panics, want 1", panics.Load())
	}
	checkNoInjection(t, ctx, "security")
	screenshot(t, ctx, "security")

	// Memory: a search whose hit carries the payload.
	run(t, ctx, "open the memory", chromedp.Navigate(srv.URL+"/memory"))
	run(t, ctx, "wait for the stats", chromedp.Poll[chromedp.Void](`document.getElementById("memory-stats").textContent !== ""`))
	run(t, ctx, "search", chromedp.Evaluate[chromedp.Void](`document.getElementById("search-q").value = `+jsString("cats "+xss)+`; document.querySelector("#search-form button").click()`))
	run(t, ctx, "wait for the hit", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#hits tbody tr").length === 1`))
	if got := text(t, ctx, "#hits tbody td:nth-child(5)"); got != "remembered cats "+xss+" "+xss {
		t.Errorf("memory hit %q", got)
	}
	checkNoInjection(t, ctx, "memory")
	screenshot(t, ctx, "memory")

	// Tokens and dreams.
	run(t, ctx, "open the tokens", chromedp.Navigate(srv.URL+"/tokens"))
	run(t, ctx, "wait for the rows", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#tokens tbody tr").length === 2`))
	if got := text(t, ctx, "#tokens tbody tr td:nth-child(2)"); got != "qwen"+xss {
		t.Errorf("tokens model %q", got)
	}
	if got := text(t, ctx, "#tokens tbody tr td:nth-child(5)"); got != "42" {
		t.Errorf("tokens total %q", got)
	}
	if got := text(t, ctx, "#tokens-summary"); got != "Today (2026-12-07, UTC): 42 of 100000 tokens; counted by this process only." {
		t.Errorf("tokens summary %q", got)
	}
	if got := text(t, ctx, "#tokens-note"); !strings.HasSuffix(got, "counts only"+xss) {
		t.Errorf("tokens note %q: the tracker's note must be shown as text", got)
	}
	checkNoInjection(t, ctx, "tokens")
	screenshot(t, ctx, "tokens")
	run(t, ctx, "open the dreams", chromedp.Navigate(srv.URL+"/dreams"))
	run(t, ctx, "wait for the report", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#dreams pre").length === 1`))
	if got := text(t, ctx, "#dreams pre"); got != "Dream cycle "+xss {
		t.Errorf("dream report %q", got)
	}
	checkNoInjection(t, ctx, "dreams")
	screenshot(t, ctx, "dreams")
}

// In a real Chromium: the dashboard's own page chats over /ws/chat; a page
// of another origin on the same machine opening the same WebSocket is
// refused before any turn runs; and a browser without the credentials
// (the login prompt cancelled) gets no page and no data.
func TestBrowserWebSocketAndLogin(t *testing.T) {
	var turns int
	deps := fakeDeps(new(int))
	deps.Turns = chatterFunc(func(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
		turns++
		_ = turn.Stream("echo: ")
		_ = turn.Stream(turn.Message)
		return &orchestrator.Reply{SessionID: "s-ws", Answer: "echo: " + turn.Message, Outcome: orchestrator.OutcomeAnswered}, nil
	})
	refusals := NewLogFeed(0)
	d, err := New(Config{User: testUser, Pass: testPass, Logger: slog.New(refusals)}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	wsJS := func(url string) string {
		return `new Promise(function (resolve) {
  let got = "";
  const ws = new WebSocket(` + jsString(url) + `);
  ws.onopen = function () { ws.send(JSON.stringify({type: "chat", message: "hi"})); };
  ws.onmessage = function (ev) { const m = JSON.parse(ev.data); if (m.type === "token") got += m.text; if (m.type === "done") { ws.close(); resolve("done: " + got); } };
  ws.onerror = function () { resolve("error"); };
  ws.onclose = function (ev) { resolve("closed " + ev.code); };
})`
	}
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + WSChatPath

	ctx, _ := browser(t, testUser, testPass)
	run(t, ctx, "log in", chromedp.Navigate(srv.URL+"/chat"))
	run(t, ctx, "wait for the page", chromedp.Poll[chromedp.Void](`document.getElementById("chat-input") !== null`))
	got := run(t, ctx, "chat over the WebSocket", chromedp.Evaluate[string](wsJS(wsURL), chromedp.EvalAwaitPromise))
	if got != "done: echo: hi" || turns != 1 {
		t.Fatalf("same-origin WebSocket: %q, %d turns", got, turns)
	}

	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!DOCTYPE html><title>evil</title>`)
	}))
	defer evil.Close()
	run(t, ctx, "open the other origin's page", chromedp.Navigate(evil.URL+"/"))
	got = run(t, ctx, "open the WebSocket from there", chromedp.Evaluate[string](wsJS(wsURL), chromedp.EvalAwaitPromise))
	if strings.HasPrefix(got, "done") || turns != 1 {
		t.Fatalf("cross-origin WebSocket: %q, %d turns", got, turns)
	}
	lines, _ := refusals.After(0)
	refused := 0
	for _, l := range lines {
		if strings.HasPrefix(l.Msg, "dashboard refused a WebSocket from another origin") && strings.Contains(l.Attrs, evil.URL[len("http://"):]) {
			refused++
		}
	}
	if refused != 1 {
		t.Errorf("the dashboard logged %d refused WebSockets from %s, want 1: %+v", refused, evil.URL, lines)
	}
	screenshot(t, ctx, "websocket-other-origin")

	// No credentials: the prompt is cancelled; the page shows the refusal
	// and no data.
	anon, challenges := browser(t, "", "")
	run(t, anon, "open the dashboard without credentials", chromedp.Navigate(srv.URL+"/security"))
	body := run(t, anon, "read the page", chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if !strings.Contains(body, "log in with the operator's credentials") || strings.Contains(body, "Lockdown") || challenges() == 0 {
		t.Errorf("without credentials: %d challenges, page %q", challenges(), body)
	}
	status := run(t, anon, "fetch data without credentials", chromedp.Evaluate[int](`fetch("/api/overview", {credentials: "omit"}).then(function (r) { return r.status; })`,
		chromedp.EvalAwaitPromise))
	if status != http.StatusUnauthorized {
		t.Errorf("data without credentials: HTTP %d, want 401", status)
	}
	screenshot(t, anon, "no-credentials")
}
