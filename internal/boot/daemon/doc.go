// Package daemon is the Talos daemon's start-up and shutdown: the boot steps
// for this configuration, run by package boot, the health checks and server
// of package health, and the ready marker.
//
// Start runs, in order:
//
//	init           PID 1 / subreaper and the open-file limit (never fatal)
//	directories    the directory tree (package layout; missing → T005)
//	config         re-validates the loaded configuration (T004/T006)
//	prompts        the system prompts (TALOS_PROMPT_*) within their token budget (T010)
//	redis          PING ×10 at 1 s (T001), probe key, eviction policy (warns)
//	chroma         v2 heartbeat ×15 at 1 s (T002)
//	postgres       connect + select 1 ×15 at 1 s (T003)
//	               (without TALOS_CHROMA_URL, memories live in the
//	               relational store by default and the chroma step runs
//	               after postgres, to open them)
//	docker         /_ping ×10 with API negotiation (T009)
//	socket-proxy   /_ping of SOCKET_PROXY_URL when enabled and set (T008)
//	ollama         /api/version once (degrades only)
//	gpu            one GPU reading when Options.GPU is set (see below)
//	…              Options.ExtraSteps (schema, collections, genesis skills)
//	health-server  /health, /ready, /metrics on loopback
//	ready          the marker <home>/.ready, 0600, atomic
//
// A service that is not configured is not an error: the step says what
// replaces it, and /health lists it as a check that says the same, so every
// dependency always appears:
//
//	redis     "in-process memory store (TALOS_REDIS_URL unset)"
//	chroma    with TALOS_MEMORY_STORE=sql (the default), the memories in
//	          the relational store (rag/sqlstore: the SQLite file below, or
//	          PostgreSQL), opened at boot with the dimension
//	          EmbeddedMemoryDimension; the check counts the collection's
//	          rows (memories `talos memory` adds later count too) and names
//	          every damaged record the store skipped when it was opened —
//	          any makes the daemon degraded, and so does a store that
//	          cannot be opened (another embedding dimension: the check
//	          fails with the reason).
//	          With TALOS_MEMORY_STORE=chromem, the embedded chromem-go store
//	          in <home>/data/chromadb, checked without loading it
//	          (chromem.Stat: the dimension EmbeddedChromemDimension and the
//	          record count); a store that does not pass degrades
//	postgres  the embedded SQLite file <home>/data/talos.db (WAL mode),
//	          opened and migrated at boot like a PostgreSQL server; the
//	          check pings it and lists every component's schema version
//
// Correlation IDs (package tlog): the boot has one (Start's context's, or
// a new one; CorrelationID returns it) that every boot log line carries,
// including the first health evaluation's; `talos run` puts the same ID on
// its daemon_started or daemon_boot_failed audit line. Every request to
// the health server gets its own (a valid X-Talos-Correlation-Id header,
// else a new one), echoed in the response and carried in its context.
//
// A configured service that does not answer after the spec's retries stops
// the boot with its T-code and writes a "failed" marker naming the step.
// After the boot, services are watched by health checks that are not
// critical: a service that goes down makes the daemon degraded, and
// healthy again when it returns. The home directory and the disk (≥ 98 %
// used) are critical.
//
// With Options.GPU set (`talos run` passes nvml.Detect), the gpu step reads
// the GPU once. No GPU (no NVML, no nvidia-smi, no device) is fine: the
// step and the always-listed "gpu" check say "no GPU found: VRAM
// arbitration off". A GPU that cannot be read degrades. A readable GPU with
// TALOS_OLLAMA_URL set gets a vram.Mutex driving Ollama (VRAM()), served
// read-only at /vram (what `talos gpu status` shows), exported on /metrics
// as talos_vram_*, and summarised by the gpu check (used/total MB, state).
// Options.Handlers mounts other read-only endpoints the same way.
//
// Stop (or Run's context ending: SIGINT/SIGTERM in `talos run`) marks the
// daemon not ready, removes the marker, stops the health server after
// draining in-flight requests, and closes the service clients and the VRAM
// mutex.
package daemon
