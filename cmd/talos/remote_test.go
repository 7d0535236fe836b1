package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
	"github.com/talos-ironclad/talos/orchestrator"
)

// The client of the daemon's chat API: JSON and streamed turns, a 404
// mapped to ErrNoSession (the REPL then starts a new session), refusals
// carrying the daemon's message.
func TestDaemonChatClient(t *testing.T) {
	local := llmtest.NewFake("qwen")
	local.Default = &llmtest.Reply{Text: "An answer long enough to be streamed in more than one piece by the guard of the loop."}
	router, _ := llm.NewRouter(llm.RouterConfig{}, local, nil, nil)
	fw, _ := firewall.New(firewall.Config{}, nil, nil)
	o, err := orchestrator.New(orchestrator.Config{}, orchestrator.Deps{Router: router, Firewall: fw})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := chatapi.New(chatapi.Config{User: "admin", Pass: "Sup3r-Secret-Pass!"}, o)
	srv := httptest.NewServer(h)
	defer srv.Close()
	dc := &daemonChat{addr: strings.TrimPrefix(srv.URL, "http://"), user: "admin", pass: "Sup3r-Secret-Pass!", hc: srv.Client()}
	ctx := context.Background()

	rep, err := dc.Chat(ctx, orchestrator.Turn{Message: "hi"})
	if err != nil || rep.Answer != local.Default.Text || rep.SessionID == "" {
		t.Fatalf("%+v %v", rep, err)
	}
	var streamed strings.Builder
	rep2, err := dc.Chat(ctx, orchestrator.Turn{SessionID: rep.SessionID, Message: "again", Stream: func(d string) error { streamed.WriteString(d); return nil }})
	if err != nil || rep2.SessionID != rep.SessionID || streamed.String() != rep2.Answer || !rep2.StreamedAll {
		t.Fatalf("%+v %v; streamed %q", rep2, err, streamed.String())
	}
	if _, err := dc.Chat(ctx, orchestrator.Turn{SessionID: "0123456789abcdef", Message: "x"}); !errors.Is(err, orchestrator.ErrNoSession) {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := dc.Chat(ctx, orchestrator.Turn{Message: "  "}); err == nil || !strings.Contains(err.Error(), "message is empty") {
		t.Fatalf("blank message: %v", err)
	}
	bad := &daemonChat{addr: dc.addr, user: "admin", pass: "wrong", hc: srv.Client()}
	if _, err := bad.Chat(ctx, orchestrator.Turn{Message: "hi"}); err == nil || !strings.Contains(err.Error(), "operator credentials required") {
		t.Fatalf("wrong password: %v", err)
	}

	// The REPL over the client: an unknown session starts anew.
	var out bytes.Buffer
	if err := chatREPL(ctx, strings.NewReader("first\nsecond\n"), &out, dc, time.Minute); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), local.Default.Text) != 2 {
		t.Fatalf("REPL output:\n%s", out.String())
	}
	expired := chatter(func(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
		if turn.SessionID != "" {
			return nil, orchestrator.ErrNoSession
		}
		return &orchestrator.Reply{SessionID: "s1", Outcome: orchestrator.OutcomeAnswered, Answer: "new session", StreamedAll: false}, nil
	})
	out.Reset()
	if err := chatREPL(ctx, strings.NewReader("a\nb\nc\n"), &out, expired, time.Minute); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "new session") != 3 || !strings.Contains(out.String(), "the session expired; this message starts a new one") {
		t.Fatalf("REPL output:\n%s", out.String())
	}
}

type chatter func(context.Context, orchestrator.Turn) (*orchestrator.Reply, error)

func (c chatter) Chat(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error) {
	return c(ctx, t)
}
