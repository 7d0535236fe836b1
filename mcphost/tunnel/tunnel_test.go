package tunnel_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

const marker = "PLAINTEXT-OF-A-PRIVATE-FILE-7f3a"

// recorder keeps every byte that crosses the served side's sockets.
type recorder struct {
	net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, r: r}, nil
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

type recConn struct {
	net.Conn
	r *recorder
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

func (c *recConn) Write(p []byte) (int, error) {
	c.r.mu.Lock()
	c.r.buf.Write(p)
	c.r.mu.Unlock()
	return c.Conn.Write(p)
}

func ident(t *testing.T, name string) *gateway.Identity {
	t.Helper()
	id, err := gateway.NewIdentity(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serve starts `mcp serve` for authorized: a Host fronting a file server,
// its gateway served through the tunnel.
func serve(t *testing.T, srvID *gateway.Identity, authorized gateway.PeerID) (string, *recorder) {
	t.Helper()
	return serveB(t, srvID, authorized)
}

func serveB(t testing.TB, srvID *gateway.Identity, authorized gateway.PeerID) (string, *recorder) {
	t.Helper()
	files := server.NewMCPServer("files", "1", server.WithToolCapabilities(true))
	files.AddTool(mcp.NewTool("read", mcp.WithDescription("Read a file"), mcp.WithString("path", mcp.Required())),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(marker), nil
		})
	return serveHost(t, srvID, authorized, mcphost.Config{Servers: []mcphost.ServerConfig{{Name: "fs", InProcess: files, AutoStart: true}}})
}

// serveHost starts `mcp serve` for authorized: a Host built from cfg, its
// gateway served through the tunnel on a recorded loopback listener.
func serveHost(t testing.TB, srvID *gateway.Identity, authorized gateway.PeerID, cfg mcphost.Config) (string, *recorder) {
	t.Helper()
	return serveHostWith(t, srvID, authorized, cfg, tunnel.Options{})
}

// serveHostWith is serveHost with Options (a Verifier requires tokens).
func serveHostWith(t testing.TB, srvID *gateway.Identity, authorized gateway.PeerID, cfg mcphost.Config, opts tunnel.Options) (string, *recorder) {
	t.Helper()
	h, err := mcphost.New(cfg, nil, nil, nil, mcphost.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Listener: ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- tunnel.ServeWith(ctx, rec, srvID, authorized, gateway.NewServer(h, "talos", "1").MCPServer(), opts)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = h.Close()
	})
	return ln.Addr().String(), rec
}

// desktop is an mcp-go client that runs `mcp connect` (Dial + Bridge) as
// its stdio server.
func desktop(t *testing.T, addr string, me, srv *gateway.Identity) *client.Client {
	t.Helper()
	ctx := context.Background()
	conn, err := tunnel.Dial(ctx, addr, me, srv.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	toBridge, clientOut := io.Pipe()
	clientIn, fromBridge := io.Pipe()
	go func() { _ = tunnel.Bridge(ctx, conn, toBridge, fromBridge) }()
	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDesktopClientReadsAFileOfServerFilesystem is the README's tunnel: a
// desktop client, tunnelled to `mcp serve` fronting the real
// @modelcontextprotocol/server-filesystem, lists and reads a file; the
// loopback capture never holds the file's plaintext.
func TestDesktopClientReadsAFileOfServerFilesystem(t *testing.T) {
	bin := testenv.MCPFilesystem(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "plan.txt"), []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	srvID, me := ident(t, "server"), ident(t, "desktop")
	addr, rec := serveHost(t, srvID, me.PeerID(), mcphost.Config{
		AllowedCommands: []string{filepath.Dir(real)},
		Servers:         []mcphost.ServerConfig{{Name: "fs", Command: bin, Args: []string{root}, TimeoutSeconds: 60, AutoStart: true}},
	})
	c := desktop(t, addr, me, srvID)
	ctx := context.Background()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fs.list_directory", map[string]any{"path": root}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "plan.txt") {
		t.Fatalf("list: %v %+v", err, res)
	}
	req.Params.Name, req.Params.Arguments = "fs.read_text_file", map[string]any{"path": filepath.Join(root, "plan.txt")}
	res, err = c.CallTool(ctx, req)
	if err != nil || res.IsError || res.Content[0].(mcp.TextContent).Text != marker {
		t.Fatalf("read: %v %+v", err, res)
	}
	if captured := rec.bytes(); bytes.Contains(captured, []byte(marker)) || bytes.Contains(captured, []byte("plan.txt")) {
		t.Fatal("the loopback capture holds the file's plaintext")
	}
}

func TestDesktopClientThroughTheTunnel(t *testing.T) {
	srvID, me := ident(t, "server"), ident(t, "desktop")
	addr, rec := serve(t, srvID, me.PeerID())

	ctx := context.Background()
	conn, err := tunnel.Dial(ctx, addr, me, srvID.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	// The desktop client talks to `mcp connect` over its stdin/stdout.
	toBridge, clientOut := io.Pipe()
	clientIn, fromBridge := io.Pipe()
	bridged := make(chan error, 1)
	go func() { bridged <- tunnel.Bridge(ctx, conn, toBridge, fromBridge) }()

	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 1 || list.Tools[0].Name != "fs.read" {
		t.Fatalf("%v %+v", err, list)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fs.read", map[string]any{"path": "/home/user/notes.txt"}
	res, err := c.CallTool(ctx, req)
	if err != nil || len(res.Content) != 1 || res.Content[0].(mcp.TextContent).Text != marker {
		t.Fatalf("%v %+v", err, res)
	}
	_ = c.Close() // closes the bridge's stdin: the session ends
	if err := <-bridged; err != nil {
		t.Errorf("bridge: %v", err)
	}
	captured := rec.bytes()
	if len(captured) < 1000 || bytes.Contains(captured, []byte(marker)) || bytes.Contains(captured, []byte("fs.read")) {
		t.Fatalf("the loopback capture (%d bytes) shows plaintext", len(captured))
	}
}

func TestTunnelRefusesOtherKeys(t *testing.T) {
	srvID, me, stranger := ident(t, "server"), ident(t, "desktop"), ident(t, "stranger")
	addr, _ := serve(t, srvID, me.PeerID())
	ctx := context.Background()

	// We expect a different server key: our side refuses the handshake.
	if _, err := tunnel.Dial(ctx, addr, me, stranger.PeerID()); err == nil || !strings.Contains(err.Error(), "not the authorized") {
		t.Errorf("a server with the wrong key was accepted: %v", err)
	}
	// An unauthorized client: the server refuses it (in TLS 1.3 the client
	// may finish first, then the server's alert arrives on the first read).
	conn, err := tunnel.Dial(ctx, addr, stranger, srvID.PeerID())
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"))
		_, err = conn.Read(make([]byte, 100))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an unauthorized peer was served: %v", err)
	}
	// The authorized peer is still served afterwards.
	conn, err = tunnel.Dial(ctx, addr, me, srvID.PeerID())
	if err != nil {
		t.Fatalf("the authorized peer after a refusal: %v", err)
	}
	conn.Close()
}
