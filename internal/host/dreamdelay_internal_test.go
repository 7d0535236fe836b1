package host

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/dream"
)

func TestPhaseDelayParse(t *testing.T) {
	if d, err := parsePhaseDelay(""); err != nil || d.phase != "" {
		t.Errorf("unset: %+v, %v", d, err)
	}
	if d, err := parsePhaseDelay("memory_consolidate=2m"); err != nil || d.phase != "memory_consolidate" || d.wait != 2*time.Minute {
		t.Errorf("memory_consolidate=2m: %+v, %v", d, err)
	}
	for _, bad := range []string{"memory_consolidate", "=2m", "x=soon", "x=-1s", "x=0s", "x=\x1b[2J"} {
		_, err := parsePhaseDelay(bad)
		if err == nil || !strings.Contains(err.Error(), EnvTestPhaseDelay) || !strings.Contains(err.Error(), "PHASE=DURATION") || strings.Contains(err.Error(), "\x1b") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// The delayed phase waits its delay, then does its work; another phase
// does not wait; a context that ends first stops the wait.
func TestPhaseDelayWraps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := phaseDelay{phase: "slow", wait: time.Minute}
		ran := 0
		work := func(context.Context) (dream.PhaseResult, error) { ran++; return dream.PhaseResult{}, nil }
		start := time.Now()
		if _, err := d.wrap(dream.Phase{Name: "fast", Run: work}).Run(t.Context()); err != nil || time.Since(start) != 0 || ran != 1 {
			t.Errorf("fast: %v after %v, ran %d", err, time.Since(start), ran)
		}
		if _, err := d.wrap(dream.Phase{Name: "slow", Run: work}).Run(t.Context()); err != nil || time.Since(start) != time.Minute || ran != 2 {
			t.Errorf("slow: %v after %v, ran %d", err, time.Since(start), ran)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := d.wrap(dream.Phase{Name: "slow", Run: work}).Run(ctx); err == nil || ran != 2 {
			t.Errorf("cancelled: %v, ran %d", err, ran)
		}
	})
}
