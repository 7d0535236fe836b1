// Package svccheck probes the services the daemon can use: Redis (PING,
// its eviction policy, a write/read/delete probe), PostgreSQL (connect and
// `select 1`), Chroma (the v2 heartbeat), a Docker engine or socket proxy
// (`/_ping` with API-version negotiation, since the engine here speaks API
// 1.41) and Ollama (`/api/version`).
//
// Each probe makes one attempt, bounded by DefaultProbeTimeout unless the
// context ends sooner, and fails with the registry code of its service
// (T001 Redis, T002 Chroma, T003 PostgreSQL, T009 Docker), a message that
// names the address (passed through redact.URL, so never a password or
// token) and what to check. The
// boot step wraps a probe in boot.Retry with the spec's attempt counts; the
// health checks call it once per evaluation. Redis and Docker probers keep
// a small connection pool and reconnect by themselves when the server comes
// back, so one prober serves the daemon's whole life.
//
// CheckPolicy only reads the Redis eviction policy; ApplyMemory changes it
// (the original boot sequence does CONFIG SET) and is meant for a Redis the
// daemon owns, never a shared one.
//
// The svcchecktest subpackage starts a private redis-server for tests that
// need to stop and restart a dependency.
package svccheck
