package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/talos-ironclad/talos/internal/dashboard"
)

// auditSays reports whether a tier-1 file under home holds s.
func auditSays(t *testing.T, home, s string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(home, "logs", "tier1", "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

// checkDaemonViews checks the dashboard's views on a running `talos run`:
// each is backed by the daemon's real piece, not a placeholder.
func checkDaemonViews(t *testing.T, do func(method, path, body, pw string, hdr map[string]string) (*http.Response, string), pass, web, csrf string) {
	t.Helper()
	getJSON := func(path string, v any) {
		t.Helper()
		resp, body := do("GET", path, "", pass, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s: %v %s", path, err, body)
		}
	}
	var mv dashboard.MetricsView
	getJSON(dashboard.MetricsPath, &mv)
	have := map[string]bool{}
	for _, s := range mv.Samples {
		have[s.Name] = true
	}
	if mv.MetricsError != "" || mv.Health.Error != "" || !have["process_resident_memory_bytes"] || !have["go_goroutines"] || !have["talos_health_status"] {
		t.Errorf("metrics: error %q, health %q, %d samples", mv.MetricsError, mv.Health.Error, len(mv.Samples))
	}
	var sv dashboard.SecurityView
	getJSON(dashboard.SecurityPath, &sv)
	if sv.Lockdown.Error != "" || sv.Lockdown.Locked || sv.DecisionsError != "" || sv.ProxyDenialsError != "" || sv.MCPError != "" || sv.PromotionsError != "" || sv.StrikesError != "" {
		t.Errorf("security %+v", sv)
	}
	var tv dashboard.TokensView
	getJSON(dashboard.TokensPath, &tv)
	if tv.Error != "" || len(tv.Rows) == 0 || tv.Today == "" || tv.DailyTotal == 0 || tv.Source == "" {
		t.Errorf("tokens after a chat turn: %+v", tv)
	}
	var dv dashboard.DreamsView
	getJSON(dashboard.DreamsPath, &dv)
	if dv.Error != "" {
		t.Errorf("dreams %+v", dv)
	}
	var mem dashboard.MemoryView
	getJSON(dashboard.MemoryPath, &mem)
	if mem.Error != "" || mem.Stats == nil || mem.Stats.Ceiling == 0 {
		t.Errorf("memory %+v", mem)
	}
	var hits dashboard.SearchView
	getJSON(dashboard.MemorySearchPath+"?q=hello", &hits)
	if hits.Error != "" {
		t.Errorf("memory search %+v", hits)
	}
	resp, body := do("POST", dashboard.MemoryRestorePath, `{"run":""}`, pass,
		map[string]string{"Content-Type": "application/json", dashboard.CSRFHeader: csrf, "Origin": "http://" + web})
	if resp.StatusCode != 200 || !strings.Contains(body, "nothing to restore") {
		t.Errorf("memory restore: %d %s", resp.StatusCode, body)
	}

	// The live logs carry the daemon's own lines (the boot's, at least).
	req, _ := http.NewRequest("GET", "http://"+web+dashboard.LogsStreamPath, nil)
	req.SetBasicAuth("admin", pass)
	c := &http.Client{Timeout: 30 * time.Second}
	lresp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(lresp.Body)
	var first dashboard.LogLine
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			_ = json.Unmarshal([]byte(d), &first)
			break
		}
	}
	lresp.Body.Close()
	if first.Seq == 0 || first.Msg == "" {
		t.Errorf("first log line %+v (%v)", first, sc.Err())
	}

	// The WebSocket chat runs a turn through the agent.
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+pass)))
	h.Set("Origin", "http://"+web)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+web+dashboard.WSChatPath, h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	if err := ws.WriteJSON(dashboard.WSMessage{Type: dashboard.WSChat, Message: "hello over the socket"}); err != nil {
		t.Fatal(err)
	}
	for {
		var ev dashboard.WSEvent
		if err := ws.ReadJSON(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == dashboard.WSToken {
			continue
		}
		if ev.Type != dashboard.WSDone || ev.Reply == nil || !strings.Contains(ev.Reply.Answer, "Hello from the dashboard's model.") {
			t.Fatalf("WebSocket turn: %+v", ev)
		}
		break
	}
	h.Set("Origin", "http://evil.example")
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+web+dashboard.WSChatPath, h); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("WebSocket from another origin: %v", err)
	}
}
