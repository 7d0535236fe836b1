//go:build !talostest

package host

import "testing"

// A binary built without the talostest tag, the one users run, ignores the
// phase-delay knob even when it is set.
func TestPlainBuildIgnoresThePhaseDelay(t *testing.T) {
	t.Setenv(EnvTestPhaseDelay, PhaseConsolidate+"=1h")
	d, err := lookupPhaseDelay()
	if err != nil || d.phase != "" || d.wait != 0 {
		t.Fatalf("lookupPhaseDelay = %+v, %v; want no delay", d, err)
	}
}
