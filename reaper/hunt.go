package reaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
)

// Zombie-hunt defaults.
const (
	// DefaultHuntMaxAge: only containers and processes older than this are
	// hunted (MAX_AGE_DAYS 3).
	DefaultHuntMaxAge = 3 * 24 * time.Hour
	// DefaultHuntGrace is the time between SIGTERM (or stop) and SIGKILL
	// (spec: terminate, sleep 5 s, kill if still alive).
	DefaultHuntGrace = 5 * time.Second
	// DefaultActiveWithin: a registered process with activity (Touch) more
	// recent than this is active and never hunted. The spec's "active
	// registry" has no source; recent activity is ours.
	DefaultActiveWithin = time.Hour
	// huntPoll is how often a terminated process is checked (spec: 100 ms).
	huntPoll = 100 * time.Millisecond
)

// DefaultProtectedNames are process names (comm) the hunt never signals:
// the services Talos runs next to (an age rule alone would kill Postgres or
// Redis after 3 days of uptime).
func DefaultProtectedNames() []string {
	return []string{"talos", "dockerd", "containerd", "containerd-shim", "redis-server", "postgres", "ollama", "chroma", "sshd"}
}

// Registry lists the processes Talos registered (Reaper implements it).
type Registry interface {
	Registered() []Registered
}

// HuntConfig configures a Hunter. A zero field means the default.
type HuntConfig struct {
	// MaxAge: only things older than this are hunted; 0 means
	// DefaultHuntMaxAge.
	MaxAge time.Duration
	// Grace between SIGTERM/stop and SIGKILL; 0 means DefaultHuntGrace.
	Grace time.Duration
	// ActiveWithin: processes with activity more recent than this are
	// active; 0 means DefaultActiveWithin.
	ActiveWithin time.Duration
	// ActiveContainers are container IDs or names in use (for example the
	// respawn manager's current containers); they are never hunted.
	ActiveContainers []string
	// IsActive, if set, is asked about every old labelled container; true
	// keeps it.
	IsActive func(Container) bool
	// ProtectedContainers are container names never hunted (services such
	// as the socket proxy, if it runs labelled).
	ProtectedContainers []string
	// ActivePIDs are registered processes never hunted.
	ActivePIDs []int
	// ProtectedNames are process names (comm) never hunted; nil means
	// DefaultProtectedNames().
	ProtectedNames []string
	// Logger receives one record per action (nil discards).
	Logger *slog.Logger
}

// HuntKind says what a hunt entry is about.
type HuntKind string

// Hunt kinds.
const (
	HuntContainer HuntKind = "container"
	HuntProcess   HuntKind = "process"
)

// Reasons a hunt skipped something.
const (
	SkipNotLabelled = "not labelled " + LabelManaged + "=" + LabelManagedValue
	SkipTooYoung    = "younger than the maximum age"
	SkipActive      = "active"
	SkipProtected   = "protected service"
	SkipSelf        = "the hunting process itself"
	SkipParent      = "an ancestor of the hunting process"
	SkipGone        = "already gone"
	SkipReused      = "PID now names another process"
	SkipZombie      = "already exited (zombie awaiting its parent's reap)"
)

// HuntEntry is one thing the hunt acted on or skipped.
type HuntEntry struct {
	Kind   HuntKind
	ID     string // container ID or PID
	Name   string
	Age    time.Duration
	Reason string // why skipped, or what was done ("stopped and removed", "SIGTERM", "SIGKILL")
	Err    string // set when the action failed
}

// HuntReport says what one hunt did and what it skipped and why.
type HuntReport struct {
	Started  time.Time
	Duration time.Duration
	Removed  []HuntEntry // containers stopped and removed
	Killed   []HuntEntry // processes terminated (Reason says which signal ended them)
	Skipped  []HuntEntry
	Failed   []HuntEntry
}

// Summary is a one-line description for the nightly health report.
func (r HuntReport) Summary() string {
	return fmt.Sprintf("zombie hunt: %d containers removed, %d processes terminated, %d skipped, %d failed in %v",
		len(r.Removed), len(r.Killed), len(r.Skipped), len(r.Failed), r.Duration.Round(time.Millisecond))
}

