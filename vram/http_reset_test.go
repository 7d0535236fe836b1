package vram_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// TestResetHandler: POST takes the mutex out of Error; in any other state it
// answers 409 and changes nothing; other methods are refused.
func TestResetHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		h := vram.ResetHandler(f.m)
		post := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, vram.ResetPath, nil))
			return w
		}
		if w := post(); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "nothing to reset") {
			t.Fatalf("reset while idle: %d %s", w.Code, w.Body)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, vram.ResetPath, nil))
		if w.Code != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d", w.Code)
		}

		f.rt.Runner = func(string) vramtest.Proc { return vramtest.Proc{Behavior: vramtest.Unkillable} }
		mustAcquire(t, f.m, coder).Release()
		var hang atomic.Bool // the runtime's unload hangs until the operator fixes it
		hang.Store(true)
		f.rt.OnUnload = func(ctx context.Context, model string) error {
			if hang.Load() {
				return hangUnload(ctx, model)
			}
			return nil
		}
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeGPUUnrecoverable)
		f.rt.Evict(coder) // the operator freed the GPU
		hang.Store(false)
		if w := post(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"state":"idle"`) {
			t.Fatalf("reset in error: %d %s", w.Code, w.Body)
		}
		mustAcquire(t, f.m, vision).Release()
	})
}
