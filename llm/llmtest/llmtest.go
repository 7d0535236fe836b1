package llmtest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
)

// Reply is one scripted answer of a Fake.
type Reply struct {
	Text      string
	ToolCalls []llm.ToolCall
	Usage     llm.Usage
	// Err, if set, is returned instead of an answer.
	Err error
}

// Fake is a scripted llm.Model. It answers with the queued replies in order,
// then with Default (or a T207 error when Default is nil). It records every
// request. It is safe for concurrent use.
type Fake struct {
	Name          string
	ContextLength int
	Local         bool
	Default       *Reply

	mu      sync.Mutex
	replies []Reply
	calls   []llm.Request
}

// NewFake returns a Fake named name answering replies in order.
func NewFake(name string, replies ...Reply) *Fake {
	return &Fake{Name: name, replies: replies}
}

// Push queues more replies.
func (f *Fake) Push(r ...Reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = append(f.replies, r...)
}

// Calls returns the requests received so far.
func (f *Fake) Calls() []llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]llm.Request(nil), f.calls...)
}

// Chat implements llm.Model. Streaming sends the text word by word.
func (f *Fake) Chat(ctx context.Context, req llm.Request) (*llm.Response, error) {
	f.mu.Lock()
	f.calls = append(f.calls, req)
	var r Reply
	switch {
	case len(f.replies) > 0:
		r, f.replies = f.replies[0], f.replies[1:]
	case f.Default != nil:
		r = *f.Default
	default:
		f.mu.Unlock()
		return nil, talos.Errorf(talos.CodeModelBadResponse, "llmtest.Fake.Chat", "fake model %q has no scripted reply left", f.Name)
	}
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	if req.Stream != nil && r.Text != "" {
		for _, w := range strings.SplitAfter(r.Text, " ") {
			if err := req.Stream(w); err != nil {
				return nil, err
			}
		}
	}
	return &llm.Response{
		Model:        f.Name,
		Message:      llm.Message{Role: llm.RoleAssistant, Content: r.Text, ToolCalls: r.ToolCalls},
		FinishReason: "stop",
		Usage:        r.Usage,
	}, nil
}

// Info implements llm.Model.
func (f *Fake) Info(ctx context.Context) (llm.Info, error) {
	return llm.Info{Name: f.Name, Provider: "fake", Local: f.Local, ContextLength: f.ContextLength}, ctx.Err()
}

// Script is what the backend behind a model under test must answer to every
// chat request in RunModel.
type Script struct {
	Text          string
	ToolCall      *llm.ToolCall // answered instead of Text when set
	Usage         llm.Usage
	ContextLength int
}

// RunModel is the conformance suite for llm.Model adapters. newModel returns
// a model whose backend answers every chat with s (streamed in more than one
// piece when the request streams) and reports s.ContextLength.
func RunModel(t *testing.T, newModel func(t *testing.T, s Script) llm.Model) {
	t.Helper()
	ctx := context.Background()
	user := []llm.Message{{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Content: "say hello"}}

	t.Run("Chat", func(t *testing.T) {
		s := Script{Text: "Hello there, friend.", Usage: llm.Usage{PromptTokens: 12, CompletionTokens: 5}}
		resp, err := newModel(t, s).Chat(ctx, llm.Request{Messages: user})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Message.Content != s.Text || resp.Message.Role != llm.RoleAssistant {
			t.Fatalf("message = %+v, want assistant %q", resp.Message, s.Text)
		}
		if resp.Usage != s.Usage {
			t.Fatalf("usage = %+v, want %+v", resp.Usage, s.Usage)
		}
		if resp.Model == "" {
			t.Fatal("Response.Model is empty")
		}
	})

	t.Run("Stream", func(t *testing.T) {
		s := Script{Text: "one two three four", Usage: llm.Usage{PromptTokens: 3, CompletionTokens: 4}}
		var deltas []string
		resp, err := newModel(t, s).Chat(ctx, llm.Request{Messages: user, Stream: func(d string) error {
			deltas = append(deltas, d)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(deltas) < 2 || strings.Join(deltas, "") != s.Text {
			t.Fatalf("deltas = %q, want several pieces of %q", deltas, s.Text)
		}
		if resp.Message.Content != s.Text || resp.Usage != s.Usage {
			t.Fatalf("final response = %+v", resp)
		}
	})

	t.Run("StreamCallbackStops", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		_, err := newModel(t, Script{Text: "a b c d e f"}).Chat(ctx, llm.Request{Messages: user, Stream: func(string) error {
			n++
			return stop
		}})
		if !errors.Is(err, stop) || n != 1 {
			t.Fatalf("err = %v after %d deltas, want the callback's error after 1", err, n)
		}
	})

	t.Run("ToolCall", func(t *testing.T) {
		call := &llm.ToolCall{Name: "read_file", Arguments: map[string]any{"path": "/tmp/x", "lines": float64(3)}}
		tools := []llm.Tool{{Name: "read_file", Description: "read a file", Parameters: map[string]any{
			"type":       "object",
			"properties": map[string]any{"path": map[string]any{"type": "string"}, "lines": map[string]any{"type": "integer"}},
			"required":   []any{"path"},
		}}}
		resp, err := newModel(t, Script{ToolCall: call}).Chat(ctx, llm.Request{Messages: user, Tools: tools})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Message.ToolCalls) != 1 {
			t.Fatalf("tool calls = %+v, want one", resp.Message.ToolCalls)
		}
		got := resp.Message.ToolCalls[0]
		if got.Name != call.Name || !reflect.DeepEqual(got.Arguments, call.Arguments) {
			t.Fatalf("tool call = %+v, want %+v", got, call)
		}
	})

	t.Run("Info", func(t *testing.T) {
		info, err := newModel(t, Script{ContextLength: 32768}).Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.ContextLength != 32768 || info.Name == "" || info.Provider == "" {
			t.Fatalf("info = %+v, want context length 32768", info)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := newModel(t, Script{Text: "x"}).Chat(cctx, llm.Request{Messages: user})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled in the chain", err)
		}
		if v := llm.Classify(err); v.Kind.String() != "ignore" {
			t.Fatalf("a cancelled call classifies as %s, want ignore", v.Kind)
		}
	})
}

// Scripted returns a Fake that answers every request with s: the Fake's own
// entry for RunModel.
func Scripted(s Script) *Fake {
	r := Reply{Text: s.Text, Usage: s.Usage}
	if s.ToolCall != nil {
		r = Reply{ToolCalls: []llm.ToolCall{*s.ToolCall}, Usage: s.Usage}
	}
	return &Fake{Name: "fake", ContextLength: s.ContextLength, Default: &r}
}
