package chatapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/quarantine"
)

func TestSkillOperationsOverHTTP(t *testing.T) {
	const pass = "Str0ng!Passw0rd#2026"
	cfg, err := config.Load(config.LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		if k == "BASIC_AUTH_PASS" {
			return pass, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := host.OpenSkills(context.Background(), cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	open := func() (*host.Skills, error) { return sk, nil }
	src := filepath.Join(t.TempDir(), "s")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: hello_world\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.py"), []byte("print('<script>alert(1)</script>')\n"), 0o644)
	if _, err := sk.Quarantine.Add(context.Background(), src, quarantine.Source{Type: quarantine.SourceUser, Origin: "test"}, "user:test"); err != nil {
		t.Fatal(err)
	}
	hs, err := chatapi.NewSkillHandlers(chatapi.Config{User: "admin", Pass: pass}, open)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range hs {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code := func(method, path, body string, auth bool) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth {
			req.SetBasicAuth("admin", pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Errorf("%s %s: the answer is not JSON: %v", method, path, err)
		}
		return resp.StatusCode
	}
	if c := code("GET", chatapi.SkillsPath, "", false); c != 401 {
		t.Errorf("list without credentials: %d", c)
	}
	if c := code("GET", chatapi.SkillsPath, "", true); c != 200 {
		t.Errorf("list: %d", c)
	}
	if c := code("GET", chatapi.SkillPath+"?ref=hello_world", "", true); c != 200 {
		t.Errorf("show: %d", c)
	}
	if c := code("GET", chatapi.SkillPath+"?ref=nothing", "", true); c != 400 {
		t.Errorf("show of an unknown skill: %d", c)
	}
	if c := code("POST", chatapi.SkillScanPath, `{"ref":"hello_world"}`, true); c != 200 {
		t.Errorf("scan: %d", c)
	}
	if c := code("POST", chatapi.SkillRequestPath, `{"ref":"hello_world"}`, true); c != 403 {
		t.Errorf("request-promotion of an ineligible skill: %d", c)
	}
	if c := code("POST", chatapi.SkillRejectPath, `{"ref":"hello_world"}`, true); c != 400 {
		t.Errorf("reject without a reason: %d", c)
	}
	if c := code("POST", chatapi.SkillScanPath, `{"ref":"hello_world","extra":1}`, true); c != 400 {
		t.Errorf("unknown field: %d", c)
	}
	if c := code("GET", chatapi.SkillScanPath, "", true); c != 405 {
		t.Errorf("GET on a POST path: %d", c)
	}
	if c := code("POST", chatapi.SkillsPath, `{}`, true); c != 405 {
		t.Errorf("POST on a GET path: %d", c)
	}
	if c := code("GET", chatapi.SkillStrikesPath+"?ref=hello_world", "", true); c != 200 {
		t.Errorf("strikes: %d", c)
	}
	if c := code("GET", chatapi.SkillVerifyPath, "", true); c != 200 {
		t.Errorf("verify: %d", c)
	}
	src2 := filepath.Join(t.TempDir(), "s2")
	os.MkdirAll(src2, 0o755)
	os.WriteFile(filepath.Join(src2, "skill.yaml"), []byte("id: hello_world\nversion: 2.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(src2, "main.py"), []byte("print(2)\n"), 0o644)
	body, _ := json.Marshal(chatapi.SkillRequest{Dir: src2, Source: "imported"})
	if c := code("POST", chatapi.SkillAddPath, string(body), true); c != 200 {
		t.Errorf("add: %d", c)
	}
	if rec, err := sk.Resolve(context.Background(), "hello_world@2.0.0"); err != nil || rec.State != quarantine.StatePending || rec.Source.Type != quarantine.SourceImported {
		t.Errorf("added record %+v %v", rec, err)
	}
	if c := code("POST", chatapi.SkillAddPath, `{"dir":"/nonexistent/skill"}`, true); c != 400 {
		t.Errorf("add of a missing folder: %d", c)
	}
	if c := code("POST", chatapi.SkillAddPath, `{"dir":"`+src2+`","source":"friend"}`, true); c != 400 {
		t.Errorf("add with a bad source: %d", c)
	}
	if c := code("POST", chatapi.SkillAddPath, `{}`, true); c != 400 {
		t.Errorf("add without a dir: %d", c)
	}
	// Reject is for a requested promotion; here none is pending.
	if c := code("POST", chatapi.SkillRejectPath, `{"ref":"hello_world","reason":"not needed"}`, true); c != 403 {
		t.Errorf("reject without a pending request: %d", c)
	}
}

// TestSkillRunOverHTTP runs skills through the API on the harness's
// engine: a clean run counts, a crash earns a strike (still 200: the run
// happened), a skill that asks for a host the operator has not approved
// is refused before a container starts, and bad bodies are 400.
func TestSkillRunOverHTTP(t *testing.T) {
	const pass = "Str0ng!Passw0rd#2026"
	docker := testenv.DockerHost(t)
	image := testenv.PythonImage(t)
	cfg, err := config.Load(config.LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		switch k {
		case "BASIC_AUTH_PASS":
			return pass, true
		case "TALOS_DOCKER_HOST":
			return docker, true
		case "SANDBOX_TIMEOUT":
			return "20", true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sk, err := host.OpenSkills(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	add := func(version, code, caps string) {
		t.Helper()
		src := filepath.Join(t.TempDir(), "s")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: api_skill\nversion: "+version+"\nlanguage: python\nentry: main.py\n"+caps), 0o644)
		os.WriteFile(filepath.Join(src, "main.py"), []byte(code), 0o644)
		rec, err := sk.Quarantine.Add(ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "test"}, "user:test")
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := sk.Quarantine.Scan(ctx, rec.Key, "user:test"); err != nil {
			t.Fatal(err)
		}
	}
	add("1.0.0", "import sys\nprint('hi', *sys.argv[1:])\n", "")
	add("1.0.1", "raise ValueError('boom')\n", "")
	add("1.0.2", "print('x')\n", "capabilities:\n  network: [api.example.org]\n")
	add("1.0.3", "import time\ntime.sleep(3)\nprint('late')\n", "")
	hs, err := chatapi.NewSkillHandlers(chatapi.Config{User: "admin", Pass: pass, SkillImage: image}, func() (*host.Skills, error) { return sk, nil })
	if err != nil {
		t.Fatal(err)
	}
	// The daemon serves the API with a 10 s write timeout; a run may take
	// longer and must still be answered. This server's timeout is shorter
	// than the slow run below.
	mux := http.NewServeMux()
	mux.Handle(chatapi.SkillRunPath, hs[chatapi.SkillRunPath])
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = 2 * time.Second
	srv.Start()
	defer srv.Close()
	run := func(body string) (int, chatapi.SkillRunResponse, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+chatapi.SkillRunPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("admin", pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r chatapi.SkillRunResponse
		_ = json.Unmarshal(raw, &r)
		return resp.StatusCode, r, string(raw)
	}
	if st, r, raw := run(`{"ref":"api_skill@1.0.0","args":["there"]}`); st != 200 || !r.Verdict.Passed() || r.Stdout != "hi there\n" || r.Record.CleanRuns != 1 || r.Strike != nil {
		t.Errorf("clean run: %d %s", st, raw)
	}
	if st, r, raw := run(`{"ref":"api_skill@1.0.1"}`); st != 200 || r.Verdict.Passed() || r.Strike == nil || r.Strike.Strike.Number != 1 || r.Record.State != quarantine.StateFailed {
		t.Errorf("crashing run: %d %s", st, raw)
	}
	if st, r, raw := run(`{"ref":"api_skill@1.0.3"}`); st != 200 || r.Stdout != "late\n" {
		t.Errorf("a run longer than the server's write timeout: %d %s", st, raw)
	}
	if st, _, raw := run(`{"ref":"api_skill@1.0.2"}`); st != 403 || !strings.Contains(raw, "api.example.org") || !strings.Contains(raw, "web-allowlist.txt") {
		t.Errorf("unapproved network: %d %s", st, raw)
	}
	if st, _, raw := run(`{"ref":"api_skill@1.0.0","args":[` + strings.Repeat(`"a",`, 64) + `"a"]}`); st != 400 || !strings.Contains(raw, "at most 64") {
		t.Errorf("65 args: %d %s", st, raw)
	}
	if st, _, _ := run(`{"ref":"api_skill@1.0.0","args":"x"}`); st != 400 {
		t.Errorf("args not a list: %d", st)
	}
}
