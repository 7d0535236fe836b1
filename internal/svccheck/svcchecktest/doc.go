// Package svcchecktest starts throwaway service processes for tests that
// must watch a dependency go down and come back, which the shared harness
// services (used by every engineer's tests at once) must never do.
package svcchecktest
