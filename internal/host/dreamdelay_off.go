//go:build !talostest

package host

// lookupPhaseDelay returns no delay: EnvTestPhaseDelay is read only by a
// test build (the talostest tag), so a binary users build ignores it.
func lookupPhaseDelay() (phaseDelay, error) { return phaseDelay{}, nil }
