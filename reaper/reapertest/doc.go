// Package reapertest provides fakes for testing code that uses package
// reaper — an in-memory Engine and a fake Processes table — and the
// conformance suite every reaper.Engine implementation passes.
package reapertest
