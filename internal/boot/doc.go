// Package boot runs the daemon's start-up as ordered, timed steps (the
// original specification's "first boot sequence") and writes the ready
// marker.
//
// A Step has a name, a timeout and a Run function. A Runner runs steps
// strictly in order, each under its own timeout, and measures each one.
// Every step ends in one of four outcomes:
//
//   - OK: it worked; its detail says what it found ("PONG from
//     127.0.0.1:6379", "not configured: in-process memory store").
//   - Degraded: it failed but is not Fatal (or it returned an error made
//     with Warn); the boot goes on and the system runs degraded. These are
//     the "warn and continue" rows of the spec's failure matrix.
//   - Failed: a Fatal step failed; the boot stops, later steps are Skipped,
//     and Run returns a *StepError that names the step and unwraps to the
//     step's own error, so errors.Is(err, talos.ErrRedis) still works.
//   - Skipped: the step returned ErrSkip (for example the socket proxy is
//     disabled), or it never ran because the boot stopped earlier.
//
// Retry implements the spec's fixed-interval service waits (Redis 10 tries,
// Chroma and PostgreSQL 15, 1 s apart), without the spec's shell bug that
// made the first failure fatal.
//
// The ready marker (Ready, WriteReady, RemoveReady) is JSON written
// atomically (temporary file, fsync, rename) with mode 0600. It carries the
// real outcome of every step, the process id and the health address, so
// `talos health` can find the daemon. A boot that fails writes a marker
// with status "failed" and the step; a clean shutdown removes the marker.
//
// The daemon's own steps (which services, which fallbacks) live in the
// daemon subpackage; this package knows nothing about Redis or PostgreSQL.
package boot