// Hunter is the nightly zombie hunt: it stops and removes only containers
// labelled talos.managed=true that are older than MaxAge and not active,
// and terminates only processes Talos registered that are older than MaxAge
// and inactive — never itself, its ancestors, or protected services.
type Hunter struct {
	cfg   HuntConfig
	eng   Engine
	reg   Registry
	procs Processes
	log   *slog.Logger
}

// NewHunter returns a Hunter. eng or reg may be nil to hunt only processes
// or only containers; procs nil means proc.OS().
func NewHunter(cfg HuntConfig, eng Engine, reg Registry, procs Processes) (*Hunter, error) {
	const op = "reaper.NewHunter"
	if cfg.MaxAge < 0 || cfg.Grace < 0 || cfg.ActiveWithin < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "HuntConfig durations must not be negative (MaxAge %v, Grace %v, ActiveWithin %v); 0 means the default", cfg.MaxAge, cfg.Grace, cfg.ActiveWithin)
	}
	if eng == nil && reg == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "nothing to hunt: pass an Engine, a Registry or both")
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultHuntMaxAge
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultHuntGrace
	}
	if cfg.ActiveWithin == 0 {
		cfg.ActiveWithin = DefaultActiveWithin
	}
	if cfg.ProtectedNames == nil {
		cfg.ProtectedNames = DefaultProtectedNames()
	}
	if procs == nil {
		procs = proc.OS()
	}
	return &Hunter{cfg: cfg, eng: eng, reg: reg, procs: procs, log: loggerOrDiscard(cfg.Logger)}, nil
}

// Hunt runs one hunt. A failure on one container or process is recorded in
// the report and the hunt goes on (the spec's loop aborted on the first);
// the error is non-nil only when the container list could not be read or
// ctx ended.
func (h *Hunter) Hunt(ctx context.Context) (HuntReport, error) {
	rep := HuntReport{Started: time.Now()}
	var err error
	if h.eng != nil {
		err = h.huntContainers(ctx, &rep)
	}
	if h.reg != nil && ctx.Err() == nil {
		h.huntProcesses(ctx, &rep)
	}
	if err == nil {
		err = ctx.Err()
	}
	rep.Duration = time.Since(rep.Started)
	h.log.InfoContext(ctx, "reaper: "+rep.Summary(), "removed", len(rep.Removed), "killed", len(rep.Killed), "skipped", len(rep.Skipped), "failed", len(rep.Failed))
	return rep, err
}

func (h *Hunter) huntContainers(ctx context.Context, rep *HuntReport) error {
	list, err := h.eng.List(ctx, LabelManaged, LabelManagedValue)
	if err != nil {
		return talos.E(talos.CodeDocker, "reaper.Hunter.Hunt", "listing Talos containers failed: check the engine (or socket proxy); nothing was removed", err)
	}
	now := time.Now()
	for _, c := range list {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		e := HuntEntry{Kind: HuntContainer, ID: c.ID, Name: c.Name, Age: now.Sub(c.Created)}
		switch {
		case c.Labels[LabelManaged] != LabelManagedValue:
			e.Reason = SkipNotLabelled
		case slices.Contains(h.cfg.ProtectedContainers, c.Name):
			e.Reason = SkipProtected
		case e.Age <= h.cfg.MaxAge:
			e.Reason = SkipTooYoung
		case slices.Contains(h.cfg.ActiveContainers, c.ID) || slices.Contains(h.cfg.ActiveContainers, c.Name) ||
			(h.cfg.IsActive != nil && h.cfg.IsActive(c)):
			e.Reason = SkipActive
		}
		if e.Reason != "" {
			rep.Skipped = append(rep.Skipped, e)
			continue
		}
		if err := stopAndRemove(ctx, h.eng, c.ID, h.cfg.Grace); err != nil {
			e.Err = err.Error()
			rep.Failed = append(rep.Failed, e)
			h.log.WarnContext(ctx, "reaper: hunt could not remove container", "container", shortID(c.ID), "name", c.Name, "err", err)
			continue
		}
		e.Reason = "stopped and removed"
		rep.Removed = append(rep.Removed, e)
		h.log.InfoContext(ctx, "reaper: hunt removed container", "container", shortID(c.ID), "name", c.Name, "age", e.Age.Round(time.Second).String())
	}
	return nil
}

