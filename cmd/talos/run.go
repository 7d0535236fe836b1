package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/svccheck"
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
check every configured service (Redis, ChromaDB, PostgreSQL, Docker, Ollama)
or fall back to its embedded default, serve /health, /ready and /metrics on
loopback, and write the ready marker <TALOS_HOME>/.ready. SIGINT or SIGTERM
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
			log := newDaemonLogger(cmd.ErrOrStderr(), cfg)
			redis.SetLogger(svccheck.RedisLogger{Log: log}) // go-redis logs through slog, not raw stderr
			d, err := daemon.New(cfg, daemon.Options{Version: currentBuild().Version, Log: log})
			if err != nil {
				return withExit(exitRunBootFailed, err)
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := d.Start(ctx); err != nil {
				return withExit(exitRunBootFailed, err)
			}
			rep := d.Report()
			state := "ready"
			if rep.Degraded {
				state = "ready (degraded: " + strings.Join(degradedSteps(rep.Steps), ", ") + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "talos %s %s in %s: health http://%s/health, marker %s\n",
				currentBuild().Version, state, rep.Duration.Round(time.Millisecond), d.HealthAddr(), d.ReadyPath())

			<-ctx.Done()
			stop() // a second signal now kills the process the default way
			sctx, cancel := context.WithTimeout(context.Background(), daemon.ShutdownGrace)
			defer cancel()
			if err := d.Stop(sctx); err != nil {
				return withExit(exitRunBootFailed, fmt.Errorf("stopping: %w", err))
			}
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

// newDaemonLogger logs to w in LOG_FORMAT at LOG_LEVEL (FATAL maps to
// ERROR; slog has no fatal level).
func newDaemonLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var lvl slog.Level
	switch cfg.LogLevel {
	case "DEBUG":
		lvl = slog.LevelDebug
	case "WARN":
		lvl = slog.LevelWarn
	case "ERROR", "FATAL":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
