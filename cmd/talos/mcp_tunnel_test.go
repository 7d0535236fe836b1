package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

const tunnelMarker = "PLAINTEXT-OF-A-PRIVATE-PLAN-41c9"

// newIdentity runs `talos identity init` in a fresh home and returns the
// home and the peer ID `talos identity show --id` prints.
func newIdentity(t *testing.T, name string) (string, string) {
	t.Helper()
	home := initHome(t)
	ctx := context.Background()
	out, _, err := talosCmd(ctx, "identity", "init", "--name", name, "--home", home)
	if err != nil || !strings.Contains(out, "peer ID: tp1") {
		t.Fatalf("identity init: %v\n%s", err, out)
	}
	id, _, err := talosCmd(ctx, "identity", "show", "--id", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	return home, strings.TrimSpace(id)
}

func TestIdentityInitAndShow(t *testing.T) {
	home, peer := newIdentity(t, "Assistant/Workstation")
	ctx := context.Background()
	path := filepath.Join(home, host.IdentityFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	out, _, err := talosCmd(ctx, "identity", "show", "--home", home)
	if err != nil || !strings.Contains(out, "name: Assistant/Workstation") || !strings.Contains(out, "peer ID: "+peer) {
		t.Fatalf("show: %v\n%s", err, out)
	}
	// The private key appears in no output.
	key, _ := os.ReadFile(path)
	var kf map[string]any
	json.Unmarshal(key, &kf)
	for _, v := range kf {
		if s, ok := v.(string); ok && len(s) > 60 && strings.Contains(out, s) {
			t.Fatal("show printed key material")
		}
	}
	// A second init is refused; --force rotates the key.
	if _, _, err := talosCmd(ctx, "identity", "init", "--name", "x", "--home", home); exitCode(err) != exitIdentityBadArgs || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: %v", err)
	}
	if _, _, err := talosCmd(ctx, "identity", "init", "--name", "x", "--force", "--home", home); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := talosCmd(ctx, "identity", "show", "--id", "--home", home); strings.TrimSpace(out) == peer {
		t.Error("--force kept the old key")
	}
	// Bad names and a missing identity are explained.
	if _, _, err := talosCmd(ctx, "identity", "init", "--name", "a\x1bb", "--force", "--home", home); exitCode(err) != exitIdentityBadArgs || !strings.Contains(err.Error(), `\x1b`) {
		t.Errorf("a name with an escape: %v", err)
	}
	for _, bad := range []string{"a:b", " x", "é", strings.Repeat("n", 65)} {
		if _, _, err := talosCmd(ctx, "identity", "init", "--name", bad, "--force", "--home", home); exitCode(err) != exitIdentityBadArgs || !strings.Contains(err.Error(), "--name") {
			t.Errorf("name %q: %v, want exit %d naming --name", bad, err, exitIdentityBadArgs)
		}
	}
	if _, _, err := talosCmd(ctx, "identity", "show", "--home", initHome(t)); err == nil || !strings.Contains(err.Error(), "talos identity init") {
		t.Errorf("no identity: %v", err)
	}
	// Someone opened the key file up: refused.
	os.Chmod(path, 0o644)
	if _, _, err := talosCmd(ctx, "identity", "show", "--home", home); err == nil {
		t.Error("a key file readable by others was used")
	}
}

// relay is a recording TCP relay: every byte between `mcp connect` and
// `mcp serve` passes through it and is kept.
type relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	buf    bytes.Buffer
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.pipe(c)
		}
	}()
	return r
}

func (r *relay) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *relay) pipe(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(io.MultiWriter(s, r), c); s.Close() }()
	_, _ = io.Copy(io.MultiWriter(c, r), s)
}

func (r *relay) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// startServe runs `talos mcp serve` as its own process and returns the
// address it listens on.
func startServe(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TALOS_HELPER_ARGS="+strings.Join(append([]string{"mcp", "serve", "--addr", "127.0.0.1:0"}, args...), "\x1f"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		stop()
		t.Fatalf("mcp serve did not start: %q %v\n%s", line, err, stderr.String())
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), cmd
}

