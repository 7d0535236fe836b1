// Package reaper keeps Talos's process and container tree clean: it owns
// wait4 for the process, terminates idle processes, respawns crashed
// containers with a backoff, and hunts old leftovers at night.
//
// # One owner of wait4
//
// A Go process that both reaps zombies (as PID 1 or a subreaper) and runs
// children with os/exec has a race: the reaper's wait4(-1) can collect a
// child's status before exec.Cmd.Wait does, which then fails with ECHILD
// (the known go-reaper bug). Here the Reaper is the only caller of wait4:
//
//	r, err := reaper.New(reaper.Config{Subreaper: true}, nil)
//	defer r.Close()
//	c := r.Command("worker", "--once") // a wrapped exec.Cmd
//	err = c.Run()                        // status comes from the Reaper
//
// On SIGCHLD the Reaper loops wait4(-1, WNOHANG) and hands each (pid,
// status) to the Command that started it. Command.Start forks while holding
// the lock the Reaper needs to deliver, so even a child that exits at once
// is registered first. Statuses of PIDs nobody registered (orphans
// re-parented to us, children a library started) are kept for
// UnknownStatusTTL for WaitPID. While a Reaper runs, start every child
// through it; only one Reaper may run per process.
//
// RunInit (the `talos reap -- CMD` command) is a tiny init like tini: the
// child runs in its own process group, SIGTERM/INT/HUP/QUIT/USR1/USR2 are
// forwarded to the group, orphans are reaped, and the exit code is the
// child's (128+N if signal N killed it).
//
// # Idle reaping
//
// Idle (built into the Reaper as Watch/Touch) sends SIGTERM to a watched
// process idle for strictly more than 300 s and SIGKILL 10 s later. It
// checks the process's start time before every signal, so a reused PID is
// never hit, and it treats a zombie as gone (kill(pid, 0) would not).
//
// # Containers
//
// Manager creates one container per session through an Engine (reaper/docker
// implements it with the moby client; in the daemon it points at the socket
// proxy's maintenance listener) with the spec's limits: 512 MB, no swap,
// one CPU, 100 PIDs, all capabilities dropped, read-only root, tmpfs /tmp
// 100 MB and /home/browser/data 50 MB, no network unless configured, and
// the talos.managed=true label. Respawn waits 5, 10, 20, 40, 80 s and then
// fails with ErrMaxRespawns; the counter restarts after ResetAfter without
// respawns (the spec never resets it).
//
// # Zombie hunt
//
// Hunter (a phase of the nightly cycle) stops and removes only containers
// labelled talos.managed=true that are older than 3 days and not active,
// and terminates only processes Talos registered (Registry) that are older
// than 3 days and idle — never itself, its ancestors (the /proc ppid chain)
// or protected services. Its HuntReport lists what it did and what it
// skipped and why.
//
// reapertest has a fake Engine and the Engine conformance suite;
// proctest.Procs is a fake Processes.
package reaper
