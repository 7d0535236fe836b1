package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/layout"
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
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Boot the daemon, serve /health and /metrics, and run until SIGINT or SIGTERM",
		Long: `Boot the Talos daemon: verify the directory tree and the configuration,
load the system prompts (TALOS_PROMPT_LOCAL, TALOS_PROMPT_ESCALATION) and
check them against their token budget (over budget: the boot stops), check
every configured service (Redis, ChromaDB, PostgreSQL, Docker, Ollama)
or fall back to its embedded default, detect a GPU (NVML, else nvidia-smi;
none is fine: CPU mode), serve /health, /ready and /metrics on loopback, and
write the ready marker <TALOS_HOME>/.ready. With a GPU and TALOS_OLLAMA_URL
set it arbitrates GPU memory between local models with the VRAM mutex
(VRAM_MUTEX_TIMEOUT), whose state is served at /vram (` + "`talos gpu status`" + `). SIGINT or SIGTERM
stops it cleanly: it stops taking requests, closes its connections and
removes the marker.

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
			var audit *slog.Logger
			if tiers != nil {
				audit = tiers.Audit
			}
			// The nightly maintenance cycle: its phases' health report asks
			// this daemon, its alerts go to the audit log.
			var d *daemon.Daemon
			maint, err := host.NewMaintenance(cfg, host.MaintenanceDeps{Log: log, Alerter: auditAlerter(audit, log),
				Health: func(ctx context.Context) (int, int, string, error) { return healthCounts(ctx, d) }})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}
			defer maint.Close()
			// The agent: its chat API on the health server, its adapters in
			// /health, a VRAM lease from the daemon's mutex.
			agent := &daemonAgent{cfg: cfg, log: log, audit: audit, vramOf: func() *vram.Mutex { return d.VRAM() }}
			defer agent.Close()
			d, err = daemon.New(cfg, daemon.Options{Version: currentBuild().Version, Log: log, GPU: nvml.Detect(nvml.Config{}),
				ExtraSteps: []boot.Step{agent.step()}, ExtraChecks: []health.Check{maintenanceCheck(maint), agent.check()},
				Handlers: agent.Handlers()})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// One correlation ID for the boot: its log lines and its
			// audit lines (daemon_started or daemon_boot_failed).
			ctx, _ = tlog.EnsureCorrelationID(ctx)
			if err := d.Start(ctx); err != nil {
				tlog.Audit(ctx, audit, "daemon_boot_failed", slog.String("step", d.Report().FailedStep),
					slog.String("code", string(talos.CodeOf(err))), slog.Int("pid", os.Getpid()))
				return withExit(exitRunBootFailed, err)
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

			maintDone := make(chan error, 1)
			go func() { maintDone <- maint.Run(ctx) }()

			<-ctx.Done()
			stop() // a second signal now kills the process the default way
			if err := <-maintDone; err != nil && !errors.Is(err, context.Canceled) {
				log.Error("maintenance scheduler stopped", "err", err)
			}
			sctx, cancel := context.WithTimeout(context.Background(), daemon.ShutdownGrace)
			defer cancel()
			if err := d.Stop(sctx); err != nil {
				tlog.Audit(context.Background(), audit, "daemon_stopped", slog.Int("pid", os.Getpid()), slog.String("error", err.Error()))
				return withExit(exitRunBootFailed, fmt.Errorf("stopping: %w", err))
			}
			tlog.Audit(context.Background(), audit, "daemon_stopped", slog.Int("pid", os.Getpid()))
			fmt.Fprintln(cmd.OutOrStdout(), "talos stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&healthAddr, "health-addr", "", "loopback host:port for /health and /metrics (default TALOS_HEALTH_ADDR, else 127.0.0.1:8081)")
	return cmd
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
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
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
