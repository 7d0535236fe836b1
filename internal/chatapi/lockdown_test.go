package chatapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/firewall/firewalltest"
	"github.com/talos-ironclad/talos/internal/chatapi"
)

func TestLockdownUnlockAndReissue(t *testing.T) {
	ctx := context.Background()
	notifier := &firewalltest.Notifier{}
	lock, err := firewall.NewLockdown(ctx, firewall.LockdownConfig{Key: bytes.Repeat([]byte{1}, 32)}, &firewalltest.MemoryStore{}, notifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := chatapi.NewLockdownHandlers(chatapi.Config{User: user, Pass: pass}, lock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for p, h := range hs {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(path, body string, auth bool) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if auth {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call(chatapi.UnlockPath, `{"code":"123456"}`, true); code != 409 || !strings.Contains(body, "not_in_lockdown") {
		t.Fatalf("%d %s", code, body)
	}
	if _, _, err := lock.Trigger(ctx, "test", "PI-001"); err != nil {
		t.Fatal(err)
	}
	first := notifier.LastCode()
	if code, _ := call(chatapi.UnlockPath, `{"code":"`+first+`"}`, false); code != 401 || !lock.Locked() {
		t.Fatalf("without credentials: %d", code)
	}
	for _, bad := range []string{``, `{"code":123456}`, `{"code":"12ab56"}`, `{"code":"1"}`, `{"code":"123456","x":1}`, `{"code":"123456"}{}`} {
		if code, body := call(chatapi.UnlockPath, bad, true); code != 400 || !strings.Contains(body, "error") {
			t.Fatalf("body %q: %d %s", bad, code, body)
		}
	}
	wrong := "000000"
	if wrong == first {
		wrong = "111111"
	}
	if code, body := call(chatapi.UnlockPath, `{"code":"`+wrong+`"}`, true); code != 403 || !strings.Contains(body, "invalid_code") {
		t.Fatalf("%d %s", code, body)
	}
	code, body := call(chatapi.ReissuePath, ``, true)
	second := notifier.LastCode()
	if code != 200 || second == first || strings.Contains(body, second) {
		t.Fatalf("reissue: %d %s (the code must never be in the answer)", code, body)
	}
	if code, body := call(chatapi.UnlockPath, `{"code":"`+first+`"}`, true); code != 403 || !lock.Locked() {
		t.Fatalf("the old code after a re-issue: %d %s", code, body)
	}
	code, body = call(chatapi.UnlockPath, `{"code":" `+second+` "}`, true)
	var rep chatapi.UnlockReply
	if code != 200 || json.Unmarshal([]byte(body), &rep) != nil || rep.Result != "unlocked" || lock.Locked() {
		t.Fatalf("%d %s", code, body)
	}
	if code, _ := call(chatapi.ReissuePath, `{}`, true); code != 409 {
		t.Fatalf("reissue when unlocked: %d", code)
	}
	if code, _ := call(chatapi.ReissuePath, `{"code":"1"}`, true); code != 400 {
		t.Fatalf("reissue with a body: %d", code)
	}
	resp, _ := http.Get(srv.URL + chatapi.UnlockPath)
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func FuzzParseUnlock(f *testing.F) {
	for _, s := range []string{`{"code":"123456"}`, `{"code":" 123456 "}`, `{}`, `{"code":null}`, `[]`, `{"code":"١٢٣٤٥٦"}`, `{"code":"123456"}x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req, err := chatapi.ParseUnlock([]byte(body))
		if err != nil {
			return
		}
		if len(req.Code) < 6 || len(req.Code) > 12 || strings.Trim(req.Code, "0123456789") != "" {
			t.Fatalf("accepted code %q", req.Code)
		}
	})
}
