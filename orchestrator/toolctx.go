package orchestrator

import "context"

type sessionKey struct{}

// SessionID returns the id of the chat session a tool call belongs to: the
// context given to Tools.Call carries it. It is "" for a context from
// anywhere else.
func SessionID(ctx context.Context) string {
	id, _ := ctx.Value(sessionKey{}).(string)
	return id
}

func withSessionID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}
