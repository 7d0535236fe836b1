package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/dashboard/dashboardtest"
)

// browser, run, screenshot, checkNoInjection and jsString are the shared
// Chromium harness (dashboardtest) under the names these tests use.
func browser(t *testing.T, user, pass string) (context.Context, func() int) {
	t.Helper()
	return dashboardtest.Browser(t, user, pass)
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	return dashboardtest.Run(t, ctx, what, a)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dashboardtest.Screenshot(t, ctx, name)
}

func checkNoInjection(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	dashboardtest.CheckNoInjection(t, ctx, page)
}

func jsString(s string) string { return dashboardtest.JSString(s) }

// In a real Chromium: the operator logs in through the basic-auth
// challenge, the overview and the skills page render data carrying
// <script> and an onerror image as text, and a chat round trip streams an
// answer carrying the same payload, also as text.
func TestBrowserRendersDataAsText(t *testing.T) {
	hits := new(int)
	deps := fakeDeps(hits)
	deps.Chat = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req chatapi.Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "bad chat request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for _, part := range []string{"echo: ", req.Message} {
			b, _ := json.Marshal(chatapi.Token{Text: part})
			w.Write([]byte("event: token\ndata: " + string(b) + "\n\n"))
			f.Flush()
		}
		b, _ := json.Marshal(map[string]any{"session_id": "s-1", "answer": "echo: " + req.Message, "outcome": "answered", "model": "scripted",
			"tools": []map[string]any{{"name": "tool" + xss, "verdict": "allow", "rules": []string{"R" + xss}}}})
		w.Write([]byte("event: done\ndata: " + string(b) + "\n\n"))
	})
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	ctx, challenges := browser(t, testUser, testPass)

	// Overview.
	start := time.Now()
	run(t, ctx, "open the overview", chromedp.Navigate(srv.URL+"/"))
	run(t, ctx, "wait for the health checks", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#health-checks tbody tr").length === 2 && document.querySelectorAll("#adapters tbody tr").length === 1`))
	// First paint as Chromium measures it (docs/benchmarks.md: goal < 1 s).
	fcp := run(t, ctx, "read the first paint", chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`))
	t.Logf("overview: first contentful paint %.0f ms, rendered with data %s after the navigation began", fcp, time.Since(start).Round(time.Millisecond))
	if challenges() == 0 {
		t.Error("the browser was never asked to log in")
	}
	for sel, want := range map[string]string{
		"#health-checks tbody tr:nth-child(2) td:nth-child(3)": "redis at 127.0.0.1 " + xss,
		"#health-checks tbody tr:nth-child(1) td:nth-child(1)": "disk (critical)",
		"#adapters tbody td:nth-child(3)":                      "model " + xss,
		"#maintenance-summary":                                 "next cycle 2026-12-08 04:00 UTC " + xss,
		"#maintenance-problem":                                 "maintenance needs attention: vector_prune failed",
	} {
		got := run(t, ctx, "read "+sel, chromedp.Evaluate[string](`document.querySelector(`+jsString(sel)+`).textContent`))
		if got != want {
			t.Errorf("%s: text %q, want %q", sel, got, want)
		}
	}
	checkNoInjection(t, ctx, "overview")
	screenshot(t, ctx, "overview")

	// Skills.
	run(t, ctx, "open the skills", chromedp.Navigate(srv.URL+"/skills"))
	run(t, ctx, "wait for the records", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#skills tbody tr").length === 1`))
	cell := run(t, ctx, "read the skill", chromedp.Evaluate[string](`document.querySelector("#skills tbody td").textContent`))
	if !strings.HasPrefix(cell, "skill"+xss+"@1.0.0 #abababababab") {
		t.Errorf("skill cell %q", cell)
	}
	if n := run(t, ctx, "read the strikes", chromedp.Evaluate[string](`document.querySelector("#skills tbody td:nth-child(5)").textContent`)); n != "2" {
		t.Errorf("active strikes %q, want 2", n)
	}
	checkNoInjection(t, ctx, "skills")
	screenshot(t, ctx, "skills")

	// Chat: the message and the streamed answer carry the payload.
	run(t, ctx, "open the chat", chromedp.Navigate(srv.URL+"/chat"))
	run(t, ctx, "wait for the form", chromedp.Poll[chromedp.Void](`document.getElementById("chat-input") !== null`))
	run(t, ctx, "type", chromedp.Evaluate[chromedp.Void](`document.getElementById("chat-input").value = `+jsString("hello "+xss)+`; document.getElementById("chat-send").click()`))
	run(t, ctx, "wait for the answer", chromedp.Poll[chromedp.Void](`document.querySelector(".msg-talos .meta") !== null`))
	answer := run(t, ctx, "read the answer", chromedp.Evaluate[string](`document.querySelector(".msg-talos .text").textContent`))
	if answer != "echo: hello "+xss {
		t.Errorf("answer %q", answer)
	}
	meta := run(t, ctx, "read the turn's details", chromedp.Evaluate[string](`document.querySelector(".msg-talos .meta").textContent`))
	if !strings.Contains(meta, "tool tool"+xss+": allow [R"+xss+"]") || !strings.Contains(meta, "scripted") {
		t.Errorf("turn details %q", meta)
	}
	user := run(t, ctx, "read the message", chromedp.Evaluate[string](`document.querySelector(".msg-user .text").textContent`))
	if user != "hello "+xss {
		t.Errorf("user message %q", user)
	}
	session := run(t, ctx, "read the session", chromedp.Evaluate[string](`document.getElementById("chat-session").textContent`))
	if session != "session s-1" {
		t.Errorf("session %q", session)
	}
	checkNoInjection(t, ctx, "chat")
	screenshot(t, ctx, "chat")
}

