package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/lifecycle"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/svccheck"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
)

// Exit codes of `talos run`.
const (
	exitRunBootFailed   = 1 // a fatal boot step failed (the message names it)
	exitRunConfigFailed = 2 // the configuration is invalid (every problem listed)
)

func newRunCmd() *cobra.Command {
	var healthAddr string
	var clearRestarts bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Boot the daemon, serve /health and /metrics, and run until SIGINT, SIGTERM or SIGHUP",
		Long: `Boot the Talos daemon: verify the directory tree and the configuration,
load the system prompts (TALOS_PROMPT_LOCAL, TALOS_PROMPT_ESCALATION) and
check them against their token budget (over budget: the boot stops), check
every configured service (Redis, ChromaDB, PostgreSQL, Docker, Ollama)
or fall back to its embedded default, detect a GPU (NVML, else nvidia-smi;
none is fine: CPU mode), serve /health, /ready and /metrics on loopback, and
write the ready marker <TALOS_HOME>/.ready. The dashboard (overview, live
metrics, chat, logs, security with the unlock and the kill switch, memory,
tokens, dream reports, skills; BASIC_AUTH_USER and BASIC_AUTH_PASS) is served on
WEB_BIND_ADDRESS:WEB_PORT, default 127.0.0.1:8080; an address other than
loopback is refused. With a GPU and TALOS_OLLAMA_URL
set it arbitrates GPU memory between local models with the VRAM mutex
(VRAM_MUTEX_TIMEOUT), whose state is served at /vram (` + "`talos gpu status`" + `). SIGINT, SIGTERM
or SIGHUP stops it cleanly: it stops taking requests, closes its connections,
stops and removes this home's Talos-labelled containers (talos.managed=true
and talos.instance of this home; never any other), removes the marker and writes a daemon_stopped audit line naming the signal.

Exit codes: 0 clean stop, 1 a boot step failed, 2 invalid configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := map[string]string{}
			if healthAddr != "" {
				flags["TALOS_HEALTH_ADDR"] = healthAddr
			}
			cfg, err := loadConfig(cmd, flags)
			if err != nil {
				return withExit(exitRunConfigFailed, fmt.Errorf("%w\n(fix these and start again; `talos config validate` shows the same list)", err))
			}
			log, tiers, err := openDaemonLogs(cmd.ErrOrStderr(), cfg)
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			if tiers != nil {
				defer tiers.Close()
			}
			redis.SetLogger(svccheck.RedisLogger{Log: log}) // go-redis logs through slog, not raw stderr
			// The GPU is always wired: on a CPU-only machine the gpu check
			// says so (ok); with a GPU and TALOS_OLLAMA_URL the daemon runs
			// the VRAM mutex that `talos gpu status` reads.
			// The dashboard's live logs and security view follow the log and
			// audit lines as they are written.
			feeds := newDashboardFeeds()
			log = feeds.tapLog(log)
			var audit *slog.Logger
			if tiers != nil {
				audit = feeds.tapAudit(tiers.Audit)
			}
			// The nightly maintenance cycle: its phases' health report asks
			// this daemon, its memory phases work on the agent's store, its
			// alerts go to the audit log.
			var d *daemon.Daemon
			var agent *daemonAgent
			maint, err := host.NewMaintenance(cfg, host.MaintenanceDeps{Log: log, Alerter: auditAlerter(audit, log), Version: currentBuild().Version,
				Memory: func() *host.Memory { return agent.memory() },
				VRAM: func() *vram.Mutex {
					if d == nil {
						return nil
					}
					return d.VRAM()
				},
				Health: func(ctx context.Context) (int, int, string, error) { return healthCounts(ctx, d) }})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			defer maint.Close()
			// The agent: its chat API on the health server, its adapters in
			// /health, a VRAM lease from the daemon's mutex; new memories are
			// refused while the disk is at its emergency level.
			disk := &host.DiskMonitor{Home: cfg.Home, Maint: maint, Alerter: auditAlerter(audit, log), Log: log}
			agent = &daemonAgent{cfg: cfg, log: log, audit: audit, vramOf: func() *vram.Mutex { return d.VRAM() },
				diskFull: func() bool { return disk.Level() == host.DiskEmergency }}
			defer agent.Close()
			dash, err := newDaemonDashboard(cfg, log, &d, agent, maint, feeds)
			if err != nil {
				return withExit(exitRunConfigFailed, err)
			}
			// The skill operations of `talos skill`, behind the operator's
			// credentials, on the skills the boot opens below (shared with the
			// dashboard); approval codes go to this terminal and the 0600 file.
			handlers := agent.Handlers()
			var sharedSkills atomic.Pointer[host.Skills]
			skillAPI, err := chatapi.NewSkillHandlers(chatapi.Config{User: cfg.BasicAuthUser, Pass: cfg.BasicAuthPass.Value(), Logger: log, Audit: audit,
				RateLimit: cfg.APIRateLimitMax, RateWindow: cfg.APIRateLimitWindow},
				func() (*host.Skills, error) {
					if s := sharedSkills.Load(); s != nil {
						return s, nil
					}
					return nil, errors.New("the skills are not open: the daemon is booting, or opening them failed (see the log)")
				})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			maps.Copy(handlers, skillAPI)
			// POST /api/v1/panic starts the one shutdown (set once the run's
			// context exists, below).
			var panicMu sync.Mutex
			var requestShutdown func(error)
			panicNow := func(by, reason string) {
				tlog.Audit(context.Background(), audit, "panic", slog.String("initiated_by", by), slog.String("reason", reason))
				panicMu.Lock()
				f := requestShutdown
				panicMu.Unlock()
				if f != nil {
					f(fmt.Errorf("panic requested by %s: %s", by, reason))
				}
			}
			dash.panic = panicNow // the dashboard's kill switch
			panicAPI, err := chatapi.NewPanicHandler(chatapi.Config{User: cfg.BasicAuthUser, Pass: cfg.BasicAuthPass.Value(), Logger: log,
				RateLimit: cfg.APIRateLimitMax, RateWindow: cfg.APIRateLimitWindow}, func(reason string) { panicNow("operator:api", reason) })
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			handlers[chatapi.PanicPath] = panicAPI
			// POST /api/v1/dream/run: `talos dream run --now` beside this
			// daemon runs the cycle here, on the daemon's open stores. The
			// cycle ends with the request or with the daemon's shutdown
			// (which does not cancel requests in flight), whichever is first,
			// as a scheduled cycle ends with the run.
			stopping, stopCycles := context.WithCancel(context.Background())
			defer stopCycles()
			dreamAPI, err := chatapi.NewDreamHandler(chatapi.Config{User: cfg.BasicAuthUser, Pass: cfg.BasicAuthPass.Value(), Logger: log,
				RateLimit: cfg.APIRateLimitMax, RateWindow: cfg.APIRateLimitWindow}, func(ctx context.Context, reason string) (*dream.Report, error) {
				if stopping.Err() != nil { // a cycle started now would only be interrupted
					return nil, talos.Errorf(talos.CodeMaintenanceBusy, "talos.run", "the daemon is shutting down: no new dream cycle starts")
				}
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				defer context.AfterFunc(stopping, cancel)()
				return maint.RunNow(ctx, reason)
			})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			handlers[chatapi.DreamPath] = dreamAPI
			opts := daemon.Options{Version: currentBuild().Version, Log: log, GPU: nvml.Detect(nvml.Config{}),
				ExtraSteps:  []boot.Step{agent.step()},
				ExtraChecks: []health.Check{maintenanceCheck(maint), diskMonitorCheck(disk), agent.check()},
				Handlers:    handlers}
			if tiers != nil {
				opts.ExtraChecks = append(opts.ExtraChecks, auditChainCheck(tiers))
				if _, err := tiers.Handler(tlog.Tier1).TailAtOpen(); err != nil {
					log.Error("tier-1 audit chain is not intact", "err", err)
				}
			}
			d, err = daemon.New(cfg, opts)
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}

			// One shutdown, whichever asks first: SIGINT, SIGTERM or SIGHUP
			// (the terminal went away), the panic file (talos panic), or the
			// watchdog finding the daemon stalled. A second signal, once the
			// shutdown started, kills the process the default way.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, stopSignals...)
			stop := func() { signal.Stop(sigs) }
			defer stop()
			runCtx, shutdown := context.WithCancelCause(cmd.Context())
			defer shutdown(nil)
			context.AfterFunc(runCtx, stopCycles)
			panicMu.Lock()
			requestShutdown = shutdown
			panicMu.Unlock()
			go func() {
				select {
				case sig := <-sigs:
					shutdown(signalCause{sig})
				case <-runCtx.Done():
				}
			}()
			// One correlation ID for the boot: its log lines and its
			// audit lines (daemon_started or daemon_boot_failed).
			ctx, _ := tlog.EnsureCorrelationID(runCtx)

			// The run marker and the restart cap, once the logs (and their
			// lock: one daemon per home) are open.
			var lc *lifecycle.Lifecycle
			if tiers != nil {
				lc = lifecycle.New(cfg.Home)
				if clearRestarts {
					if err := lc.Clear(); err != nil {
						return withExit(exitRunBootFailed, err)
					}
				}
				rec, err := lc.Begin(lifecycle.Run{PID: os.Getpid(), Started: time.Now().UTC(), BootID: tlog.CorrelationID(ctx)})
				if err != nil {
					tlog.Audit(ctx, audit, "daemon_restart_refused", slog.Int("recent_unclean_restarts", rec.RecentUnclean))
					return withExit(exitRunBootFailed, err)
				}
				if rec.Unclean {
					tlog.Audit(ctx, audit, "daemon_recovered", slog.Int("previous_pid", rec.Previous.PID),
						slog.Time("previous_start", rec.Previous.Started), slog.Int("recent_unclean_restarts", rec.RecentUnclean))
					fmt.Fprintf(cmd.OutOrStdout(), "recovering: the previous run (pid %d, started %s) did not stop cleanly; %d unclean restarts in the last hour\n",
						rec.Previous.PID, rec.Previous.Started.Format(time.RFC3339), rec.RecentUnclean)
				}
				if rec.Wait > 0 {
					log.Warn("restarting too fast after an unclean stop: waiting", "wait", rec.Wait)
					select {
					case <-time.After(rec.Wait):
					case <-ctx.Done():
						lc.End()
						return nil
					}
				}
			}
			if err := d.Start(ctx); err != nil {
				tlog.Audit(ctx, audit, "daemon_boot_failed", slog.String("step", d.Report().FailedStep),
					slog.String("code", string(talos.CodeOf(err))), slog.Int("pid", os.Getpid()))
				if lc != nil {
					lc.End() // a refused boot is a clean exit, not a crash
				}
				return withExit(exitRunBootFailed, err)
			}
			// Skills: finish what a crash cut short (half-written folders,
			// runs still marked executing, approved promotions not copied).
			// The dashboard's skills page reads them while the daemon runs.
			var skills *host.Skills
			if sk, err := host.OpenSkills(ctx, cfg, cmd.ErrOrStderr(), log); err != nil {
				log.Error("cannot open the skills to reconcile them", "err", err)
			} else {
				if rr, err := sk.Quarantine.Reconcile(ctx); err != nil {
					log.Error("skill reconcile failed", "err", err)
				} else if n := len(rr.TempRemoved) + len(rr.Promoted) + len(rr.Interrupted) + len(rr.Deactivated) + len(rr.ActiveChanged) + rr.Expired; n > 0 {
					tlog.Audit(ctx, audit, "skills_reconciled", slog.Int("temp_removed", len(rr.TempRemoved)), slog.Int("promotions_finished", len(rr.Promoted)),
						slog.Int("runs_interrupted", len(rr.Interrupted)), slog.Int("deprecated_moved", len(rr.Deactivated)),
						slog.Int("active_changed", len(rr.ActiveChanged)), slog.Int("requests_expired", rr.Expired))
				}
				skills = sk
				sharedSkills.Store(sk)
				defer sk.Close()
			}
			rep := d.Report()
			tlog.Audit(ctx, audit, "daemon_started", slog.String("version", currentBuild().Version), slog.Int("pid", os.Getpid()),
				slog.String("health_addr", d.HealthAddr()), slog.Bool("degraded", rep.Degraded))
			state := "ready"
			if rep.Degraded {
				state = "ready (degraded: " + strings.Join(degradedSteps(rep.Steps), ", ") + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "talos %s %s in %s: health http://%s/health, marker %s\n",
				currentBuild().Version, state, rep.Duration.Round(time.Millisecond), d.HealthAddr(), d.ReadyPath())
			if p, ok := rep.Step(daemon.NamePrompts); ok {
				fmt.Fprintf(cmd.OutOrStdout(), "prompts: %s\n", p.Detail)
			}
			if g, ok := rep.Step(daemon.NameGPU); ok {
				detail := g.Detail
				if g.Error != "" {
					detail = strings.TrimPrefix(detail+"; "+g.Error, "; ")
				}
				fmt.Fprintf(cmd.OutOrStdout(), "gpu: %s\n", detail)
			}

			dashDone := dash.serve(runCtx, skills, cmd.OutOrStdout(), log, cfg.BasicAuthUser)
			maintDone := make(chan error, 1)
			go func() { maintDone <- maint.Run(runCtx) }()
			// The disk monitor (which may run a dream cycle) and the panic
			// watcher (which writes the audit log) end before the stores
			// and logs close below.
			var watchers sync.WaitGroup
			watchers.Go(func() { disk.Run(runCtx) })
			watchers.Go(func() {
				if r, ok := lifecycle.WatchPanic(runCtx, cfg.Home); ok {
					tlog.Audit(ctx, audit, "panic", slog.String("initiated_by", r.InitiatedBy), slog.String("reason", r.Reason))
					shutdown(fmt.Errorf("panic requested by %s: %s", r.InitiatedBy, r.Reason))
				}
			})
			var stalled atomic.Bool
			wd := &lifecycle.Watchdog{
				OnWarn: func(late time.Duration) { log.Warn("daemon stalled: its health loop has not answered", "late", late) },
				OnStall: func(late time.Duration) {
					stalled.Store(true)
					log.Error("daemon stalled past the watchdog limit: shutting down so it can be restarted", "late", late)
					tlog.Audit(ctx, audit, "daemon_stalled", slog.Duration("late", late))
					shutdown(talos.Errorf(talos.CodeEventLoopBlocked, "talos run", "stalled for %s", late.Round(time.Second)))
				},
			}
			go wd.Run(runCtx)
			go heartbeat(runCtx, d, wd)

			<-runCtx.Done()
			stop() // a second signal now kills the process the default way
			why := slog.String("reason", "context ended")
			switch cause := context.Cause(runCtx); {
			case errors.As(cause, new(signalCause)):
				sc := cause.(signalCause)
				why = slog.String("signal", sc.sig.String())
				log.Info("stopping on signal", "signal", sc.sig.String())
			case cause != nil && !errors.Is(cause, context.Canceled):
				why = slog.String("reason", redact.Text(cause.Error()))
				fmt.Fprintf(cmd.OutOrStdout(), "shutting down: %v\n", cause)
			}
			// Forced after ShutdownForce, whatever is stuck.
			shutdownBegan := time.Now()
			force := time.AfterFunc(ShutdownForce, func() {
				log.Error("shutdown did not finish in time: exiting now", "limit", ShutdownForce)
				os.Exit(exitRunBootFailed)
			})
			defer force.Stop()
			if err := <-maintDone; err != nil && !errors.Is(err, context.Canceled) {
				log.Error("maintenance scheduler stopped", "err", err)
			}
			<-dashDone
			watchers.Wait()
			sctx, cancel := context.WithDeadline(context.Background(), drainDeadline(shutdownBegan))
			defer cancel()
			stopErr := d.Stop(sctx)
			stopContainers(cfg, audit, log, shutdownBegan.Add(ShutdownForce-containerMargin))
			if err := stopErr; err != nil {
				tlog.Audit(context.Background(), audit, "daemon_stopped", slog.Int("pid", os.Getpid()), why, slog.String("error", err.Error()))
				return withExit(exitRunBootFailed, fmt.Errorf("stopping: %w", err))
			}
			tlog.Audit(context.Background(), audit, "daemon_stopped", slog.Int("pid", os.Getpid()), why)
			if stalled.Load() {
				// Leave the run marker: the restart counts as unclean.
				return withExit(exitRunBootFailed, errors.New("stopped by the watchdog: the daemon stalled"))
			}
			if lc != nil {
				if err := lc.End(); err != nil {
					log.Error("cannot remove the run marker; the next boot will report a recovery", "err", err)
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "talos stopped")
			return nil
		},
	}
	cmd.Flags().BoolVar(&clearRestarts, "clear-restarts", false, "forget the unclean restarts of the last hour (after fixing why the daemon kept crashing)")
	cmd.Flags().StringVar(&healthAddr, "health-addr", "", "loopback host:port for /health and /metrics (default TALOS_HEALTH_ADDR, else 127.0.0.1:8081)")
	return cmd
}

// auditChainName is the /health check of the tier-1 audit chain's tail.
const auditChainName = "audit_chain"

// auditChainCheck reports in /health what opening the logs found at the end
// of the tier-1 audit chain, before the daemon wrote to it: fail when the
// newest lines or the anchor show tampering, warn when the anchor is
// missing.
func auditChainCheck(tiers *tlog.Set) health.Check {
	rep, err := tiers.Handler(tlog.Tier1).TailAtOpen()
	return health.Check{Name: auditChainName, Func: func(context.Context) (string, error) {
		if err != nil {
			return "checked at boot", err
		}
		detail := fmt.Sprintf("newest tier-1 lines intact at boot (%d checked, up to seq %d)", rep.Lines, rep.Last)
		if len(rep.Warnings) > 0 {
			return detail, health.Warnf("%s", strings.Join(rep.Warnings, "; "))
		}
		return detail, nil
	}}
}

// stopSignals stop `talos run` cleanly.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// signalCause is the cause of the run's context when a signal ended it.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return "received " + c.sig.String() }

// ShutdownForce is when a shutdown that is still not done ends the process
// anyway: 20 s after it began, 5 s after the daemon's 15 s drain
// (daemon.ShutdownGrace).
const ShutdownForce = 20 * time.Second

// heartbeat stamps the watchdog each second the daemon's health checker
// answers, so a wedged daemon stops beating.
func heartbeat(ctx context.Context, d *daemon.Daemon, wd *lifecycle.Watchdog) {
	t := time.NewTicker(lifecycle.DefaultCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := d.Checker().Report(hctx)
		cancel()
		if err == nil {
			wd.Beat()
		}
	}
}

func degradedSteps(steps []boot.StepResult) []string {
	var out []string
	for _, s := range steps {
		if s.Outcome == boot.Degraded {
			out = append(out, s.Name)
		}
	}
	return out
}

// openDaemonLogs returns the daemon's logger: the console (w, in
// LOG_FORMAT at LOG_LEVEL) plus tier 2 (Info and above) and tier 3 (every
// level) under <home>/logs, and the open tiers (whose Audit logger writes
// the hash-chained tier 1). Without a logs directory (no `talos init` yet;
// the boot's directories step then stops with the fix) it logs to the
// console only and returns nil tiers.
func openDaemonLogs(w io.Writer, cfg *config.Config) (*slog.Logger, *tlog.Set, error) {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel(), ReplaceAttr: redact.ReplaceAttr}
	var console slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		console = slog.NewTextHandler(w, opts)
	}
	// Lines logged with a request's or the boot's context carry its
	// correlation ID on the console too (the tier handlers add it).
	console = tlog.WithCorrelation(console)
	logs := filepath.Join(cfg.Home, layout.Logs)
	if _, err := os.Stat(logs); err != nil {
		return slog.New(console), nil, nil
	}
	tiers, err := tlog.OpenSet(tlog.DirsUnder(logs), tlog.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot open the tiered logs under %s: %w (is another `talos run` using this TALOS_HOME?)", logs, err)
	}
	return slog.New(tlog.Fanout(console, tiers.Handler(tlog.Tier2), tiers.Handler(tlog.Tier3))), tiers, nil
}
