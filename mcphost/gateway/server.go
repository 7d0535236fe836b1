package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"net/url"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost"
)

// Server serves a Host's callable tools as one MCP server, so any MCP client
// (Claude Desktop, Cursor, an mcp-go client) uses Talos as its guarded tool
// gateway: every call goes through the Host's pipeline. Requests whose
// context carries a caller (WithCaller) are also limited by the caller's
// session and token scopes.
type Server struct {
	host *mcphost.Host
	mcp  *server.MCPServer
}

// NewServer builds the gateway's MCP server for host and publishes the
// tools host can call now. Call Sync after approving changed definitions.
func NewServer(host *mcphost.Host, name, version string) *Server {
	g := &Server{host: host}
	g.mcp = server.NewMCPServer(name, version,
		server.WithToolCapabilities(true),
		// A tool that stopped being callable (its server quarantined, the
		// allowlist changed) disappears from tools/list at once.
		server.WithToolFilter(func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
			callable := map[string]bool{}
			for _, d := range g.host.Tools() {
				callable[d.QualifiedName()] = true
			}
			c, scoped := callerOf(ctx)
			out := tools[:0:0]
			for _, t := range tools {
				if callable[t.Name] && (!scoped || c.s.Check(c.token, ToolAction(t.Name)) == nil) {
					out = append(out, t)
				}
			}
			return out
		}))
	g.Sync()
	return g
}

// MCPServer returns the mcp-go server, for server.ServeStdio or
// server.NewStreamableHTTPServer.
func (g *Server) MCPServer() *server.MCPServer { return g.mcp }

// Sync publishes the tools the host can call now (clients are told with
// notifications/tools/list_changed).
func (g *Server) Sync() {
	var tools []server.ServerTool
	for _, d := range g.host.Tools() {
		t := mcp.Tool{Name: d.QualifiedName(), Title: d.Title, Description: d.Description, RawInputSchema: d.InputSchema}
		if len(d.InputSchema) == 0 || string(d.InputSchema) == "null" {
			t.RawInputSchema = json.RawMessage(`{"type":"object"}`)
		}
		name := t.Name
		tools = append(tools, server.ServerTool{Tool: t, Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if c, ok := callerOf(ctx); ok {
				if err := c.authorizeCall(ToolAction(name)); err != nil {
					return mcp.NewToolResultError(err.Error()), nil
				}
			}
			res, err := g.host.Call(ctx, name, req.GetArguments())
			if err != nil {
				// The client (and its model) learn why, as a tool error.
				return mcp.NewToolResultError(err.Error()), nil
			}
			return &mcp.CallToolResult{Content: res.Content, IsError: res.IsError}, nil
		}})
	}
	g.mcp.SetTools(tools...)
}

// loopbackOrigin reports whether an Origin header names a loopback host.
func loopbackOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}

// HTTPHandler serves g over streamable HTTP behind a bearer token: a
// request without "Authorization: Bearer <token>" gets 401, one whose Host
// or Origin is not a loopback name gets 403 (DNS rebinding, browsers).
// token must be at least 32 characters.
func (g *Server) HTTPHandler(token string) (http.Handler, error) {
	if len(token) < 32 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "gateway.HTTPHandler", "the bearer token has %d characters: use at least 32 random ones", len(token))
	}
	inner := server.NewStreamableHTTPServer(g.mcp)
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			http.Error(w, "the gateway answers loopback host names only", http.StatusForbidden)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="talos-mcp-gateway"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
			http.Error(w, "cross-origin requests are refused", http.StatusForbidden)
			return
		}
		inner.ServeHTTP(w, r)
	}), nil
}
