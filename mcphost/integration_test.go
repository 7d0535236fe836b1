package mcphost_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	}, hostDeps{Auditor: audit})
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

// TestServerFilesystem runs @modelcontextprotocol/server-filesystem over
// stdio with one allowed root: list, read and write inside it work, a path
// outside is refused by the server (and reported as its error), and a
// private key in a file never reaches the caller.
func TestServerFilesystem(t *testing.T) {
	bin := testenv.MCPFilesystem(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "notes.txt"), []byte("buy milk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "id_rsa"), []byte(testPrivateKey), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := &mcphosttest.Recorder{}
	h := startHost(t, mcphost.Config{
		AllowedCommands: []string{filepath.Dir(real)},
		Servers:         []mcphost.ServerConfig{{Name: "fs", Command: bin, Args: []string{root}, TimeoutSeconds: 60, AutoStart: true}},
	}, hostDeps{Auditor: audit})
	ctx := context.Background()
	call := func(tool string, args map[string]any) *mcphost.Result {
		t.Helper()
		res, err := h.Call(ctx, "fs."+tool, args)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		return res
	}

	if res := call("list_directory", map[string]any{"path": root}); !strings.Contains(res.Text, "notes.txt") {
		t.Errorf("list: %q", res.Text)
	}
	if res := call("read_text_file", map[string]any{"path": filepath.Join(root, "notes.txt")}); res.Text != "buy milk" {
		t.Errorf("read: %q", res.Text)
	}
	if res := call("write_file", map[string]any{"path": filepath.Join(root, "new.txt"), "content": "written by talos"}); res.IsError {
		t.Errorf("write: %q", res.Text)
	}
	if b, err := os.ReadFile(filepath.Join(root, "new.txt")); err != nil || string(b) != "written by talos" {
		t.Errorf("the written file: %q %v", b, err)
	}
	res := call("read_text_file", map[string]any{"path": filepath.Join(root, "id_rsa")})
	if strings.Contains(res.Text, "PRIVATE KEY") || !strings.Contains(res.Text, "[REDACTED:private-key]") {
		t.Errorf("a private key came back: %q", res.Text)
	}
	if r := lastRecord(t, audit); len(r.ResultRedactions) != 1 || r.ResultRedactions[0].Kind != "private-key" {
		t.Errorf("audit: %+v", r)
	}
	// Outside the root: the server refuses (an isError result or an error).
	out, err := h.Call(ctx, "fs.read_text_file", map[string]any{"path": "/etc/passwd"})
	if err == nil && (!out.IsError || strings.Contains(out.Text, "root:")) {
		t.Errorf("a path outside the root was read: %+v", out)
	}
}

// TestServerEverythingOverStreamableHTTP starts the reference server in its
// streamable HTTP mode on a loopback port and reaches it by URL.
func TestServerEverythingOverStreamableHTTP(t *testing.T) {
	bin := testenv.MCPEverything(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	var out testenv.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Ready when it accepts connections (at most 20 s: node starting on a
	// loaded machine).
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything did not listen on %s:\n%s", addr, out.String())
		}
	}
	h := startHost(t, mcphost.Config{Servers: []mcphost.ServerConfig{{
		Name: "everything", URL: fmt.Sprintf("http://localhost:%d/mcp", port), TimeoutSeconds: 60, AutoStart: true,
	}}}, hostDeps{})
	res, err := h.Call(context.Background(), "everything.get-sum", map[string]any{"a": 20, "b": 22})
	if err != nil || !strings.Contains(res.Text, "42") {
		t.Fatalf("get-sum over HTTP: %v %+v", err, res)
	}
	if _, _, q := h.Pending("everything"); q {
		t.Error("quarantined")
	}
}
