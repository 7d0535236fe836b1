//go:build talostest

package host

import (
	"testing"
	"time"
)

// A talostest build reads the phase-delay knob.
func TestTestBuildReadsThePhaseDelay(t *testing.T) {
	t.Setenv(EnvTestPhaseDelay, PhaseConsolidate+"=1h")
	d, err := lookupPhaseDelay()
	if err != nil || d.phase != PhaseConsolidate || d.wait != time.Hour {
		t.Fatalf("lookupPhaseDelay = %+v, %v; want %s for an hour", d, err, PhaseConsolidate)
	}
}
