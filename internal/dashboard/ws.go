package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/orchestrator"
)

// WSChatPath is the chat as a WebSocket: the browser sends WSMessage
// frames, the dashboard answers with WSEvent frames.
const WSChatPath = "/ws/chat"

// MaxWSMessageBytes caps one frame from the browser (the chat API's body
// limit).
const MaxWSMessageBytes = chatapi.DefaultMaxBodyBytes

// WebSocket message types. The browser sends WSChat and WSAbort; the
// dashboard sends WSToken for each piece of the answer, then exactly one
// WSDone or WSError per turn.
const (
	WSChat  = "chat"
	WSAbort = "abort"
	WSToken = "token"
	WSDone  = "done"
	WSError = "error"
)

// WSMessage is a frame from the browser: a chat turn (Type WSChat, the
// Message and an optional SessionID) or WSAbort, which cancels the running
// turn.
type WSMessage struct {
	Type      string `json:"type"`
	SessionID string `json:"session_id,omitempty"`
	Message   string `json:"message,omitempty"`
}

// WSEvent is a frame to the browser: a token's Text, the turn's Reply, or
// the Error the user sees.
type WSEvent struct {
	Type  string              `json:"type"`
	Text  string              `json:"text,omitempty"`
	Reply *orchestrator.Reply `json:"reply,omitempty"`
	Error string              `json:"error,omitempty"`
}

// DecodeWSMessage decodes one frame from the browser: a single JSON object
// of at most MaxWSMessageBytes with the fields type, session_id and
// message. Every problem is named at once: unknown fields, wrong types, an
// unknown type, a chat without a message, an abort with a message.
func DecodeWSMessage(b []byte) (WSMessage, error) {
	var m WSMessage
	if len(b) > MaxWSMessageBytes {
		return m, fmt.Errorf("the message is %d bytes: at most %d are accepted", len(b), MaxWSMessageBytes)
	}
	f, problems, err := wsMessageSpec.Decode(b)
	if err != nil {
		return m, err
	}
	m.Type, m.SessionID, m.Message = f["type"], f["session_id"], f["message"]
	switch m.Type {
	case WSChat:
		if strings.TrimSpace(m.Message) == "" {
			problems = append(problems, "field message is empty: a chat message holds the text to send")
		}
	case WSAbort:
		if m.Message != "" || m.SessionID != "" {
			problems = append(problems, "an abort carries no message and no session_id")
		}
	default:
		problems = append(problems, "field type is "+redact.Value(m.Type)+": allowed types are chat and abort")
	}
	if err := chatapi.Problems(problems); err != nil {
		return WSMessage{}, err
	}
	return m, nil
}

// wsMessageSpec is a frame from the browser.
var wsMessageSpec = chatapi.ObjectSpec{
	What:   "the message",
	Hint:   `send {"type": "chat", "message": "hello"} or {"type": "abort"}`,
	Fields: []string{"type", "session_id", "message"},
}

// sameOrigin reports whether the WebSocket handshake r comes from a page
// of this dashboard: its Origin is http(s)://<the Host it asked for>, and
// the browser does not say the request is cross-site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host != r.Host {
		return false
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return false
	}
	return true
}

// wsWriteWait bounds one frame's write.
const wsWriteWait = 10 * time.Second

func (d *Dashboard) serveWSChat(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		d.log.Warn("dashboard refused a WebSocket from another origin", "origin", clip(r.Header.Get("Origin")),
			"sec_fetch_site", clip(r.Header.Get("Sec-Fetch-Site")))
		writeJSON(w, http.StatusForbidden, errorBody{Error: "WebSocket refused: the chat accepts connections only from the dashboard's own pages"})
		return
	}
	if d.deps.Turns == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the chat is not available: the agent is not wired into this dashboard"})
		return
	}
	up := websocket.Upgrader{CheckOrigin: sameOrigin, HandshakeTimeout: 10 * time.Second}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the client
	}
	defer conn.Close()
	conn.SetReadLimit(MaxWSMessageBytes)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The dashboard stopping ends the socket (and so its turn).
	go func() {
		select {
		case <-d.stop:
			_ = conn.Close()
		case <-ctx.Done():
		}
	}()

	var wmu sync.Mutex // held while a frame is written
	write := func(ev WSEvent) error {
		_ = conn.SetWriteDeadline(time.Now().Add(wsWriteWait))
		return conn.WriteJSON(ev)
	}
	send := func(ev WSEvent) error {
		wmu.Lock()
		defer wmu.Unlock()
		return write(ev)
	}
	var (
		tmu     sync.Mutex
		abort   context.CancelFunc
		running sync.WaitGroup
	)
	defer running.Wait()
	defer cancel()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			return // closed, too large or broken: the deferred cancel ends the turn
		}
		m, err := DecodeWSMessage(b)
		if err != nil {
			if send(WSEvent{Type: WSError, Error: err.Error()}) != nil {
				return
			}
			continue
		}
		tmu.Lock()
		busy := abort != nil
		if m.Type == WSAbort {
			if busy {
				abort()
			}
			tmu.Unlock()
			continue
		}
		if busy {
			tmu.Unlock()
			if send(WSEvent{Type: WSError, Error: "a turn is already running: wait for its answer or abort it"}) != nil {
				return
			}
			continue
		}
		tctx, tcancel := context.WithTimeout(ctx, chatapi.DefaultTurnTimeout)
		abort = tcancel
		tmu.Unlock()
		running.Add(1)
		go func() {
			defer running.Done()
			turn := orchestrator.Turn{SessionID: m.SessionID, Message: m.Message,
				Stream: func(delta string) error { return send(WSEvent{Type: WSToken, Text: delta}) }}
			rep, err := d.deps.Turns.Chat(tctx, turn)
			last := WSEvent{Type: WSDone, Reply: rep}
			if err != nil {
				msg := orchestrator.UserMessage(err)
				if tctx.Err() != nil && ctx.Err() == nil {
					msg = "aborted"
				}
				last = WSEvent{Type: WSError, Error: msg}
			}
			// The turn is over before its last event goes out (a client
			// that sends its next message on that event is not told that
			// a turn is still running), and no frame of a next turn goes
			// out before it (wmu is taken first; the read loop never
			// holds tmu while it writes).
			wmu.Lock()
			tmu.Lock()
			abort = nil
			tmu.Unlock()
			tcancel()
			_ = write(last)
			wmu.Unlock()
		}()
	}
}
