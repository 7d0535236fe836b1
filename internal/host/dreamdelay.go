package host

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/redact"
)

// EnvTestPhaseDelay is a knob for end-to-end tests only, never for
// operators: "PHASE=DURATION" (for example "memory_consolidate=2m") makes
// that maintenance phase wait DURATION, or until its context ends, before it
// does its work, so that a test can kill a real daemon while the phase is
// running. Unset, no phase waits. Only a binary built with the talostest
// build tag (as the end-to-end tests build it) reads it; the one users
// build ignores it.
const EnvTestPhaseDelay = "TALOS_TEST_DREAM_PHASE_DELAY"

// phaseDelay is a parsed EnvTestPhaseDelay.
type phaseDelay struct {
	phase string
	wait  time.Duration
}

// parsePhaseDelay reads EnvTestPhaseDelay from v ("" is no delay).
func parsePhaseDelay(v string) (phaseDelay, error) {
	if v == "" {
		return phaseDelay{}, nil
	}
	name, dur, ok := strings.Cut(v, "=")
	d, err := time.ParseDuration(dur)
	if !ok || name == "" || err != nil || d <= 0 {
		return phaseDelay{}, talos.Errorf(talos.CodeConfigInvalid, "host.NewMaintenance",
			"%s %s: want PHASE=DURATION with a positive Go duration, such as memory_consolidate=2m (a test-only knob: unset it)",
			EnvTestPhaseDelay, redact.Value(v))
	}
	return phaseDelay{phase: name, wait: d}, nil
}

// wrap returns p, made to wait first when it is the delayed phase.
func (d phaseDelay) wrap(p dream.Phase) dream.Phase {
	if d.phase == "" || p.Name != d.phase {
		return p
	}
	run := p.Run
	p.Run = func(ctx context.Context) (dream.PhaseResult, error) {
		t := time.NewTimer(d.wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return dream.PhaseResult{}, fmt.Errorf("%s: stopped while waiting: %w", EnvTestPhaseDelay, ctx.Err())
		case <-t.C:
		}
		return run(ctx)
	}
	return p
}
