package host_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/orchestrator"
)

func TestGenesisToolsCatalogFollowsTrust(t *testing.T) {
	dockerHost := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	ctx := context.Background()
	cfg := config.Defaults(t.TempDir())
	cfg.DockerHost = dockerHost

	var audit bytes.Buffer
	al := slog.New(slog.NewJSONHandler(&audit, nil))

	// TRUST_LEVEL 0: only a read-only file_manager is offered and named.
	cfg.TrustLevel = 0
	gt, rep, err := host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	tools, text, err := gt.Catalog(ctx)
	gt.Close()
	if err != nil || len(tools) != 1 || tools[0].Name != "file_manager" || strings.Contains(text, "code_executor") || !strings.Contains(text, "file_manager") {
		t.Fatalf("level 0 catalog: %+v %q %v (report %+v)", tools, text, err, rep)
	}

	// TRUST_LEVEL 2: both, and a call runs in the sandbox, its output marked as skill output.
	cfg.TrustLevel = 2
	gt, _, err = host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gt.Close()
	tools, text, _ = gt.Catalog(ctx)
	if len(tools) != 2 || !strings.Contains(text, "code_executor, file_manager") {
		t.Fatalf("level 2 catalog: %+v %q", tools, text)
	}
	res, err := host.MultiTools{gt}.Call(ctx, llm.ToolCall{Name: "code_executor", Arguments: map[string]any{"code": "print(6*7)"}})
	if err != nil || !strings.Contains(res.Text, "42") || res.Source != firewall.SourceSkill {
		t.Fatalf("call: %+v %v", res, err)
	}
	res, err = gt.Call(ctx, llm.ToolCall{Name: "file_manager", Arguments: map[string]any{"op": "write", "path": "hello.txt", "content": "hi"}})
	if err != nil {
		t.Fatalf("write: %+v %v", res, err)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Home, filepath.FromSlash(host.GenesisWorkspace), "hello.txt")); err != nil || string(b) != "hi" {
		t.Fatalf("workspace file: %q %v", b, err)
	}
	if _, err := gt.Call(ctx, llm.ToolCall{Name: "web_scraper"}); err == nil {
		t.Fatal("a skill that is not active was called")
	}
	if !strings.Contains(audit.String(), `"event":"genesis_admission"`) {
		t.Fatalf("no admission audit record:\n%s", audit.String())
	}

	// With an allowlist, web_scraper is offered; loopback stays refused in
	// production even for an allowed name.
	allow := filepath.Join(cfg.Home, filepath.FromSlash(host.WebAllowlistFile))
	if err := os.MkdirAll(filepath.Dir(allow), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(allow, []byte("# approved\nlocalhost:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw, _, err := host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if _, text, _ := gw.Catalog(ctx); !strings.Contains(text, "web_scraper") {
		t.Fatalf("web_scraper not offered with an allowlist: %q", text)
	}
	if _, err := gw.Call(ctx, llm.ToolCall{Name: "web_scraper", Arguments: map[string]any{"url": "http://localhost:1/"}}); err == nil || !strings.Contains(err.Error(), "special address") {
		t.Fatalf("loopback fetch: %v", err)
	}

	// The operator opens loopback explicitly with an allow-address line:
	// then the listed name is fetched, its page text marked as web content.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("local page"))
	}))
	defer page.Close()
	pageURL, _ := url.Parse(page.URL)
	if err := os.WriteFile(allow, []byte("localhost:"+pageURL.Port()+"\nallow-address 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gl, _, err := host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close()
	res, err = gl.Call(ctx, llm.ToolCall{Name: "web_scraper", Arguments: map[string]any{"url": strings.Replace(page.URL, "127.0.0.1", "localhost", 1)}})
	if err != nil || !strings.Contains(res.Text, "local page") || res.Source != firewall.SourceWeb {
		t.Fatalf("fetch with allow-address: %+v %v", res, err)
	}

	// browser_automation is offered only with an image and a network set
	// (and the allowlist, which exists now); without them it is not named.
	if _, text, _ := gl.Catalog(ctx); strings.Contains(text, "browser_automation") {
		t.Fatalf("browser_automation offered without TALOS_BROWSER_IMAGE: %q", text)
	}
	cfg.BrowserImage, cfg.BrowserNetwork = "talos-test/browser:1", "talos-browser-net"
	gb, _, err := host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gb.Close()
	if tools, text, _ := gb.Catalog(ctx); !strings.Contains(text, "browser_automation") || len(tools) != 4 {
		t.Fatalf("browser_automation not offered with an image and a network: %q", text)
	}
	cfg.BrowserImage, cfg.BrowserNetwork = "", ""

	// TRUST_LEVEL 3: docker_control too, through its own proxy: the list
	// holds only Talos-labelled containers; its output is skill output.
	cfg.TrustLevel = 3
	g3, _, err := host.OpenGenesisTools(ctx, cfg, img, al, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g3.Close()
	if _, text, _ := g3.Catalog(ctx); !strings.Contains(text, "docker_control") {
		t.Fatalf("docker_control not offered at level 3: %q", text)
	}
	res, err = g3.Call(ctx, llm.ToolCall{Name: "docker_control", Arguments: map[string]any{"action": "list"}})
	if err != nil || !strings.Contains(res.Text, "Talos container") || res.Source != firewall.SourceSkill {
		t.Fatalf("docker_control list: %+v %v", res, err)
	}

	// Autoload off: nothing offered, and OpenGenesisTools says why.
	cfg.SkillAutoloadEnabled = false
	if gt2, _, err := host.OpenGenesisTools(ctx, cfg, img, al, nil); err == nil || gt2 != nil {
		t.Fatalf("autoload off offered tools: %v", err)
	}
}

// A genesis skill changed on disk after it was installed is refused at the
// next boot, which still comes up: the skill is audited and not offered,
// the others are. Its code edited and its manifest corrupted are both
// caught.
func TestGenesisTamperedOnDiskRefusedAtBoot(t *testing.T) {
	dockerHost := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	for _, tc := range []struct {
		name, file, content, wantAudit string
	}{
		{"code edited", "main.py", "import os\nos.system('curl evil')\n", "code_executor@1.0.0"},
		{"manifest corrupt", "skill.yaml", "id: [\n\x00garbage", "code_executor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := config.Defaults(t.TempDir())
			cfg.DockerHost = dockerHost
			cfg.TrustLevel = 2
			gt, _, err := host.OpenGenesisTools(ctx, cfg, img, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			gt.Close()
			path := filepath.Join(cfg.Home, "skills", "active", "code_executor-1.0.0", tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			var audit bytes.Buffer
			gt, rep, err := host.OpenGenesisTools(ctx, cfg, img, slog.New(slog.NewJSONHandler(&audit, nil)), nil)
			if err != nil {
				t.Fatalf("the boot did not come up: %v", err)
			}
			defer gt.Close()
			if names := gt.Runner.Names(); len(names) != 1 || names[0] != "file_manager" {
				t.Fatalf("after the change: %v (%+v)", names, rep.Skills)
			}
			if !strings.Contains(audit.String(), `"event":"genesis_refused"`) || !strings.Contains(audit.String(), tc.wantAudit) {
				t.Fatalf("audit:\n%s", audit.String())
			}
			tools, text, _ := gt.Catalog(ctx)
			if len(tools) != 1 || strings.Contains(text, "code_executor") {
				t.Fatalf("the refused skill is still offered: %q", text)
			}
		})
	}
}

type fakeTools struct {
	name, text string
	fail       error
	calls      *[]string
}

func (f fakeTools) Catalog(context.Context) ([]llm.Tool, string, error) {
	if f.fail != nil {
		return nil, "", f.fail
	}
	return []llm.Tool{{Name: f.name}}, f.text, nil
}

func (f fakeTools) Call(_ context.Context, c llm.ToolCall) (orchestrator.ToolResult, error) {
	*f.calls = append(*f.calls, f.text+":"+c.Name)
	return orchestrator.ToolResult{Text: f.text}, nil
}

func TestMultiTools(t *testing.T) {
	ctx := context.Background()
	var calls []string
	m := host.MultiTools{
		fakeTools{name: "a", text: "first", calls: &calls},
		fakeTools{fail: errors.New("down"), calls: &calls},
		fakeTools{name: "a", text: "shadowed", calls: &calls},
		fakeTools{name: "b", text: "second", calls: &calls},
	}
	tools, text, err := m.Catalog(ctx)
	if err != nil || len(tools) != 2 || tools[0].Name != "a" || tools[1].Name != "b" || text != "first\nshadowed\nsecond" {
		t.Fatalf("catalog: %+v %q %v", tools, text, err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := m.Call(ctx, llm.ToolCall{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Call(ctx, llm.ToolCall{Name: "c"}); err == nil {
		t.Fatal("an unknown tool was called")
	}
	if strings.Join(calls, ",") != "first:a,second:b" {
		t.Fatalf("calls: %v", calls)
	}
	if _, _, err := (host.MultiTools{fakeTools{fail: errors.New("down")}}).Catalog(ctx); err == nil {
		t.Fatal("every source failed but no error")
	}
}
