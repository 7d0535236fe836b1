package dashboard

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Whatever the method, path and Authorization header, a request without
// the operator's exact credentials gets 401 and no data, and every answer
// carries the CSP and frame denial.
func FuzzRequestsWithoutCredentials(f *testing.F) {
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPass))
	f.Add("GET", "/", "")
	f.Add("GET", OverviewPath, "Basic "+base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPass+" ")))
	f.Add("POST", ChatPath, "Basic "+base64.StdEncoding.EncodeToString([]byte(testUser+":")))
	f.Add("GET", "/static/../api/overview", "Bearer x")
	f.Add("GET", "/skills", "basic "+base64.StdEncoding.EncodeToString([]byte(strings.ToUpper(testUser)+":"+testPass)))
	f.Add("PUT", "/api/skills", "Basic !!!")
	hits := new(int)
	d, err := New(Config{User: testUser, Pass: testPass}, fakeDeps(hits))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, path, authz string) {
		if authz == good || !validMethod(method) {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", strings.NewReader(`{"message":"hi"}`))
		req.Method = method
		req.URL.Path = "/" + strings.TrimPrefix(path, "/")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			// Only the exact credentials pass; a header that decodes to
			// them some other way ("basic" in lower case) is still them.
			if u, p, ok := req.BasicAuth(); !ok || u != testUser || p != testPass {
				t.Fatalf("%s %q with Authorization %q: status %d", method, req.URL.Path, authz, rec.Code)
			}
		} else if strings.Contains(rec.Body.String(), "pwned") || *hits != 0 {
			t.Fatalf("%s %q: data in a refused answer or the chat reached", method, req.URL.Path)
		}
		if rec.Header().Get("Content-Security-Policy") != CSP || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s %q: security headers missing", method, req.URL.Path)
		}
	})
}

// validMethod reports whether m is an HTTP token a server could receive.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
			return false
		}
	}
	return true
}

// Whatever the frame, the decoder never panics, and what it accepts is a
// chat with a message or a bare abort that survives a round trip.
func FuzzDecodeWSMessage(f *testing.F) {
	for _, s := range []string{`{"type":"chat","message":"hi"}`, `{"type":"abort"}`, `{"type":"chat","message":"x","session_id":"s"}`,
		`{"type":"chat"}`, `[]`, `{"type":null}`, `{"type":"abort"}{}`, "{\"type\":\"\xff\"}", `{"message":{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeWSMessage(b)
		if err != nil {
			if m != (WSMessage{}) {
				t.Fatalf("refused frame left a value: %+v", m)
			}
			return
		}
		switch m.Type {
		case WSChat:
			if strings.TrimSpace(m.Message) == "" {
				t.Fatalf("accepted a chat without a message: %q", b)
			}
		case WSAbort:
			if m.Message != "" || m.SessionID != "" {
				t.Fatalf("accepted an abort with content: %q", b)
			}
		default:
			t.Fatalf("accepted type %q", m.Type)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if m2, err := DecodeWSMessage(again); err != nil || m2 != m {
			t.Fatalf("round trip of %q: %+v, %v", again, m2, err)
		}
	})
}