func (h *Hunter) huntProcesses(ctx context.Context, rep *HuntReport) {
	self := os.Getpid()
	ancestors := Ancestors(h.procs, self)
	now := time.Now()
	for _, p := range h.reg.Registered() {
		if ctx.Err() != nil {
			return
		}
		e := HuntEntry{Kind: HuntProcess, ID: itoa(p.PID), Name: p.Name, Age: now.Sub(p.Started)}
		st, err := h.procs.Stat(p.PID)
		switch {
		case p.PID == self:
			e.Reason = SkipSelf
		case p.PID <= 1 || slices.Contains(ancestors, p.PID):
			e.Reason = SkipParent
		case err != nil:
			e.Reason = SkipGone
		case slices.Contains(h.cfg.ProtectedNames, st.Comm) || slices.Contains(h.cfg.ProtectedNames, p.Name):
			e.Reason = SkipProtected
		case st.Zombie():
			e.Reason = SkipZombie
		case e.Age <= h.cfg.MaxAge:
			e.Reason = SkipTooYoung
		case slices.Contains(h.cfg.ActivePIDs, p.PID) || now.Sub(p.LastActivity) < h.cfg.ActiveWithin:
			e.Reason = SkipActive
		}
		if e.Reason != "" {
			rep.Skipped = append(rep.Skipped, e)
			continue
		}
		how, err := h.terminate(ctx, p.PID, st.StartTime)
		switch {
		case errors.Is(err, proc.ErrGone):
			e.Reason = SkipGone
			rep.Skipped = append(rep.Skipped, e)
		case err != nil:
			e.Reason, e.Err = how, err.Error()
			rep.Failed = append(rep.Failed, e)
			h.log.WarnContext(ctx, "reaper: hunt could not terminate process", "pid", p.PID, "name", p.Name, "err", err)
		default:
			e.Reason = how
			rep.Killed = append(rep.Killed, e)
			h.log.InfoContext(ctx, "reaper: hunt terminated process", "pid", p.PID, "name", p.Name, "how", how)
		}
	}
}

// terminate sends SIGTERM, waits up to Grace for the process (identified by
// pid and start time) to end, then SIGKILL. It returns which signal ended it.
func (h *Hunter) terminate(ctx context.Context, pid int, start uint64) (string, error) {
	alive := func() bool {
		st, err := h.procs.Stat(pid)
		return err == nil && st.StartTime == start && !st.Zombie()
	}
	if err := h.procs.Signal(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return "", proc.ErrGone
		}
		return "SIGTERM", err
	}
	deadline := time.Now().Add(h.cfg.Grace)
	for time.Now().Before(deadline) {
		if !alive() {
			return "SIGTERM", nil
		}
		t := time.NewTimer(min(huntPoll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return "SIGTERM", ctx.Err()
		case <-t.C:
		}
	}
	if !alive() {
		return "SIGTERM", nil
	}
	if err := h.procs.Signal(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return "SIGKILL", talos.E(talos.CodeProcessKillFailed, "reaper.Hunter.Hunt", "process "+itoa(pid)+" survived SIGTERM and SIGKILL failed", err)
	}
	return "SIGKILL", nil
}

// String renders the report as readable lines (for the health report).
func (r HuntReport) String() string {
	var b strings.Builder
	b.WriteString(r.Summary())
	b.WriteByte('\n')
	for _, sec := range []struct {
		title string
		list  []HuntEntry
	}{{"removed", r.Removed}, {"terminated", r.Killed}, {"failed", r.Failed}, {"skipped", r.Skipped}} {
		for _, e := range sec.list {
			fmt.Fprintf(&b, "  %-10s %-9s %-14s %-24s %s", sec.title, e.Kind, truncate(e.ID, 12), truncate(e.Name, 24), e.Reason)
			if e.Err != "" {
				b.WriteString(": " + e.Err)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// truncate shortens s to n bytes for the report table.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
