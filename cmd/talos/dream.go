package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// Exit codes of `talos dream run`.
const (
	exitDreamFailed = 1 // the cycle ran and a phase failed, or it could not run
	exitDreamBusy   = 3 // another process is running a cycle
)

func newDreamCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dream",
		Short: "The nightly maintenance cycle: run it now, or show its state",
		Long: `The dream cycle cleans up after the agent every night (TALOS_DREAM_SCHEDULE,
default 04:00 in TALOS_DREAM_TIMEZONE): disposable Redis keys, rotated tier-2
and tier-3 logs compressed and expired (tier 1 is never touched), old
Talos-labelled containers removed, expired strikes marked, skills and their
audit chains re-verified, memories over 90 % of the ceiling pruned, the day's
repeated memories merged (archived first), the day's sessions summarised into
long-term memories when a model is configured (TALOS_OLLAMA_URL; never
commands, secrets or text the firewall flags), a backup into TALOS_HOME/backups
keeping the newest TALOS_BACKUP_KEEP (0, the default: none), and a health
report. ` + "`talos run`" + ` runs it on schedule; one cycle runs at a time across
processes. Reports of the last 30 cycles are kept in TALOS_HOME/data/dream/reports.`,
	}
	cmd.AddCommand(newDreamRunCmd(), newDreamStatusCmd())
	return cmd
}

func newDreamRunCmd() *cobra.Command {
	var now, asJSON, inProcess bool
	cmd := &cobra.Command{
		Use:   "run --now",
		Short: "Run a maintenance cycle now and print its report",
		Long: `Run every phase of the maintenance cycle now and print the report. With a
daemon running for this home (` + "`talos run`" + `), the daemon runs the cycle on its
open stores (so an embedded chromem index sees what the cycle changed) and
this command waits for its report; otherwise, or with --in-process, the cycle
runs in this process. A cycle already running (the daemon's, or another
` + "`talos dream run`" + `) makes this one refuse with exit code 3. Exit code 1 when a
phase failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !now {
				return withExit(2, fmt.Errorf("say --now to run a cycle outside the schedule (the daemon runs it at TALOS_DREAM_SCHEDULE)"))
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(2, err)
			}
			const reason = "operator: talos dream run --now"
			var rep *dream.Report
			if addr, ok := daemonAddr(cfg); ok && !inProcess {
				fmt.Fprintf(cmd.ErrOrStderr(), "the daemon at %s runs the cycle; waiting for its report\n", addr)
				rep, err = dreamOnDaemon(cmd.Context(), cfg, addr, reason)
			} else {
				rep, err = dreamInProcess(cmd, cfg, reason)
			}
			if err != nil {
				if errors.Is(err, talos.ErrMaintenanceBusy) {
					return withExit(exitDreamBusy, err)
				}
				return withExit(exitDreamFailed, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), rep.Summary())
			}
			if rep.Outcome != dream.OutcomeOK {
				return withExit(exitDreamFailed, fmt.Errorf("cycle %s ended %s", rep.ID, rep.Outcome))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&now, "now", false, "run the cycle now (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVar(&inProcess, "in-process", false, "run the cycle in this process even when a daemon runs for this home")
	return cmd
}

// dreamInProcess runs one cycle in this process.
func dreamInProcess(cmd *cobra.Command, cfg *config.Config, reason string) (*dream.Report, error) {
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{Version: currentBuild().Version, Log: slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.RunNow(cmd.Context(), reason)
}

// dreamOnDaemon asks the daemon at addr to run one cycle and returns its
// report; a cycle already running there is talos.ErrMaintenanceBusy.
func dreamOnDaemon(ctx context.Context, cfg *config.Config, addr, reason string) (*dream.Report, error) {
	body, _ := json.Marshal(chatapi.DreamRequest{Reason: reason})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+chatapi.DreamPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(cfg.BasicAuthUser, cfg.BasicAuthPass.Value())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the daemon at %s is unreachable: %w (run with --in-process to run the cycle here)", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := refusal(resp)
		switch resp.StatusCode {
		case http.StatusConflict:
			return nil, fmt.Errorf("%w: %s", talos.ErrMaintenanceBusy, msg)
		case http.StatusNotFound:
			return nil, fmt.Errorf("the daemon at %s does not serve %s (a daemon of an older version): restart it, or run with --in-process", addr, chatapi.DreamPath)
		}
		return nil, fmt.Errorf("the daemon at %s did not run the cycle: %s", addr, msg)
	}
	var rep dream.Report
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("the daemon's answer is not a cycle report: %w", err)
	}
	return &rep, nil
}

func newDreamStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the next window and the last cycle's report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(2, err)
			}
			m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{})
			if err != nil {
				return withExit(exitDreamFailed, err)
			}
			defer m.Close()
			detail, problem := m.Describe(time.Now())
			fmt.Fprintln(cmd.OutOrStdout(), detail)
			if st, err := m.State(time.Now()); err == nil && st.Last != nil {
				fmt.Fprint(cmd.OutOrStdout(), st.Last.Summary())
			}
			if problem != nil {
				return withExit(exitDreamFailed, problem)
			}
			return nil
		},
	}
	return cmd
}

// maintenanceCheck is the daemon's "dream" health check: the next window
// and the last cycle; a warning when the last cycle needs attention.
func maintenanceCheck(m *host.Maintenance) health.Check {
	return health.Check{Name: "dream", Func: func(ctx context.Context) (string, error) {
		detail, err := m.Describe(time.Now())
		if err != nil {
			return detail, health.Warnf("%v", err)
		}
		return detail, nil
	}}
}

// diskMonitorCheck is the daemon's "disk-monitor" health check: the level
// of the last check and what the monitor did about it; a warning from the
// warning level up.
func diskMonitorCheck(m *host.DiskMonitor) health.Check {
	return health.Check{Name: "disk-monitor", Func: func(ctx context.Context) (string, error) {
		if m.Level() != host.DiskOK {
			return m.Detail(), health.Warnf("the disk is at the %s level: %s", m.Level(), m.Detail())
		}
		return m.Detail(), nil
	}}
}

// healthCounts evaluates the daemon's health for the maintenance cycle's
// health_report phase.
func healthCounts(ctx context.Context, d *daemon.Daemon) (ok, notOK int, summary string, err error) {
	if d == nil || d.Checker() == nil {
		return 0, 0, "", fmt.Errorf("the daemon has not finished booting")
	}
	rep, err := d.Checker().Report(ctx)
	if err != nil {
		return 0, 0, "", err
	}
	var bad []string
	for name, c := range rep.Checks {
		if name == "dream" || name == "disk-monitor" {
			continue // the cycle's own checks would report themselves
		}
		if c.Status == health.StatusOK {
			ok++
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s: %s", name, c.Status, c.Detail))
	}
	sort.Strings(bad)
	return ok, len(bad), strings.Join(bad, "; "), nil
}

// auditAlerter writes maintenance alerts to the tier-1 audit log (when the
// logs are open) and to the operations log.
func auditAlerter(audit, log *slog.Logger) dream.Alerter {
	return dream.AlerterFunc(func(ctx context.Context, a dream.Alert) error {
		tlog.Audit(ctx, audit, "maintenance_alert", slog.String("kind", string(a.Kind)), slog.String("severity", a.Severity.String()),
			slog.String("phase", a.Phase), slog.String("message", a.Message), slog.String("file", a.File))
		log.Warn("maintenance alert", "kind", a.Kind, "phase", a.Phase, "message", a.Message, "file", a.File)
		return nil
	})
}
