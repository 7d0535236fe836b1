package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
)

// Exit codes of `talos health`: they follow the status.
const (
	exitHealthDegraded  = 1
	exitHealthUnhealthy = 2 // also: daemon unreachable, boot failed
)

func newHealthCmd() *cobra.Command {
	var addr string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask the running daemon for its health (exit 0 healthy, 1 degraded, 2 unhealthy or unreachable)",
		Long: `Ask the running daemon's /health endpoint and print a summary (or the JSON
with --json). The address comes from --addr, else the ready marker
<TALOS_HOME>/.ready, else TALOS_HEALTH_ADDR from the configuration.

Exit codes: 0 healthy, 1 degraded, 2 unhealthy, unreachable or boot failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			target, note, err := healthTarget(cmd, addr)
			if err != nil {
				return withExit(exitHealthUnhealthy, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, raw, err := fetchHealth(ctx, target)
			if err != nil {
				if note != "" {
					err = fmt.Errorf("%w (%s)", err, note)
				}
				return withExit(exitHealthUnhealthy, err)
			}
			if asJSON {
				_, _ = out.Write(raw)
			} else {
				printHealth(out, target, rep)
			}
			switch rep.Status {
			case health.Healthy:
				return nil
			case health.Degraded:
				return withExit(exitHealthDegraded, fmt.Errorf("daemon at %s is degraded: %s", target, failing(rep)))
			default:
				return withExit(exitHealthUnhealthy, fmt.Errorf("daemon at %s is %s: %s", target, rep.Status, failing(rep)))
			}
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port of the daemon's health server (default: from .ready, else the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the /health JSON as received")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}

// healthTarget finds the daemon's health address: the flag, else the
// ready marker, else the configuration. note explains where it came from
// when that helps the error message.
func healthTarget(cmd *cobra.Command, addr string) (target, note string, err error) {
	if addr != "" {
		return addr, "", nil
	}
	// Load tolerates an invalid config (it returns what it could read):
	// only the home and the health address matter here.
	cfg, err := loadConfig(cmd, nil)
	if cfg == nil && err != nil {
		return "", "", err
	}
	if cfg == nil {
		return "", "", errors.New("cannot find the Talos home: set TALOS_HOME or pass --home")
	}
	marker := daemon.DefaultReadyPath(cfg.Home)
	r, rerr := boot.ReadReady(marker)
	switch {
	case rerr == nil && r.Status == boot.StatusFailed:
		return "", "", fmt.Errorf("the daemon's boot failed at step %q (marker %s); see its log, fix the cause and run `talos run` again", r.FailedStep, marker)
	case rerr == nil && r.HealthAddr != "":
		if !processAlive(r.PID) {
			return "", "", fmt.Errorf("the ready marker %s names pid %d, which is not running: the daemon died without cleaning up; start it with `talos run`", marker, r.PID)
		}
		return r.HealthAddr, "", nil
	case rerr != nil && !errors.Is(rerr, fs.ErrNotExist):
		return "", "", rerr
	}
	a := cfg.HealthAddr
	if a == "" {
		a = config.DefaultHealthAddr
	}
	return a, "no ready marker at " + marker + ": is `talos run` running with this TALOS_HOME?", nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func fetchHealth(ctx context.Context, addr string) (health.Report, []byte, error) {
	var rep health.Report
	url := "http://" + addr + "/health"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return rep, nil, fmt.Errorf("bad health address %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, nil, fmt.Errorf("daemon unreachable at %s: %w", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rep, nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil || rep.Status == "" {
		return rep, nil, fmt.Errorf("%s answered HTTP %d with something that is not a Talos health report", url, resp.StatusCode)
	}
	return rep, raw, nil
}

func printHealth(w io.Writer, addr string, rep health.Report) {
	fmt.Fprintf(w, "talos %s at %s: %s (up %s, ready %v)\n", rep.Version, addr, strings.ToUpper(string(rep.Status)),
		(time.Duration(rep.UptimeS * float64(time.Second))).Round(time.Second), rep.Ready)
	names := make([]string, 0, len(rep.Checks))
	for n := range rep.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := rep.Checks[n]
		crit := ""
		if c.Critical {
			crit = " (critical)"
		}
		fmt.Fprintf(w, "  %-13s %-4s %7.1f ms  %s%s\n", n, c.Status, c.LatencyMS, c.Detail, crit)
	}
}

// failing lists the checks that are not ok.
func failing(rep health.Report) string {
	var bad []string
	for n, c := range rep.Checks {
		if c.Status != health.StatusOK {
			bad = append(bad, n+" "+string(c.Status))
		}
	}
	sort.Strings(bad)
	if len(bad) == 0 {
		return "no failing check"
	}
	return strings.Join(bad, ", ")
}
