package dashboardtest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"

	"github.com/talos-ironclad/talos/internal/testenv"
)

// XSS is a payload to put in every string a test serves: rendered as
// HTML it would add a script and an image to the page and set
// window.pwned, which CheckNoInjection finds.
const XSS = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`

// Browser starts a headless Chromium (testenv.Chromium) with a fresh
// profile (a temporary directory of chromedp's, which it removes once the
// browser's helper processes have let go of it) that answers every basic-auth challenge with user and pass, as
// an operator typing them into the login prompt (an empty user cancels
// the prompt). It returns the tab's
// context and the number of challenges answered so far.
func Browser(t *testing.T, user, pass string) (context.Context, func() int) {
	t.Helper()
	exe := testenv.Chromium(t)
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(exe),
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

// Run runs the action with a deadline and fails the test on error.
func Run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// Screenshot keeps a screenshot of the page as a test artifact.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := Run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// injected counts elements that data could have injected into a page's
// main element, and whether any injected script ran (set window.pwned).
const injected = `({els: document.querySelectorAll("main script, main img, main iframe, main [onerror]").length, pwned: window.pwned === undefined ? 0 : window.pwned})`

type injection struct {
	Els   int `json:"els"`
	Pwned int `json:"pwned"`
}

// CheckNoInjection fails the test when the page's main element holds an
// element that data could have injected (script, img, iframe, an onerror
// attribute) or when an injected script ran (it sets window.pwned, as XSS
// does).
func CheckNoInjection(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	got := Run(t, ctx, "injection check on "+page, chromedp.Evaluate[injection](injected))
	if got.Els != 0 || got.Pwned != 0 {
		t.Errorf("%s: data was rendered as HTML: %d injected elements, pwned=%d", page, got.Els, got.Pwned)
	}
}

// JSString quotes s as a JavaScript string literal.
func JSString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
