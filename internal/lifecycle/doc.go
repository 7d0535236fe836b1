// Package lifecycle keeps the daemon honest about how it starts and stops:
// a run marker that tells the next boot the last one did not stop cleanly,
// a persisted restart cap (at most 5 unclean restarts an hour, 10 s apart),
// a stall watchdog in its own goroutine (warn when the heartbeat is 5 s
// late, act once at 30 s), and the panic signal file that `talos panic`
// writes and the daemon answers with its one graceful shutdown.
package lifecycle
