package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/dashboard/dashboardtest"
)

// In a real Chromium against a real `talos run` (embedded defaults, the
// local model answering through Ollama's API): the operator logs in; the
// live view's chart gains points from the daemon's own metrics every
// second; the logs view holds the daemon's boot lines and shows a refused
// login as it happens; a chat turn streams the model's answer, which
// carries a script payload, as text; the security view reads the agent's
// lockdown.
func TestRunDashboardInChromium(t *testing.T) {
	home := initHome(t)
	addr, web := freeAddr(t), freeAddr(t)
	_, port, _ := net.SplitHostPort(web)
	pass := envValue(t, home, "BASIC_AUTH_PASS")
	answer := "Hello from the model " + dashboardtest.XSS
	ollama := fakeOllamaServer(t, answer)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, errOut, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr, "--set", "TALOS_OLLAMA_URL="+ollama, "--set", "WEB_PORT="+port)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, errOut)
		}
		done <- err
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 10*time.Second)
	for i := 0; ; i++ { // the dashboard starts listening just after the marker
		c, err := net.Dial("tcp", web)
		if err == nil {
			c.Close()
			break
		}
		if i == 250 {
			t.Fatalf("the dashboard does not listen on %s: %v", web, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := "http://" + web
	b, challenges := dashboardtest.Browser(t, "admin", pass)
	run := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		dashboardtest.Run(t, b, what, a)
	}
	text := func(sel string) string {
		t.Helper()
		return dashboardtest.Run(t, b, "read "+sel, chromedp.Evaluate[string](`(document.querySelector(`+dashboardtest.JSString(sel)+`) || {textContent: "<missing>"}).textContent`))
	}

	// Live metrics from the daemon's registry.
	start := time.Now()
	run("open the live view", chromedp.Navigate(base+"/live"))
	run("wait for the health checks", chromedp.Poll[chromedp.Void](`document.querySelectorAll("#live-checks tbody tr").length > 3`))
	fcp := dashboardtest.Run(t, b, "read the first paint", chromedp.Evaluate[float64](`(performance.getEntriesByName("first-contentful-paint")[0] || {startTime: -1}).startTime`))
	t.Logf("talos run, live view: first contentful paint %.0f ms, health in the page %s after the navigation began", fcp, time.Since(start).Round(time.Millisecond))
	if challenges() == 0 {
		t.Error("the browser was never asked to log in")
	}
	const points = `(function(){ const c = window.Chart && Chart.getChart(document.getElementById("metrics-chart")); return c ? c.data.datasets[0].data.filter(function (x) { return x > 0; }).length : -1; })()`
	run("wait for a point", chromedp.Poll[chromedp.Void](points+` >= 1`))
	n := dashboardtest.Run(t, b, "count the points", chromedp.Evaluate[int](points))
	run("wait for two more points", chromedp.Poll[chromedp.Void](points+` >= `+strconv.Itoa(n+2)))
	if got := text("#metrics-error"); got != "" {
		t.Errorf("metrics error %q", got)
	}
	dashboardtest.CheckNoInjection(t, b, "live")
	dashboardtest.Screenshot(t, b, "daemon-live")

	// Logs: the boot's lines are there; a refused login arrives live.
	run("open the logs", chromedp.Navigate(base+"/logs"))
	run("wait for the boot's lines", chromedp.Poll[chromedp.Void](`document.getElementById("logs-status").textContent === "live" && document.querySelectorAll("#log-lines tbody tr").length > 0`))
	req, _ := http.NewRequest("GET", base+"/", nil)
	req.SetBasicAuth("admin", "not-the-password-"+strings.Repeat("x", 4))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("wrong password: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	run("wait for the refused login", chromedp.Poll[chromedp.Void](`document.querySelector("#log-lines tbody tr td:nth-child(4)").textContent === "dashboard login refused: wrong user or password"`))
	if got := text("#log-lines tbody tr td:nth-child(3)"); got != "WARN" {
		t.Errorf("refused login's level %q", got)
	}
	dashboardtest.Screenshot(t, b, "daemon-logs")

	// Chat through the agent.
	run("open the chat", chromedp.Navigate(base+"/chat"))
	run("wait for the form", chromedp.Poll[chromedp.Void](`document.getElementById("chat-input") !== null`))
	run("send", chromedp.Evaluate[chromedp.Void](`document.getElementById("chat-input").value = "Say hello."; document.getElementById("chat-send").click()`))
	run("wait for the answer", chromedp.Poll[chromedp.Void](`document.querySelector(".msg-talos .meta") !== null`))
	if got := text(".msg-talos .text"); got != answer {
		t.Errorf("answer %q, want %q", got, answer)
	}
	dashboardtest.CheckNoInjection(t, b, "chat")
	dashboardtest.Screenshot(t, b, "daemon-chat")

	// Security: the agent's lockdown and the not-wired proxy denials.
	run("open the security view", chromedp.Navigate(base+"/security"))
	run("wait for the lockdown", chromedp.Poll[chromedp.Void](`document.getElementById("lockdown-state").textContent !== ""`))
	if got := text("#lockdown-state"); got != "Not locked: chat turns are accepted." {
		t.Errorf("lockdown %q", got)
	}
	dashboardtest.Screenshot(t, b, "daemon-security")

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
