package chatapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
	"github.com/talos-ironclad/talos/orchestrator"
)

const user, pass = "operator", "Correct-Horse-Battery-9"

func newServer(t testing.TB, local *llmtest.Fake, cfg chatapi.Config) *httptest.Server {
	t.Helper()
	router, err := llm.NewRouter(llm.RouterConfig{}, local, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := firewall.New(firewall.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(orchestrator.Config{}, orchestrator.Deps{Router: router, Firewall: fw})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User == "" {
		cfg.User, cfg.Pass = user, pass
	}
	h, err := chatapi.New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+chatapi.Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	for k, v := range hdr {
		if k == "auth" {
			u, p, _ := strings.Cut(v, ":")
			req.SetBasicAuth(u, p)
			continue
		}
		req.Header.Set(k, v)
	}
	if hdr["auth"] == "none" {
		req.Header.Del("Authorization")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp, b.String()
}

func TestJSONTurnsAndSessions(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "first answer"}, llmtest.Reply{Text: "second answer"})
	srv := newServer(t, local, chatapi.Config{})
	resp, body := post(t, srv, `{"message":"hello"}`, nil)
	var rep orchestrator.Reply
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &rep) != nil || rep.Answer != "first answer" || rep.SessionID == "" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	resp, body = post(t, srv, `{"session_id":"`+rep.SessionID+`","message":"again"}`, nil)
	var rep2 orchestrator.Reply
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &rep2) != nil || rep2.SessionID != rep.SessionID || rep2.Answer != "second answer" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// The second call saw the first exchange? Only with a History; here the
	// session continues and the model was called twice.
	if len(local.Calls()) != 2 {
		t.Fatalf("%d model calls", len(local.Calls()))
	}
	resp, body = post(t, srv, `{"session_id":"0123456789abcdef0123456789abcdef","message":"x"}`, nil)
	if resp.StatusCode != 404 || !strings.Contains(body, "does not exist or expired") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestStreamingAsServerSentEvents(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "a streamed answer\nwith two lines and enough words to pass the hold-back of the guard in several deltas"})
	srv := newServer(t, local, chatapi.Config{})
	resp, body := post(t, srv, `{"message":"stream please"}`, map[string]string{"Accept": "text/event-stream"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events, err := chatapi.ReadEvents(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	var done *orchestrator.Reply
	for i, ev := range events {
		switch ev.Name {
		case chatapi.EventToken:
			var tok chatapi.Token
			if err := json.Unmarshal(ev.Data, &tok); err != nil || done != nil {
				t.Fatalf("event %d: %v after done %v", i, err, done != nil)
			}
			text.WriteString(tok.Text)
		case chatapi.EventDone:
			done = &orchestrator.Reply{}
			if err := json.Unmarshal(ev.Data, done); err != nil {
				t.Fatal(err)
			}
		}
	}
	if done == nil || len(events) < 3 || events[len(events)-1].Name != chatapi.EventDone || text.String() != done.Answer || !done.StreamedAll {
		t.Fatalf("events %d, text %q, done %+v", len(events), text.String(), done)
	}
}

func TestRefusedRequests(t *testing.T) {
	srv := newServer(t, llmtest.NewFake("qwen"), chatapi.Config{MaxBodyBytes: 1024})
	for _, c := range []struct {
		name, body string
		hdr        map[string]string
		code       int
		want       string
	}{
		{"no credentials", `{"message":"hi"}`, map[string]string{"auth": "none"}, 401, "operator credentials required"},
		{"wrong password", `{"message":"hi"}`, map[string]string{"auth": user + ":wrong"}, 401, "operator credentials required"},
		{"wrong user", `{"message":"hi"}`, map[string]string{"auth": "admin:" + pass}, 401, "operator credentials required"},
		{"text body", `hi`, map[string]string{"Content-Type": "text/plain"}, 415, "send application/json"},
		{"too large", `{"message":"` + strings.Repeat("a", 2000) + `"}`, nil, 413, "more than 1024 bytes"},
		{"empty", ``, nil, 400, "request body is empty"},
		{"not an object", `["hi"]`, nil, 400, "not a JSON object"},
		{"syntax", `{"message": "hi"`, nil, 400, "not a JSON object"},
		{"two values", `{"message":"a"} {"message":"b"}`, nil, 400, "more than one JSON value"},
		{"every problem", `{"mesage":"hi","session_id":7}`, nil, 400, `field \"mesage\" is unknown: allowed fields are message and session_id; field message is missing: it holds the text to send; field session_id is 7: it must be a string (or absent to start a session)`},
		{"null message", `{"message":null}`, nil, 400, "field message is missing: it holds the text to send"},
		{"message of another type", `{"message":["hi"]}`, nil, 400, `field message is [\"hi\"]: it must be a string"`},
		{"blank message", `{"message":"   "}`, nil, 400, "message is empty"},
		{"bad session id", `{"message":"hi","session_id":"a b"}`, nil, 400, "session id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, srv, c.body, c.hdr)
			if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s; want %d %q", resp.StatusCode, body, c.code, c.want)
			}
			var eb chatapi.ErrorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error == "" {
				t.Fatalf("body %q is not an ErrorBody", body)
			}
			if strings.Contains(eb.Error, "orchestrator.") || strings.Contains(eb.Error, "T010") {
				t.Fatalf("the error names internals: %q", eb.Error)
			}
		})
	}
	resp, err := http.Get(srv.URL + chatapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestNoPasswordConfiguredRefusesEveryone(t *testing.T) {
	srv := newServer(t, llmtest.NewFake("qwen"), chatapi.Config{User: "admin"})
	resp, _ := post(t, srv, `{"message":"hi"}`, map[string]string{"auth": "admin:"})
	if resp.StatusCode != 401 {
		t.Fatalf("%d", resp.StatusCode)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := chatapi.New(chatapi.Config{}, nil); err == nil {
		t.Fatal("nil Chatter accepted")
	}
	o := chatter(func(context.Context, orchestrator.Turn) (*orchestrator.Reply, error) { return nil, nil })
	if _, err := chatapi.New(chatapi.Config{MaxBodyBytes: -1}, o); err == nil {
		t.Fatal("negative MaxBodyBytes accepted")
	}
}

type chatter func(context.Context, orchestrator.Turn) (*orchestrator.Reply, error)

func (c chatter) Chat(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error) {
	return c(ctx, t)
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{"session_id":"abc","message":"x"}`, `{"session_id":null,"message":"x"}`,
		`{}`, `[]`, `null`, `{"message":1}`, `{"message":"a"}{}`, "{\"message\":\"\xff\"}", `{"message":"\u0000"}`, ``, `   `, `{"a":`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := chatapi.ParseRequest(strings.NewReader(body), 4096)
		if err != nil {
			if req != (chatapi.Request{}) {
				t.Fatalf("an error with a non-zero request %+v", req)
			}
			if strings.ContainsAny(err.Error(), "\x00\x1b") {
				t.Fatalf("error %q carries control characters", err)
			}
			return
		}
		// What parses re-encodes to the same request.
		b, _ := json.Marshal(req)
		again, err := chatapi.ParseRequest(strings.NewReader(string(b)), 1<<20)
		if err != nil || again != req {
			t.Fatalf("round trip of %q: %+v %v", body, again, err)
		}
	})
}

func FuzzReadEvents(f *testing.F) {
	for _, s := range []string{"event: token\ndata: {\"text\":\"a\"}\n\n", "data: x\n\n", ": comment\n\nevent: done\ndata: {}\n\n", "event: x\n", "data:\ndata:\n\n", "event:\r0", "event: a\r\ndata: b\r\rdata: c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		events, err := chatapi.ReadEvents(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, ev := range events {
			if strings.ContainsAny(ev.Name, "\r\n") || strings.ContainsAny(string(ev.Data), "\r") {
				t.Fatalf("event name %q spans lines", ev.Name)
			}
		}
	})
}

func TestRateLimitPerClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		h, err := chatapi.New(chatapi.Config{User: user, Pass: pass, RateLimit: 3, RateWindow: time.Minute},
			chatter(func(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
				calls++
				return &orchestrator.Reply{Outcome: orchestrator.OutcomeAnswered, Answer: "ok"}, nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		do := func(remote string, auth bool) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, chatapi.Path, strings.NewReader(`{"message":"hi"}`))
			req.RemoteAddr = remote + ":40000"
			if auth {
				req.SetBasicAuth(user, pass)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		// Failed logins count too: guessing is slowed down.
		if rec := do("127.0.0.1", false); rec.Code != 401 {
			t.Fatalf("%d", rec.Code)
		}
		for i := range 2 {
			if rec := do("127.0.0.1", true); rec.Code != 200 {
				t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
			}
		}
		time.Sleep(20 * time.Second)
		rec := do("127.0.0.1", true)
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "40" || !strings.Contains(rec.Body.String(), "at most 3 per 1m0s") {
			t.Fatalf("over the limit: %d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
		if rec := do("127.0.0.2", true); rec.Code != 200 {
			t.Fatalf("another client: %d", rec.Code)
		}
		time.Sleep(40 * time.Second)
		if rec := do("127.0.0.1", true); rec.Code != 200 {
			t.Fatalf("next window: %d", rec.Code)
		}
		if calls != 4 {
			t.Fatalf("%d turns ran, want 4", calls)
		}
	})
}
