// Package host is the daemon's composition root: it builds, from one
// configuration, the components that the daemon and the CLI commands share,
// so that no command chooses its own adapters.
//
// It builds the relational store's address and schemas (SQLDSN, Schemas),
// the skill lifecycle (OpenSkills: the quarantine manager and the strike
// tracker on that store, with secret keys from TALOS_HOME/keys made on first
// use by Key), and the nightly maintenance cycle (Maintenance): the dream
// scheduler of TALOS_HOME/data/dream with the phases the host owns —
// redis_flush (when Redis is configured), vector_prune, memory_consolidate,
// session_summarize (when a model is configured: the day's conversations
// become long-term memories, never commands, secrets or flagged text),
// log_compress, zombie_hunt (when Docker is configured), strike_expiry,
// skills_verify, backup (with TALOS_BACKUP_KEEP: a backup in
// TALOS_HOME/backups, the newest N kept) and health_report. At shutdown StopContainers stops and
// removes this home's labelled containers (LabelInstance). The memory store is chosen once, by OpenMemory, and the
// MCP servers of config.yaml are started by OpenMCP.
// `talos run` runs its schedule; `talos dream run --now` and `talos dream
// status` use the same scheduler, and the cross-process lock keeps one cycle
// at a time between them.
//
// OpenAgent builds the agent: the chat loop (package orchestrator) over the
// system prompts, the local model, the cloud model behind its breaker, the
// firewall with its persisted lockdown, history, long-term memory, the VRAM
// lease and a token counter, and lists each adapter it chose (Adapters) so
// /health can say exactly what is in use. `talos run` serves it, `talos ask`
// and `talos chat` talk to it.
package host
