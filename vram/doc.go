// Package vram arbitrates GPU memory between local models that cannot all
// fit at once: the "VRAM mutex".
//
// # Leases and swaps
//
// A Mutex has five states: Idle, Loading(m), Ready(m), Unloading(m) and
// Error. Code that runs an inference first takes a lease and keeps it for
// the whole inference:
//
//	lease, err := m.Acquire(ctx, "coder")
//	if err != nil { ... }
//	defer lease.Release()
//	// generate with "coder": it cannot be unloaded until Release
//
// Any number of leases may share the resident model. A request for another
// model waits until every lease is released; then the resident model is
// unloaded and the requested one loaded. Requests are served first come,
// first served: once a swap waits, new requests for the resident model queue
// behind it, so a steady stream of coder requests cannot starve vision.
// A request that waits longer than Config.AcquireTimeout (30 s) gets T100 and
// changes nothing.
//
// # Loads and unloads
//
// A load needs more free VRAM than the model's Config.Models[m].MinFree
// (coder 7 GB, vision 9 GB by default), read from a GPU (see package
// vram/nvml), and a model the Runtime has; otherwise Acquire fails (T102,
// T110, T203) and nothing changes. A load that fails or takes longer than
// 30 s is unloaded again. An unload is complete when the runtime no longer
// lists the model and used VRAM dropped by at least 80% of the model's size.
// A model the runtime already dropped (keep-alive expiry) needs no VRAM drop,
// and a configured model the runtime holds while the mutex is Idle (after a
// daemon restart) is taken over and swapped out before another one loads.
//
// # Kill ladder
//
// An unload that is not complete after 29 s is hung: the ladder sends
// SIGTERM to the model's runner process (found by a RunnerLocator), waits
// 10 s, sends SIGKILL, and verifies the process is gone (a zombie child is
// reaped). Loads then pause for a 60 s cooldown, after which post-kill
// diagnostics run (GPU readable, runtime no longer lists the model, mutex
// consistent). A runner that survives SIGKILL, or a critical diagnostic,
// puts the mutex in Error (T107 GPU_UNRECOVERABLE): every Acquire fails
// until an operator frees the GPU and calls Reset. Talos never resets the
// GPU itself.
//
// # Observing it
//
// Stats returns the state, resident model, leases, waiters, counters, a
// wait-time histogram, the transitions taken and the last kill report.
// Package vram/vramprom exports the same as Prometheus metrics without
// touching the global registry; Handler serves Stats as JSON for `talos gpu
// status`.
//
// Package vram/vramtest has fakes of the Runtime, the GPU and the process
// table for tests (they work inside testing/synctest), and the conformance
// suites for Runtime and GPU implementations.
package vram
