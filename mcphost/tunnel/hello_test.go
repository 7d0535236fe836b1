package tunnel_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

// serveTokens serves a one-tool server through a tunnel that requires a
// token rooted at srvID, its state in a file.
func serveTokens(t *testing.T, srvID *gateway.Identity, authorized gateway.PeerID) (string, *gateway.Verifier, *gateway.DecisionLog) {
	t.Helper()
	st, err := gateway.NewFileState(filepath.Join(t.TempDir(), "auth.json"))
	if err != nil {
		t.Fatal(err)
	}
	decisions := gateway.NewDecisionLog(0)
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{srvID.PeerID()}, Decisions: decisions}, st)
	if err != nil {
		t.Fatal(err)
	}
	tools := server.NewMCPServer("tools", "1")
	tools.AddTool(mcp.NewTool("hello"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hi"), nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- tunnel.ServeWith(ctx, ln, srvID, authorized, tools, tunnel.Options{Verifier: v})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String(), v, decisions
}

func listOver(t *testing.T, conn net.Conn) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	toBridge, clientOut := io.Pipe()
	clientIn, fromBridge := io.Pipe()
	go func() { _ = tunnel.Bridge(ctx, conn, toBridge, fromBridge); fromBridge.Close() }() // as `mcp connect` exits
	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		return err
	}
	_, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	return err
}

func TestTunnelTokens(t *testing.T) {
	srvID, me := ident(t, "server"), ident(t, "desktop")
	addr, v, decisions := serveTokens(t, srvID, me.PeerID())
	ctx := context.Background()
	good, err := gateway.Issue(srvID, me.PeerID(), []string{tunnel.ConnectAction}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	conn, err := tunnel.DialWith(ctx, addr, me, srvID.PeerID(), good)
	if err != nil {
		t.Fatal(err)
	}
	if err := listOver(t, conn); err != nil {
		t.Fatalf("a good token: %v", err)
	}

	refused := func(what, token string, req *gateway.Request, want string) {
		t.Helper()
		conn, err := tunnel.Dial(ctx, addr, me, srvID.PeerID())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := gateway.Request{}
		if req != nil {
			r = *req
		} else if r, err = gateway.NewRequest(me, token, tunnel.ConnectAction); err != nil {
			t.Fatal(err)
		}
		if err := tunnel.SendHello(ctx, conn, r); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", what, err)
		}
	}

	// A replayed hello: the same signed request a second time.
	req, _ := gateway.NewRequest(me, good, tunnel.ConnectAction)
	c1, _ := tunnel.Dial(ctx, addr, me, srvID.PeerID())
	if err := tunnel.SendHello(ctx, c1, req); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	refused("a replayed hello", "", &req, "already used")

	// An expired token (issued in a bubble whose clock is in the year 2000).
	var expired string
	synctest.Test(t, func(*testing.T) {
		expired, _ = gateway.Issue(srvID, me.PeerID(), []string{tunnel.ConnectAction}, time.Hour)
	})
	refused("an expired token", expired, nil, "expired")

	// A token from an issuer the server does not trust, and one for another action.
	stranger := ident(t, "stranger")
	foreign, _ := gateway.Issue(stranger, me.PeerID(), []string{tunnel.ConnectAction}, time.Hour)
	refused("a foreign token", foreign, nil, "not trusted")
	narrow, _ := gateway.Issue(srvID, me.PeerID(), []string{"mcp/fs/read"}, time.Hour)
	refused("a token for another action", narrow, nil, "no scope")

	// A hello that asks for another action, even one its token grants.
	wide, _ := gateway.Issue(srvID, me.PeerID(), []string{"mcp/*"}, time.Hour)
	other, _ := gateway.NewRequest(me, wide, "mcp/fs/read")
	refused("a hello for another action", "", &other, "must ask for")

	// A revoked token.
	pt, _ := gateway.Parse(good)
	if err := v.Revoke(pt); err != nil {
		t.Fatal(err)
	}
	refused("a revoked token", good, nil, "revoked")

	// No hello at all: MCP straight away is refused, nothing is served.
	conn, err = tunnel.Dial(ctx, addr, me, srvID.PeerID())
	if err != nil {
		t.Fatal(err)
	}
	if err := listOver(t, conn); err == nil {
		t.Error("a session without a hello was served")
	}
	conn.Close()

	// Every refusal is in the decision log, those decided before Authorize
	// (the wrong form, no hello) too, in the order they happened.
	want := []struct{ action, reason string }{
		{tunnel.ConnectAction, "already used"},
		{tunnel.ConnectAction, "expired"},
		{tunnel.ConnectAction, "not trusted"},
		{tunnel.ConnectAction, "no scope"},
		{"mcp/fs/read", "must ask for"},
		{tunnel.ConnectAction, "revoked"},
		{tunnel.ConnectAction, "hello"},
	}
	deadline := time.Now().Add(5 * time.Second)
	var refusals []gateway.Decision
	for {
		refusals = refusals[:0]
		for _, d := range decisions.Decisions() {
			if !d.Allowed {
				refusals = append(refusals, d)
			}
		}
		if len(refusals) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the server records the last refusal after the client gave up
	}
	if len(refusals) != len(want) {
		t.Fatalf("%d refusals recorded, want %d: %+v", len(refusals), len(want), refusals)
	}
	for i, w := range want {
		d := refusals[i]
		if d.Action != w.action || d.Code != talos.CodeUnauthorized && d.Code != talos.CodeInputInvalid || !strings.Contains(d.Reason, w.reason) {
			t.Errorf("refusal %d: %+v, want action %s and a reason with %q", i+1, d, w.action, w.reason)
		}
	}
	if d := refusals[4]; d.Subject != me.PeerID() || d.TokenID == "" {
		t.Errorf("the wrong-form refusal does not name the token's subject and id: %+v", d)
	}
}

func FuzzReadHello(f *testing.F) {
	f.Add([]byte(`{"v":1,"request":{"token":"x","action":"mcp/tunnel/connect","time_ms":1,"nonce":"00","sig":"AAAA"}}` + "\n"))
	f.Add([]byte(`{"v":2}` + "\n"))
	f.Add([]byte("\n"))
	f.Add(bytes.Repeat([]byte("a"), tunnel.MaxHelloBytes+10))
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		req, err := tunnel.ReadHello(br)
		if err != nil {
			if !errors.Is(err, talos.ErrInputInvalid) {
				t.Fatalf("an error without its code: %v", err)
			}
			return
		}
		if i := bytes.IndexByte(b, '\n'); i < 0 || i >= tunnel.MaxHelloBytes+1 {
			t.Fatalf("accepted a frame without a newline within the limit: %+v", req)
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, b[bytes.IndexByte(b, '\n')+1:]) {
			t.Fatal("read beyond the frame")
		}
	})
}
