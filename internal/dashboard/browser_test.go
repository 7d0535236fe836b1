package dashboard

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/testenv"
)

// browser starts a headless Chromium (testenv.Chromium) with a fresh
// profile that answers every basic-auth challenge with user and pass, as
// an operator typing them into the login prompt (an empty user cancels
// the prompt). It returns the tab's
// context and the number of challenges answered so far.
func browser(t *testing.T, user, pass string) (context.Context, func() int) {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)

	events := make(chan any, 256)
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev.(type) {
		case *fetch.EventAuthRequired, *fetch.EventRequestPaused:
			events <- ev
		}
	}); err != nil {
		t.Fatalf("starting Chromium %s: %v", exe, err)
	}
	challenges := make(chan int, 1)
	challenges <- 0
	go func() {
		for {
			var ev any
			select {
			case ev = <-events:
			case <-ctx.Done():
				return
			}
			switch e := ev.(type) {
			case *fetch.EventAuthRequired:
				n := <-challenges
				challenges <- n + 1
				resp := &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: pass}
				if user == "" {
					// An operator who does not know the credentials
					// cancels the login prompt.
					resp = &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseCancelAuth}
				}
				_, _ = chromedp.Call(ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: e.RequestID, AuthChallengeResponse: resp})
			case *fetch.EventRequestPaused:
				_, _ = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
			}
		}
	}()
	handle := true
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle}); err != nil {
		t.Fatalf("enabling request interception: %v", err)
	}
	return ctx, func() int { n := <-challenges; challenges <- n; return n }
}

// run runs the action with a deadline and fails the test on error.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot keeps a screenshot of the page as a test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// injected counts elements that data could have injected into the page,
// and whether any injected script ran.
const injected = `({els: document.querySelectorAll("main script, main img, main iframe, main [onerror]").length, pwned: window.pwned === undefined ? 0 : window.pwned})`

type injection struct {
	Els   int `json:"els"`
	Pwned int `json:"pwned"`
}

func checkNoInjection(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	got := run(t, ctx, "injection check on "+page, chromedp.Evaluate[injection](injected))
	if got.Els != 0 || got.Pwned != 0 {
		t.Errorf("%s: data was rendered as HTML: %d injected elements, pwned=%d", page, got.Els, got.Pwned)
	}
}

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

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
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
