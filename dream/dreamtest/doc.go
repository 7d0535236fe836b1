// Package dreamtest helps test code that uses package dream: Alerts, a
// recording Alerter, and RunPhase, which runs one phase the way a cycle does
// (its timeout, panic recovery, and SaveProgress/LoadProgress across an
// interruption), for the packages that own phases.
package dreamtest
