package dreamtest_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/dream/dreamtest"
)

func TestRunPhaseResumesWithProgress(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	runs := 0
	p := dream.Phase{Name: "count", Timeout: time.Minute, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		runs++
		var from int64
		if ok, _ := dream.LoadProgress(ctx, &from); ok {
			return dream.PhaseResult{Counters: map[string]int64{"from": from}}, nil
		}
		if err := dream.SaveProgress(ctx, 500); err != nil {
			return dream.PhaseResult{}, err
		}
		cancel()
		return dream.PhaseResult{}, ctx.Err()
	}}
	r, err := dreamtest.RunPhase(ctx, dir, p)
	if err != nil || r.Status != dream.StatusInterrupted {
		t.Fatalf("first run = %+v, %v", r, err)
	}
	r, err = dreamtest.RunPhase(t.Context(), dir, p)
	if err != nil || r.Status != dream.StatusOK || r.Counters["from"] != 500 || runs != 2 {
		t.Fatalf("resumed run = %+v, %v (runs %d)", r, err, runs)
	}
}

func TestAlerts(t *testing.T) {
	var a dreamtest.Alerts
	_ = a.Alert(t.Context(), dream.Alert{Kind: dream.AlertIdlePhase, Severity: talos.SeverityWarning})
	_ = a.Alert(t.Context(), dream.Alert{Kind: dream.AlertEscalation, Severity: talos.SeverityCritical})
	if len(a.All()) != 2 || len(a.Of(dream.AlertEscalation)) != 1 {
		t.Fatalf("alerts = %+v", a.All())
	}
}

func ExampleRunPhase() {
	dir, err := os.MkdirTemp("", "dreamtest")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	r, err := dreamtest.RunPhase(context.Background(), dir, dream.Phase{Name: "hello", Timeout: time.Second,
		Run: func(ctx context.Context) (dream.PhaseResult, error) {
			return dream.PhaseResult{Counters: map[string]int64{"greeted": 1}}, nil
		}})
	fmt.Println(r.Name, r.Status, r.Counters, err)
	// Output: hello ok map[greeted:1] <nil>
}
