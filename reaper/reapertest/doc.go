// Package reapertest provides an in-memory reaper.Engine for testing code
// that uses package reaper, and the conformance suite every reaper.Engine
// implementation passes. The fake process table for reaper.Processes is
// proctest.Procs.
package reapertest
