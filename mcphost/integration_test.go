package mcphost_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/mcphosttest"
)

// TestServerEverything runs the reference server
// @modelcontextprotocol/server-everything (installed by scripts/services.sh)
// over stdio through the whole host.
func TestServerEverything(t *testing.T) {
	bin := testenv.MCPEverything(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TALOS_SECRET", "never-reaches-the-server-123")
	audit := &mcphosttest.Recorder{}
	h := startHost(t, mcphost.Config{
		AllowedCommands: []string{filepath.Dir(real)},
		Servers:         []mcphost.ServerConfig{{Name: "everything", Command: bin, TimeoutSeconds: 60}},
	}, mcphost.Deps{Auditor: audit})
	ctx := context.Background()
	cat := h.Catalog()
	var echo *mcphost.CatalogTool
	for i, tl := range cat.Tools {
		if tl.Name == "everything.echo" {
			echo = &cat.Tools[i]
		}
	}
	if echo == nil || strings.Join(echo.Params, ",") != "message" {
		t.Fatalf("everything.echo(message) missing from the catalog:\n%s", cat.Text())
	}
	if _, _, q := h.Pending("everything"); q {
		t.Fatal("the server's own list_changed after initialize quarantined it")
	}

	res, err := h.Call(ctx, "everything.echo", map[string]any{"message": "hello " + testAWSKey})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Text, "hello [REDACTED:aws-access-key]") {
		t.Errorf("echo answered %q", res.Text)
	}
	if rec := lastRecord(t, audit); !rec.Allowed || len(rec.ArgRedactions) != 1 || rec.Args[0].Name != "message" {
		t.Errorf("audit %+v", rec)
	}

	res, err = h.Call(ctx, "everything.get-env", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Text, "TALOS_SECRET") || strings.Contains(res.Text, "never-reaches") || !strings.Contains(res.Text, "PATH") {
		t.Errorf("the server's environment is not the allowlist:\n%s", res.Text)
	}

	calls, _ := mcphost.ParseTextCalls(`Sure. [USE_MCP: everything.get-sum {"a": 2, "b": 40}]`, 0)
	if len(calls) != 1 {
		t.Fatalf("parsed %+v", calls)
	}
	res, err = h.Call(ctx, calls[0].Name, calls[0].Args)
	if err != nil || !strings.Contains(res.Text, "42") {
		t.Fatalf("get-sum: %v %+v", err, res)
	}

	res, err = h.Call(ctx, "everything.get-tiny-image", nil)
	if err != nil || len(res.Content) == 0 {
		t.Fatalf("get-tiny-image: %v %+v", err, res)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
