package chatapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/chatapi"
)

func TestPanicHandler(t *testing.T) {
	var got []string
	h, err := chatapi.NewPanicHandler(chatapi.Config{User: "admin", Pass: "Str0ng!Passw0rd#2026"}, func(r string) { got = append(got, r) })
	if err != nil {
		t.Fatal(err)
	}
	post := func(body string, auth bool) int {
		req := httptest.NewRequest("POST", chatapi.PanicPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.SetBasicAuth("admin", "Str0ng!Passw0rd#2026")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if c := post(`{"reason":"x"}`, false); c != http.StatusUnauthorized || len(got) != 0 {
		t.Fatalf("without credentials: %d, triggered %v", c, got)
	}
	if c := post(`{"reason":"x","force":true}`, true); c != http.StatusBadRequest || len(got) != 0 {
		t.Fatalf("unknown field: %d, triggered %v", c, got)
	}
	if c := post(`{"reason":"the agent is acting up"}`, true); c != http.StatusAccepted || len(got) != 1 || got[0] != "the agent is acting up" {
		t.Fatalf("panic: %d, %v", c, got)
	}
	if c := post(``, true); c != http.StatusAccepted || len(got) != 2 {
		t.Fatalf("empty body: %d, %v", c, got)
	}
}
