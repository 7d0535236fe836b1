package dashboard

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/quarantine"
)

// A source that hangs is cut off after DataTimeout: the overview and the
// skills answer, naming the deadline, instead of hanging the page.
func TestDataTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
		d, err := New(Config{User: testUser, Pass: testPass, DataTimeout: 3 * time.Second}, Deps{
			Health: func(ctx context.Context) (health.Report, error) { return health.Report{}, hang(ctx) },
			Skills: func(ctx context.Context) ([]quarantine.Record, error) { return nil, hang(ctx) },
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{OverviewPath, SkillsPath} {
			start := time.Now()
			req := httptest.NewRequest(http.MethodGet, p, nil)
			req.SetBasicAuth(testUser, testPass)
			rec := httptest.NewRecorder()
			d.ServeHTTP(rec, req)
			if took := time.Since(start); took != 3*time.Second {
				t.Errorf("%s answered after %s, want the 3 s DataTimeout", p, took)
			}
			var v struct {
				Error  string `json:"error"`
				Health struct {
					Error string `json:"error"`
				} `json:"health"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
			if msg := v.Error + v.Health.Error; rec.Code != http.StatusOK || !strings.Contains(msg, "no answer within 3s (context deadline exceeded)") {
				t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
			}
		}
	})
}
