// Package health answers "is the daemon well, and if not, what is wrong?"
// for operators, scripts and Prometheus.
//
// Register one Check per dependency or resource: a name, whether it is
// Critical, a timeout and a function that returns a short detail and an
// error. A Checker runs all checks concurrently, each under its own
// timeout, and combines them:
//
//   - healthy: every check passed;
//   - degraded: a non-critical check failed, or any check warned (Warnf);
//     the daemon still serves, HTTP 200;
//   - unhealthy: a critical check failed, HTTP 503.
//
// Results are cached for a short interval (one second by default), and
// concurrent requests share one evaluation, so GET /health is cheap. Run
// re-evaluates in the background: a dependency that goes down turns the
// status degraded, and back to healthy when it returns, without a restart;
// each change is logged.
//
// A Server serves GET /health (the JSON Report: status, version, uptime_s
// and checks {name: {status, latency_ms, detail}}), GET /ready (200 once
// SetReady(true), else 503) and GET /metrics (Prometheus, from the Metrics
// registry of its own: a gauge per check, the overall status, build
// information, Go and process collectors). It refuses to listen anywhere
// but loopback unless ServerConfig.AllowNonLoopback is set.
//
// Embedded defaults are checks too (a Func that returns "embedded
// in-memory cache"), so /health always lists every dependency and says
// which backend serves it.
package health
