//go:build talostest

package host

import "os"

// lookupPhaseDelay reads EnvTestPhaseDelay from the environment: this is a
// test build (the talostest tag).
func lookupPhaseDelay() (phaseDelay, error) { return parsePhaseDelay(os.Getenv(EnvTestPhaseDelay)) }
