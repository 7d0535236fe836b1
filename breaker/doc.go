// Package breaker is a generic circuit breaker for calls to a service that
// can fail or rate-limit you, built for the Gemini escalation path of Talos
// but usable for any call.
//
// A Breaker is Closed (calls pass), Open (calls fail fast with a T205
// CIRCUIT_OPEN error) or HalfOpen (a few probe calls decide). The defaults are
// the spec's ("Gemini Circuit Breaker"): it opens after 5 failures within a
// sliding 300 s window (not 5 in a row), stays open 60 min, then admits at
// most 3 probes; 2 probe successes close it and any probe failure re-opens it.
//
// Beyond the spec:
//
//   - The open period can follow a ladder (Config.OpenFor, for example
//     1 m → 5 m → 25 m → 60 m): each re-open climbs one step, and a trip long
//     enough after a clean close starts again at the bottom.
//   - A Classifier maps each error to a Verdict: Success, Failure, Ignore
//     (a cancelled context; a content refusal in the Gemini classifier) or
//     Trip, with an optional Delay. RateLimitVerdict implements the spec's 429
//     table: Retry-After ≤ 300 s waits Retry-After + 1 s without opening,
//     > 300 s opens, none backs off exponentially from 5 s to 60 s.
//     ParseRetryAfter reads both header forms and Google's "37s" durations.
//   - Remaining tells a UI or a Retry-After header how long calls will still be
//     rejected; Stats gives counters; Config.OnStateChange is a hook.
//   - Two-step use: Allow returns a Ticket, the caller makes the call and
//     reports with Ticket.Done(err). Execute wraps both for one function call.
//   - A Store (MemoryStore here, a Redis adapter in breaker/redisstore) counts
//     failures across processes and keeps trips, so Sync at start-up restores
//     an open breaker after a restart and Watch shares one breaker between
//     processes. Half-open progress is shared too: the probe quota and the
//     probe successes of one half-open period are counted in the Store, so
//     one-shot processes (one call each, like `talos ask`) close the shared
//     breaker after HalfOpenSuccesses of them succeed; a probe slot whose
//     process died is freed after Config.ProbeLease.
//     breaker/breakertest is the conformance suite for stores.
//
// No lock is held while a call runs. The closed-success and open-reject paths
// are a few atomic operations with no allocation and no clock read; the
// switch from Open to HalfOpen is made by a timer. docs/benchmarks.md (breaker section) has
// the numbers next to sony/gobreaker.
package breaker