// In a real Chromium, logged in to the dashboard: a page from another
// origin on the same machine (another port: same-site, not same-origin)
// that POSTs to the chat API with the browser's credentials is refused
// before the chat handler sees it.
func TestBrowserCrossOriginChatRefused(t *testing.T) {
	var chats, refused atomic.Int32
	deps := fakeDeps(new(int))
	deps.Chat = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chats.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		d.ServeHTTP(rec, r)
		if r.URL.Path == ChatPath && rec.status == http.StatusForbidden {
			refused.Add(1)
		}
	}))
	defer srv.Close()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!DOCTYPE html><title>evil</title><script>
fetch(`+jsString(srv.URL+ChatPath)+`, {method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body: '{"message":"exfiltrate"}'})
  .then(function () { document.title = "sent"; }, function (e) { document.title = "failed: " + e; });
</script>`)
	}))
	defer evil.Close()

	ctx, _ := browser(t, testUser, testPass)
	run(t, ctx, "log in to the dashboard", chromedp.Navigate(srv.URL+"/"))
	run(t, ctx, "wait for the overview", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#health-checks tbody tr").length === 2`))
	run(t, ctx, "open the other origin's page", chromedp.Navigate(evil.URL+"/"))
	// The answer is opaque to that page, or blocked outright by the
	// dashboard's Cross-Origin-Resource-Policy ("Failed to fetch"): either
	// way the request went out, and the server counted what it did.
	title := run(t, ctx, "wait for its request", chromedp.Poll[string](`document.title !== "evil" && document.title`))
	t.Logf("the other origin's page: %s", title)
	if refused.Load() != 1 || chats.Load() != 0 {
		t.Fatalf("cross-origin POST: %d refused, %d reached the chat handler; want 1 and 0", refused.Load(), chats.Load())
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// In a real Chromium: Abort on the chat page cancels the streaming
// request, the server's turn sees its context end, and the page says
// "aborted" after the text that had arrived.
func TestBrowserChatAbort(t *testing.T) {
	cancelled := make(chan struct{})
	deps := fakeDeps(new(int))
	deps.Chat = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		b, _ := json.Marshal(chatapi.Token{Text: "thinking about " + xss})
		w.Write([]byte("event: token\ndata: " + string(b) + "\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(time.Minute):
		}
	})
	d, err := New(Config{User: testUser, Pass: testPass}, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d)
	defer srv.Close()
	ctx, _ := browser(t, testUser, testPass)
	run(t, ctx, "open the chat", chromedp.Navigate(srv.URL+"/chat"))
	run(t, ctx, "wait for the form", chromedp.Poll[chromedp.Void](`document.getElementById("chat-input") !== null`))
	run(t, ctx, "send", chromedp.Evaluate[chromedp.Void](`document.getElementById("chat-input").value = "a long question"; document.getElementById("chat-send").click()`))
	run(t, ctx, "wait for the first token", chromedp.Poll[chromedp.Void](`document.querySelector(".msg-talos .text").textContent.length > 0 && !document.getElementById("chat-abort").disabled`))
	run(t, ctx, "abort", chromedp.Evaluate[chromedp.Void](`document.getElementById("chat-abort").click()`))
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the server's turn never saw the abort")
	}
	run(t, ctx, "wait for the aborted mark", chromedp.Poll[chromedp.Void](`document.querySelector(".msg-talos .meta") !== null`))
	meta := run(t, ctx, "read the mark", chromedp.Evaluate[string](`document.querySelector(".msg-talos .meta").textContent`))
	text := run(t, ctx, "read the partial answer", chromedp.Evaluate[string](`document.querySelector(".msg-talos .text").textContent`))
	if meta != "aborted" || text != "thinking about "+xss {
		t.Errorf("after abort: text %q, mark %q", text, meta)
	}
	if enabled := run(t, ctx, "read the send button", chromedp.Evaluate[bool](`!document.getElementById("chat-send").disabled`)); !enabled {
		t.Error("Send stays disabled after the abort")
	}
	checkNoInjection(t, ctx, "chat after abort")
	screenshot(t, ctx, "chat-aborted")
}
