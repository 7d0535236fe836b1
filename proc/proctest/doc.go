// Package proctest helps test code built on proc.Processes: Procs is an
// in-memory process table to hand to the code under test, Run is the
// conformance suite that proc.OS and every fake of proc.Processes pass, and
// Start starts a real child process for it.
package proctest