// TestMCPDesktopClientThroughServeAndConnect is the desktop flow (a desktop MCP client reaching a peer's tools)
// with real processes: an mcp-go client runs `talos mcp connect` as its
// stdio server, tunnelled through a recording relay to `talos mcp serve`
// fronting the real server-filesystem. It lists and reads a file; the
// capture never holds the plaintext; an unauthorised peer, a wrong key, an
// expired, a revoked and a replayed token are refused, a replay even after
// serve restarts; the decisions export as CSV and JSON.
func TestMCPDesktopClientThroughServeAndConnect(t *testing.T) {
	bin := testenv.MCPFilesystem(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "plan.txt"), []byte(tunnelMarker), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srvHome, srvPeer := newIdentity(t, "workstation")
	deskHome, deskPeer := newIdentity(t, "laptop")
	strangerHome, strangerPeer := newIdentity(t, "stranger")

	issue := func(to string) string {
		t.Helper()
		out, _, err := talosCmd(ctx, "mcp", "token", "issue", "--to", to, "--ttl", "1h", "--home", srvHome)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	tokenFile := func(tok string) string {
		f := filepath.Join(t.TempDir(), "peer.token")
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	good := tokenFile(issue(deskPeer))
	serveArgs := []string{"--home", srvHome, "--set", "TALOS_MCP_ALLOWED_COMMANDS=" + filepath.Dir(real),
		"--authorized-peer", deskPeer, "--name", "fs", "--command", bin + " '" + root + "'"}
	addr, serveProc := startServe(t, serveArgs...)
	rel := newRelay(t, addr)

	// The desktop client runs `talos mcp connect` as its stdio server.
	c, err := client.NewStdioMCPClient(os.Args[0], []string{"TALOS_HELPER_ARGS=" + strings.Join([]string{
		"mcp", "connect", srvPeer, "--addr", rel.ln.Addr().String(), "--token-file", good, "--home", deskHome}, "\x1f")})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(cctx, init); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTools(cctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) == 0 {
		t.Fatalf("tools: %v %+v", err, list)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fs.list_directory", map[string]any{"path": root}
	res, err := c.CallTool(cctx, req)
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "plan.txt") {
		t.Fatalf("list: %v %+v", err, res)
	}
	req.Params.Name, req.Params.Arguments = "fs.read_text_file", map[string]any{"path": filepath.Join(root, "plan.txt")}
	res, err = c.CallTool(cctx, req)
	if err != nil || res.IsError || res.Content[0].(mcp.TextContent).Text != tunnelMarker {
		t.Fatalf("read: %v %+v", err, res)
	}
	// A path outside the root is refused by the server, through the pipeline.
	req.Params.Arguments = map[string]any{"path": "/etc/hostname"}
	if res, err := c.CallTool(cctx, req); err == nil && !res.IsError {
		t.Errorf("a file outside the root was read: %+v", res)
	}
	_ = c.Close()
	captured := rel.bytes()
	if len(captured) < 1000 || bytes.Contains(captured, []byte(tunnelMarker)) || bytes.Contains(captured, []byte("plan.txt")) || bytes.Contains(captured, []byte("read_text_file")) {
		t.Fatalf("the loopback capture (%d bytes) shows plaintext", len(captured))
	}

	// A token that grants one tool: the client sees and calls only that one.
	out, _, err := talosCmd(ctx, "mcp", "token", "issue", "--to", deskPeer, "--scope", tunnel.ConnectAction, "--scope", gateway.ToolAction("fs.list_directory"), "--home", srvHome)
	if err != nil {
		t.Fatal(err)
	}
	c, err = client.NewStdioMCPClient(os.Args[0], []string{"TALOS_HELPER_ARGS=" + strings.Join([]string{
		"mcp", "connect", srvPeer, "--addr", addr, "--token-file", tokenFile(strings.TrimSpace(out)), "--home", deskHome}, "\x1f")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(cctx, init); err != nil {
		t.Fatal(err)
	}
	list, err = c.ListTools(cctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 1 || list.Tools[0].Name != "fs.list_directory" {
		t.Fatalf("tools of a one-tool token: %v %+v", err, list)
	}
	req.Params.Name, req.Params.Arguments = "fs.read_text_file", map[string]any{"path": filepath.Join(root, "plan.txt")}
	if res, err := c.CallTool(cctx, req); err == nil && !res.IsError {
		t.Errorf("a tool the token does not grant was called: %+v", res)
	}
	_ = c.Close()

	connect := func(home, peer, tokFile string) error {
		_, _, err := talosCmd(ctx, "mcp", "connect", peer, "--addr", addr, "--token-file", tokFile, "--home", home)
		return err
	}
	// An unauthorised peer (with a token the server itself issued it).
	if err := connect(strangerHome, srvPeer, tokenFile(issue(strangerPeer))); err == nil || !strings.Contains(err.Error(), "T400") {
		t.Errorf("an unauthorised peer: %v", err)
	}
	// The wrong key: the desktop expects another server key.
	if err := connect(deskHome, strangerPeer, good); err == nil || !strings.Contains(err.Error(), "not the authorized") {
		t.Errorf("a server with the wrong key: %v", err)
	}
	// An expired token, signed by the server's key in a bubble whose clock
	// is in the year 2000.
	srvID, err := gateway.LoadIdentity(filepath.Join(srvHome, host.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	var expired string
	synctest.Test(t, func(*testing.T) {
		expired, _ = gateway.Issue(srvID, gateway.PeerID(deskPeer), []string{tunnel.ConnectAction}, time.Hour)
	})
	if err := connect(deskHome, srvPeer, tokenFile(expired)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("an expired token: %v", err)
	}
	// A token revoked while serve runs.
	revoked := issue(deskPeer)
	if out, _, err := talosCmd(ctx, "mcp", "token", "revoke", revoked, "--home", srvHome); err != nil || !strings.Contains(out, "revoked token") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if err := connect(deskHome, srvPeer, tokenFile(revoked)); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked token: %v", err)
	}
	// A replayed hello: captured once, sent again after serve restarts.
	deskID, err := gateway.LoadIdentity(filepath.Join(deskHome, host.IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(good)
	hello, _ := gateway.NewRequest(deskID, strings.TrimSpace(string(b)), tunnel.ConnectAction)
	sendHello := func(addr string) error {
		conn, err := tunnel.Dial(ctx, addr, deskID, gateway.PeerID(srvPeer))
		if err != nil {
			return err
		}
		defer conn.Close()
		return tunnel.SendHello(ctx, conn, hello)
	}
	if err := sendHello(addr); err != nil {
		t.Fatal(err)
	}
	_ = serveProc.Process.Signal(syscall.SIGTERM)
	_ = serveProc.Wait()
	addr2, _ := startServe(t, serveArgs...)
	if err := sendHello(addr2); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("a hello replayed after a restart: %v", err)
	}
	addr = addr2
	if err := connect(deskHome, srvPeer, tokenFile(revoked)); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a token revoked before the restart: %v", err)
	}

	// The decisions export as CSV and JSON.
	out, _, err = talosCmd(ctx, "mcp", "audit", "export", "--format", "csv", "--home", srvHome)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 5 || rows[0][0] != "time" {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	allowed, refused := 0, 0
	for _, r := range rows[1:] {
		if r[4] == "true" {
			allowed++
		} else {
			refused++
		}
	}
	if allowed < 2 || refused < 3 {
		t.Errorf("csv: %d allowed, %d refused\n%s", allowed, refused, out)
	}
	out, _, err = talosCmd(ctx, "mcp", "audit", "export", "--format", "json", "--home", srvHome)
	var ds []gateway.Decision
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != len(rows)-1 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(ctx, "mcp", "audit", "export", "--format", "xml", "--home", srvHome); exitCode(err) != exitMCPBadArgs {
		t.Errorf("--format xml: %v", err)
	}
}

func TestMCPServeBadArguments(t *testing.T) {
	home, _ := newIdentity(t, "w")
	_, _, err := talosCmd(context.Background(), "mcp", "serve", "--home", home, "--authorized-peer", "nope\x1b", "--command", "node x.js | tee /tmp/x", "--addr", "nowhere")
	if exitCode(err) != exitMCPBadArgs {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"--authorized-peer", `\x1b`, "no shell runs", "--addr"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	// A command outside the allowlist is refused before anything listens.
	_, peer := newIdentity(t, "d")
	_, _, err = talosCmd(context.Background(), "mcp", "serve", "--home", home, "--authorized-peer", peer, "--command", "/bin/sh -c id", "--addr", "127.0.0.1:0")
	if exitCode(err) != exitMCPBadArgs || !strings.Contains(err.Error(), "/bin/sh") {
		t.Errorf("a command outside the allowlist: %v", err)
	}
	// A rate limit with --no-token would do nothing: refused.
	_, _, err = talosCmd(context.Background(), "mcp", "serve", "--home", home, "--authorized-peer", peer, "--command", "node x.js", "--addr", "127.0.0.1:0", "--no-token", "--burst", "3")
	if exitCode(err) != exitMCPBadArgs || !strings.Contains(err.Error(), "--no-token") {
		t.Errorf("--burst with --no-token: %v", err)
	}
}

func TestSplitCommandLine(t *testing.T) {
	for in, want := range map[string][]string{
		`/opt/fs /home/me`:             {"/opt/fs", "/home/me"},
		`/opt/fs '/my dir' "a b" c\ d`: {"/opt/fs", "/my dir", "a b", "c d"},
		`x '|' "$HOME"`:                {"x", "|", "$HOME"},
	} {
		got, err := splitCommandLine(in)
		if err != nil || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("%q = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "  ", "x 'open", "x; rm -rf /", "x $(id)", "a > b"} {
		if _, err := splitCommandLine(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// A served command whose tools changed since they were pinned is refused
// with the difference; --approve with the shown fingerprint serves it.
func TestMCPServeQuarantinesChangedTools(t *testing.T) {
	bin := testenv.MCPFilesystem(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	srvHome, _ := newIdentity(t, "workstation")
	_, deskPeer := newIdentity(t, "laptop")
	args := []string{"--home", srvHome, "--set", "TALOS_MCP_ALLOWED_COMMANDS=" + filepath.Dir(real),
		"--authorized-peer", deskPeer, "--name", "fs", "--command", bin + " " + t.TempDir()}
	_, proc := startServe(t, args...) // first contact pins the tools
	_ = proc.Process.Signal(syscall.SIGTERM)
	_ = proc.Wait()

	pinsPath := filepath.Join(srvHome, host.MCPServePinsFile)
	b, err := os.ReadFile(pinsPath)
	if err != nil {
		t.Fatal(err)
	}
	var pf map[string]any
	json.Unmarshal(b, &pf)
	for _, tools := range pf["pins"].(map[string]any) {
		tools.(map[string]any)["read_text_file"] = strings.Repeat("0", 64)
	}
	b, _ = json.Marshal(pf)
	os.WriteFile(pinsPath, b, 0o600)

	ctx := context.Background()
	serve := append([]string{"mcp", "serve", "--addr", "127.0.0.1:0"}, args...)
	_, stderr, err := talosCmd(ctx, serve...)
	fp := regexp.MustCompile(`--approve (\S+)`).FindStringSubmatch(stderr)
	if exitCode(err) != exitMCPFailed || fp == nil || !strings.Contains(stderr, "~ ") || !strings.Contains(err.Error(), "quarantined") {
		t.Fatalf("a changed server was served: %v\n%s", err, stderr)
	}
	if _, _, err := talosCmd(ctx, append(serve, "--approve", "not-it")...); exitCode(err) != exitMCPFailed {
		t.Errorf("a wrong fingerprint: %v", err)
	}
	startServe(t, append(args, "--approve", fp[1])...)
}
