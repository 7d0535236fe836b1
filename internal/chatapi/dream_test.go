package chatapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/chatapi"
)

func TestDreamHandler(t *testing.T) {
	var reasons []string
	busy := false
	h, err := chatapi.NewDreamHandler(chatapi.Config{User: "admin", Pass: "Str0ng!Passw0rd#2026"}, func(ctx context.Context, reason string) (*dream.Report, error) {
		if busy {
			return nil, talos.Errorf(talos.CodeMaintenanceBusy, "dream.RunNow", "a dream cycle is already running (pid 42)")
		}
		reasons = append(reasons, reason)
		return &dream.Report{ID: "2026-12-07-operator", Kind: dream.KindOperator, Reason: reason, Outcome: dream.OutcomeOK}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(method, body string, auth bool) (int, string) {
		req := httptest.NewRequest(method, chatapi.DreamPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.SetBasicAuth("admin", "Str0ng!Passw0rd#2026")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	if c, _ := post("POST", "", false); c != http.StatusUnauthorized || len(reasons) != 0 {
		t.Fatalf("without credentials: %d, ran %v", c, reasons)
	}
	if c, _ := post("GET", "", true); c != http.StatusMethodNotAllowed || len(reasons) != 0 {
		t.Fatalf("GET: %d, ran %v", c, reasons)
	}
	if c, body := post("POST", `{"reason":1,"now":true}`, true); c != http.StatusBadRequest || len(reasons) != 0 ||
		!strings.Contains(body, `field \"now\" is unknown`) || !strings.Contains(body, "field reason is 1: it must be a string") {
		t.Fatalf("bad body: %d %s, ran %v", c, body, reasons)
	}
	c, body := post("POST", "", true)
	var rep dream.Report
	if c != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || rep.ID != "2026-12-07-operator" || rep.Reason != "operator: POST "+chatapi.DreamPath {
		t.Fatalf("run: %d %s", c, body)
	}
	if c, _ := post("POST", `{"reason":"operator: talos dream run --now"}`, true); c != http.StatusOK || reasons[len(reasons)-1] != "operator: talos dream run --now" {
		t.Fatalf("reason: %d %v", c, reasons)
	}
	busy = true
	if c, body := post("POST", "", true); c != http.StatusConflict || !strings.Contains(body, "already running") {
		t.Fatalf("busy: %d %s", c, body)
	}
	if _, err := chatapi.NewDreamHandler(chatapi.Config{}, nil); talos.CodeOf(err) != talos.CodeConfigInvalid {
		t.Errorf("nil run: %v", err)
	}
}

// A cycle longer than the server's write timeout still delivers its
// report: the handler lifts the deadline for the request.
func TestDreamHandlerOutlastsTheWriteTimeout(t *testing.T) {
	h, err := chatapi.NewDreamHandler(chatapi.Config{User: "admin", Pass: "Str0ng!Passw0rd#2026"}, func(ctx context.Context, reason string) (*dream.Report, error) {
		time.Sleep(300 * time.Millisecond) // a real server's clock: six write timeouts
		return &dream.Report{ID: "slow", Outcome: dream.OutcomeOK}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+chatapi.DreamPath, nil)
	req.SetBasicAuth("admin", "Str0ng!Passw0rd#2026")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the report did not arrive: %v", err)
	}
	defer resp.Body.Close()
	var rep dream.Report
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&rep) != nil || rep.ID != "slow" {
		t.Fatalf("%d %+v", resp.StatusCode, rep)
	}
}
