// Package dream runs Talos's nightly maintenance cycle, the "dream" (by
// default at 04:00, with recovery retries after failures): a schedule,
// phases registered by the packages that own the work, checkpoints, recovery
// retries, escalation and a report per cycle.
//
// # Starting
//
//	s, err := dream.New(dream.Config{StateDir: dir, Location: loc}, alerter)
//	err = s.Register(cleaner.Phase())     // redis_flush, from dream/redisphase
//	err = s.Register(dream.Phase{Name: dream.PhaseVectorPrune, Run: prune})
//	go s.Run(ctx)                          // the schedule; resumes a killed cycle first
//	rep, err := s.RunNow(ctx, "operator")  // talos dream run --now
//	rep, err = s.Request(ctx, "disk 82%")  // the disk monitor: at most one an hour
//
// # Schedule
//
// The schedule is a five-field cron expression, "0 4 * * *" by default,
// on the wall clock of Config.Location (ParseSchedule; daylight-saving
// gaps and repeats are handled, see Schedule.Next). Each window runs at most
// once, across processes: the ledger in the state directory records the
// window when its cycle starts. A window that cannot start within
// StartGrace (1 h) of its time, or that passed while no process ran, is
// missed and raises an AlertMissedWindow.
//
// # One cycle at a time
//
// A cycle holds an exclusive flock(2) on StateDir/dream.lock, so two
// schedulers (two goroutines, or the daemon and a `talos dream run --now`
// in another process) never run at once: the second gets T011
// (talos.ErrMaintenanceBusy) naming the holder's PID. RunNow, Request and
// Resume first wait up to two seconds for the lock, because Run takes it
// for a moment whenever it wakes to look for due work. The kernel drops the
// lock when its holder dies, however it dies, so a crash never blocks the
// next cycle.
//
// # Phases
//
// Phases run in registration order, each under its own timeout (the spec's
// redis_flush 30 s, vector_prune 900 s, log_compress 300 s, zombie_hunt
// 300 s, health_report 60 s, or Phase.Timeout) and all inside the cycle's
// 1,800 s. A phase that fails, panics or times out does not stop the next;
// the cycle deadline does (the rest are reported "not_run"). A phase that
// ignores its context is abandoned 5 s after its deadline.
//
// # Checkpoints and resume
//
// The checkpoint (StateDir/checkpoint.json, written atomically: temporary
// file, fsync, rename, fsync of the directory) is rewritten before and after
// every phase. If the process dies, Resume (called by Run at start) runs the
// rest of the cycle: finished phases are not run again, the interrupted
// one starts again and gets back what it stored with SaveProgress through
// LoadProgress. A phase during which the process died twice is given up for
// that cycle. A cycle older than the latest window is not resumed: that
// window's cycle runs everything again.
//
// # Recovery and escalation
//
// After a cycle with failed, timed-out or not-run phases, Run retries just
// those phases 300, 900 and 3,600 s later (Config.RetryBackoff), each retry
// after the previous one ended. A retry that could not finish before the next
// window is not started. When phases still fail after the last retry, or no
// retry fits, an escalation file (StateDir/escalations/<unix>.json: time,
// phases, error, checkpoint, severity CRITICAL, action required) is written
// and a critical AlertEscalation is raised through the Alerter.
//
// # Reports
//
// Every cycle writes StateDir/reports/<id>.json and a readable <id>.txt
// (Report.Summary); the newest 30 are kept. Per phase they say what it did
// (its counters, such as keys_deleted or bytes_compressed), how long it took,
// and why it was skipped, not run or cut off. A phase that does nothing
// useful (an error, a timeout, or all-zero counters without a reason) in 7
// scheduled cycles in a row raises an AlertIdlePhase.
package dream
