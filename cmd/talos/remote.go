package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/orchestrator"
)

// agentFlags are the flags of ask and chat that choose adapters: given any
// of them, the command builds its own agent instead of using the daemon's.
var agentFlags = []string{"ollama-url", "model", "gemini-url", "gemini-model", "redis-url", "prompt-local", "prompt-escalation", "local-only", "in-process"}

// runningDaemon returns the chat client of the daemon serving cfg's home
// when its ready marker says it is ready and its process lives, and no
// adapter flag asks for an agent of the command's own; nil otherwise.
func runningDaemon(cmd *cobra.Command, cfg *config.Config) *daemonChat {
	for _, f := range agentFlags {
		if cmd.Flags().Changed(f) {
			return nil
		}
	}
	r, err := boot.ReadReady(daemon.DefaultReadyPath(cfg.Home))
	if err != nil || r.Status != boot.StatusReady || r.HealthAddr == "" || !processAlive(r.PID) {
		return nil
	}
	return &daemonChat{addr: r.HealthAddr, user: cfg.BasicAuthUser, pass: cfg.BasicAuthPass.Value(), hc: &http.Client{}}
}

// daemonAddr returns the health address of the daemon serving cfg's home
// when its ready marker says it is up (ready or degraded) and its process
// lives.
func daemonAddr(cfg *config.Config) (string, bool) {
	r, err := boot.ReadReady(daemon.DefaultReadyPath(cfg.Home))
	if err != nil || (r.Status != boot.StatusReady && r.Status != boot.StatusDegraded) || r.HealthAddr == "" || !processAlive(r.PID) {
		return "", false
	}
	return r.HealthAddr, true
}

// refusal is what the daemon said when it refused a request: the error of
// its JSON error body, else the HTTP status.
func refusal(resp *http.Response) string {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var eb chatapi.ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	return fmt.Sprintf("HTTP %d", resp.StatusCode)
}

// daemonChat runs turns on the running daemon's chat API.
type daemonChat struct {
	addr, user, pass string
	hc               *http.Client
}

// Chat sends the turn to POST /api/v1/chat, streaming when t.Stream is set.
// A refused request comes back as an error carrying the daemon's message
// (wrapping orchestrator.ErrNoSession for a 404).
func (c *daemonChat) Chat(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error) {
	body, _ := json.Marshal(chatapi.Request{SessionID: t.SessionID, Message: t.Message})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+chatapi.Path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.Stream != nil {
		req.Header.Set("Accept", "text/event-stream")
	}
	req.SetBasicAuth(c.user, c.pass)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the daemon at %s is unreachable: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("the daemon at %s refused the turn: %s", c.addr, refusal(resp))
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("%w: %w", orchestrator.ErrNoSession, err)
		}
		return nil, err
	}
	var rep *orchestrator.Reply
	if t.Stream == nil {
		rep = &orchestrator.Reply{}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(rep); err != nil {
			return nil, fmt.Errorf("the daemon's answer is not a chat reply: %w", err)
		}
		return rep, nil
	}
	err = chatapi.ScanEvents(resp.Body, func(ev chatapi.Event) error {
		switch ev.Name {
		case chatapi.EventToken:
			var tok chatapi.Token
			if err := json.Unmarshal(ev.Data, &tok); err != nil {
				return fmt.Errorf("a token event is not JSON: %w", err)
			}
			return t.Stream(tok.Text)
		case chatapi.EventDone:
			rep = &orchestrator.Reply{}
			return json.Unmarshal(ev.Data, rep)
		case "error":
			var eb chatapi.ErrorBody
			_ = json.Unmarshal(ev.Data, &eb)
			return errors.New("the daemon stopped the turn: " + eb.Error)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rep == nil {
		return nil, fmt.Errorf("the daemon at %s ended the stream without a final answer", c.addr)
	}
	return rep, nil
}
