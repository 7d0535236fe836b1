package gateway

import (
	"context"
	"strings"
)

// ToolActionPrefix begins the capability action of every tool call.
const ToolActionPrefix = "mcp/tools/"

// ToolAction is the capability action that calling the tool with this
// qualified name ("server.tool") needs: "mcp/tools/server/tool". The scope
// "mcp/tools/server/*" grants every tool of one server, "mcp/tools/*" every
// tool.
func ToolAction(qualified string) string {
	srv, tool, ok := strings.Cut(qualified, ".")
	if !ok {
		return ToolActionPrefix + qualified
	}
	return ToolActionPrefix + srv + "/" + tool
}

type callerKey struct{}

type caller struct {
	s     *Session
	token string
}

// WithCaller returns ctx for the requests of one authenticated peer holding
// token: a Server serving requests with this context takes every tools/call
// from the session's token bucket, refuses a tool the token's scopes do not
// grant (ToolAction), and lists only the tools they grant.
func WithCaller(ctx context.Context, s *Session, token string) context.Context {
	return context.WithValue(ctx, callerKey{}, caller{s: s, token: token})
}

// callerOf returns the caller WithCaller put in ctx.
func callerOf(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok && c.s != nil
}

// authorizeCall takes one call from the session's bucket and checks that
// the token grants action, recording the decision when the Verifier keeps
// a DecisionLog.
func (c caller) authorizeCall(action string) error {
	err := c.s.Allow()
	if err == nil {
		err = c.s.Check(c.token, action)
	}
	if c.s.v.log != nil {
		var subject PeerID
		var id string
		c.s.mu.Lock()
		if e, ok := c.s.cache[c.token]; ok {
			subject, id = e.t.Subject, e.t.ID
		}
		c.s.mu.Unlock()
		c.s.v.record(action, subject, id, err)
	}
	return err
}
