package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/dashboard"
	"github.com/talos-ironclad/talos/internal/genesis"
)

// `talos run` serves the dashboard on WEB_BIND_ADDRESS:WEB_PORT behind the
// operator's credentials: the overview lists the daemon's health checks,
// the agent's adapters and the maintenance schedule, the skills page the
// quarantine records, and the chat answers through the agent, but only to
// the dashboard's own origin.
func TestRunServesTheDashboard(t *testing.T) {
	home := initHome(t)
	src := writeSkill(t, filepath.Join(t.TempDir(), "hello"), "1.0.0", "print('hello')\n")
	if out, _, err := talosCmd(context.Background(), "skill", "add", src, "--home", home); err != nil {
		t.Fatalf("skill add: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	web := freeAddr(t)
	_, port, _ := net.SplitHostPort(web)
	pass := envValue(t, home, "BASIC_AUTH_PASS")
	ollama := fakeOllamaServer(t, "Hello from the dashboard's model.")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr, "--set", "TALOS_OLLAMA_URL="+ollama, "--set", "WEB_PORT="+port)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, errOut)
		}
		done <- result{out, err}
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 10*time.Second)

	do := func(method, path, body, pw string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+web+path, strings.NewReader(body))
		if pw != "" {
			req.SetBasicAuth("admin", pw)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		var err error
		for range 100 { // the dashboard starts listening just after the marker
			if resp, err = http.DefaultClient.Do(req); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := do("GET", "/", "", "", nil); resp.StatusCode != 401 {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	if resp, _ := do("GET", "/", "", "wrong-password-123", nil); resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ := do("GET", "/", "", pass, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != dashboard.CSP {
		t.Fatalf("overview page: %d %v", resp.StatusCode, resp.Header)
	}

	_, body := do("GET", dashboard.OverviewPath, "", pass, nil)
	var ov dashboard.Overview
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	names := map[string]bool{}
	for _, c := range ov.Health.Checks {
		names[c.Name] = true
	}
	if ov.Health.Error != "" || !names["agent"] || !names["redis"] || !names["dream"] {
		t.Errorf("health %+v", ov.Health)
	}
	roles := map[string]string{}
	for _, a := range ov.Adapters.List {
		roles[a.Role] = a.Name
	}
	if ov.Adapters.Error != "" || roles["local-model"] != "ollama" {
		t.Errorf("adapters %+v", ov.Adapters)
	}
	if ov.Maintenance.Error != "" || !strings.Contains(ov.Maintenance.Summary, "next cycle") {
		t.Errorf("maintenance %+v", ov.Maintenance)
	}

	_, body = do("GET", dashboard.SkillsPath, "", pass, nil)
	var sv dashboard.SkillsView
	// The genesis skills are admitted at boot; the added one is beside them.
	if err := json.Unmarshal([]byte(body), &sv); err != nil || sv.Error != "" || len(sv.Records) != len(genesis.ReservedIDs())+1 {
		t.Fatalf("skills %v %s", err, body)
	}
	var user []dashboard.SkillView
	for _, r := range sv.Records {
		if r.ID == "hello_world" {
			user = append(user, r)
		}
	}
	if len(user) != 1 {
		t.Fatalf("skills: %d hello_world records", len(user))
	}
	if r := user[0]; r.ID != "hello_world" || r.Version != "1.0.0" || r.State != "pending" || r.Strikes == nil || *r.Strikes != 0 || r.StrikesError != "" {
		t.Errorf("skill record %+v", r)
	}

	_, body = do("GET", dashboard.SessionPath, "", pass, nil)
	var sess dashboard.Session
	if err := json.Unmarshal([]byte(body), &sess); err != nil || sess.CSRF == "" {
		t.Fatalf("session %v %s", err, body)
	}
	chat := map[string]string{"Content-Type": "application/json", "Accept": "text/event-stream", dashboard.CSRFHeader: sess.CSRF}
	chat["Origin"] = "http://evil.example"
	if resp, body := do("POST", dashboard.ChatPath, `{"message":"hi"}`, pass, chat); resp.StatusCode != 403 {
		t.Fatalf("cross-origin chat: %d %s", resp.StatusCode, body)
	}
	chat["Origin"] = "http://" + web
	chat["Sec-Fetch-Site"] = "same-origin"
	resp, body = do("POST", dashboard.ChatPath, `{"message":"hi"}`, pass, chat)
	events, err := chatapi.ReadEvents(strings.NewReader(body))
	if resp.StatusCode != 200 || err != nil || len(events) < 2 || events[len(events)-1].Name != chatapi.EventDone ||
		!strings.Contains(string(events[len(events)-1].Data), "Hello from the dashboard's model.") {
		t.Fatalf("chat: %d %v %s", resp.StatusCode, err, body)
	}

	checkDaemonViews(t, do, pass, web, sess.CSRF)

	// The kill switch stops the daemon through the panic path.
	if resp, body := do("POST", dashboard.PanicPath, `{"reason":"dashboard test","confirm":"STOP"}`, pass,
		map[string]string{"Content-Type": "application/json", dashboard.CSRFHeader: sess.CSRF, "Origin": "http://" + web}); resp.StatusCode != 202 {
		t.Fatalf("kill switch: %d %s", resp.StatusCode, body)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop after the kill switch")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := "dashboard: http://" + web + "/"; !strings.Contains(r.out, want) {
		t.Errorf("output does not say %q:\n%s", want, r.out)
	}
	if want := "panic requested by operator:dashboard: dashboard test"; !strings.Contains(r.out, want) {
		t.Errorf("output does not say %q:\n%s", want, r.out)
	}
	if !auditSays(t, home, `"initiated_by":"operator:dashboard"`) {
		t.Errorf("no panic audit line from the dashboard in tier 1")
	}
}

// A dashboard address off loopback stops `talos run` before it boots,
// naming WEB_BIND_ADDRESS.
func TestRunRefusesANonLoopbackDashboard(t *testing.T) {
	home := initHome(t)
	_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", freeAddr(t), "--set", "WEB_BIND_ADDRESS=0.0.0.0")
	if exitCode(err) != exitRunConfigFailed || !strings.Contains(err.Error(), "WEB_BIND_ADDRESS") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err %v (exit %d)", err, exitCode(err))
	}
}
