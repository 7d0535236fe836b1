package host

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/dream/redisphase"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/reaper"
	reaperdocker "github.com/talos-ironclad/talos/reaper/docker"
	"github.com/talos-ironclad/talos/vram"
)

// DreamDir is the dream scheduler's state directory, relative to Home.
const DreamDir = "data/dream"

// DisposableRedisPrefixes are the Redis key prefixes the nightly clean-up
// deletes: caches and scratch state that are rebuilt on demand. Everything
// else — the breaker, sessions, history, leases, the lockdown — is kept.
func DisposableRedisPrefixes() []string { return []string{"talos:cache:", "talos:tmp:"} }

// MaintenanceDeps are what the phases need from whoever runs the cycle.
type MaintenanceDeps struct {
	// Health evaluates the daemon's health for the health_report phase and
	// returns (checks ok, checks not ok, summary); nil runs the phase as
	// skipped ("no daemon in this process").
	Health func(ctx context.Context) (ok, notOK int, summary string, err error)
	// Alerter receives the cycle's alerts; nil logs them only.
	Alerter dream.Alerter
	// Log receives progress lines; nil discards them.
	Log *slog.Logger
	// Model summarises the day's sessions in the session_summarize phase;
	// nil means the local model of TALOS_OLLAMA_URL, and without that URL
	// the phase is skipped (the report says why).
	Model llm.Model
	// Version is the Talos version recorded in scheduled backups.
	Version string
	// VRAM returns the daemon's VRAM mutex (nil: no GPU); the local model
	// of session_summarize holds a lease on it for each request. Nil means
	// no arbitration (a CLI process).
	VRAM func() *vram.Mutex
	// SummaryTokens caps each session summary; 0 means SummaryTokens.
	SummaryTokens int
	// Memory returns the daemon's open long-term memory store, which the
	// memory phases (vector_prune, memory_consolidate, session_summarize)
	// then work on instead of opening the store again; nil, or a nil
	// result (the agent is not open yet), opens it for the phase, as a CLI
	// process must. An embedded chromem store is an index in the daemon's
	// memory over its folder: a second copy opened by a phase would change
	// the files under that index, which would go on serving pruned
	// memories and miss merged and summarised ones until a restart.
	Memory func() *Memory
}

// phaseMemory returns the memory store a phase works on and how to let go
// of it: the daemon's (deps.Memory; nothing to close) or one opened for the
// phase with o.
func phaseMemory(ctx context.Context, cfg *config.Config, deps MaintenanceDeps, o MemoryOptions) (*Memory, func() error, error) {
	if deps.Memory != nil {
		if m := deps.Memory(); m != nil {
			return m, func() error { return nil }, nil
		}
	}
	m, err := OpenMemory(ctx, cfg, o)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

// phasePruner returns m's pruner: the agent's when m is the agent's store,
// else a new one with the configuration's ceiling and archive.
func phasePruner(cfg *config.Config, m *Memory) (*prune.Pruner, error) {
	if m.Pruner != nil {
		return m.Pruner, nil
	}
	return prune.New(prune.Config{Ceiling: cfg.ChromaMaxVectors, ArchivePath: filepath.Join(cfg.Home, filepath.FromSlash(MemoryArchiveFile))}, m.Store)
}

// Maintenance is a dream scheduler with the host's phases, and what it must
// close.
type Maintenance struct {
	*dream.Scheduler
	redis *redis.Client
}

// Close releases the phases' connections.
func (m *Maintenance) Close() error {
	if m.redis != nil {
		return m.redis.Close()
	}
	return nil
}

// NewMaintenance builds the maintenance cycle for cfg: the schedule of
// TALOS_DREAM_SCHEDULE in TALOS_DREAM_TIMEZONE, state in DreamDir, and the
// phases redis_flush, vector_prune, memory_consolidate, session_summarize,
// log_compress, zombie_hunt, strike_expiry, skills_verify, backup (off
// unless TALOS_BACKUP_KEEP is set) and health_report, in that order.
func NewMaintenance(cfg *config.Config, deps MaintenanceDeps) (*Maintenance, error) {
	const op = "host.NewMaintenance"
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc, err := config.LoadTimezone(cfg.DreamTimezone)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "TALOS_DREAM_TIMEZONE "+cfg.DreamTimezone+" is not a known time zone", err)
	}
	alerter := deps.Alerter
	if alerter == nil {
		alerter = dream.AlerterFunc(func(ctx context.Context, a dream.Alert) error {
			log.Warn("maintenance alert", "kind", a.Kind, "phase", a.Phase, "message", a.Message, "file", a.File)
			return nil
		})
	}
	s, err := dream.New(dream.Config{StateDir: filepath.Join(cfg.Home, filepath.FromSlash(DreamDir)), Schedule: cfg.DreamSchedule,
		Location: loc, Logger: log}, alerter)
	if err != nil {
		return nil, err
	}
	delay, err := lookupPhaseDelay()
	if err != nil {
		return nil, err
	}
	register := func(p dream.Phase) error { return s.Register(delay.wrap(p)) }
	m := &Maintenance{Scheduler: s}
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, talos.E(talos.CodeRedis, op, "TALOS_REDIS_URL does not parse", nil)
		}
		m.redis = redis.NewClient(opt)
		c, err := redisphase.New(redisphase.Config{Disposable: DisposableRedisPrefixes()}, m.redis)
		if err != nil {
			m.Close()
			return nil, err
		}
		if err := register(c.Phase()); err != nil {
			m.Close()
			return nil, err
		}
	} else {
		must(register(dream.Phase{Name: dream.PhaseRedisFlush, Run: func(context.Context) (dream.PhaseResult, error) {
			return dream.PhaseResult{Skipped: "Redis is not configured: short-term state is in the daemon's memory and goes with it"}, nil
		}}))
	}
	logs := LogCompressor{Home: cfg.Home, Retention: map[int]time.Duration{
		2: time.Duration(cfg.LogTier2RetentionDays) * 24 * time.Hour,
		3: time.Duration(cfg.LogTier3RetentionDays) * 24 * time.Hour,
	}}
	must(register(dream.Phase{Name: dream.PhaseVectorPrune, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return vectorPrune(ctx, cfg, deps)
	}}))
	must(register(dream.Phase{Name: PhaseConsolidate, Timeout: TimeoutConsolidate, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return consolidate(ctx, cfg, deps)
	}}))
	must(register(dream.Phase{Name: PhaseSessionSummary, Timeout: TimeoutSessionSummary, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return summarizeSessions(ctx, cfg, deps, log)
	}}))
	must(register(dream.Phase{Name: dream.PhaseLogCompress, Run: logs.Run}))
	must(register(dream.Phase{Name: dream.PhaseZombieHunt, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return zombieHunt(ctx, cfg, log)
	}}))
	must(register(dream.Phase{Name: PhaseStrikeExpiry, Timeout: TimeoutStrikeExpiry, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		sk, err := OpenSkills(ctx, cfg, nil, log)
		if err != nil {
			return dream.PhaseResult{}, err
		}
		defer sk.Close()
		n, err := sk.Strikes.ExpireAll(ctx)
		res := dream.PhaseResult{Counters: map[string]int64{"strikes_expired": int64(n)}}
		if err == nil && n == 0 {
			res.Skipped = "no active strike is past its 30 days (security strikes never expire)"
		}
		return res, err
	}}))
	must(register(dream.Phase{Name: PhaseSkillsVerify, Timeout: TimeoutSkillsVerify, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return skillsVerify(ctx, cfg, log)
	}}))
	must(register(dream.Phase{Name: PhaseBackup, Timeout: TimeoutBackup, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return scheduledBackup(ctx, cfg, deps.Version)
	}}))
	must(register(dream.Phase{Name: dream.PhaseHealthReport, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		if deps.Health == nil {
			return dream.PhaseResult{Skipped: "no daemon runs in this process; `talos health` asks the running one"}, nil
		}
		ok, bad, summary, err := deps.Health(ctx)
		if err != nil {
			return dream.PhaseResult{}, err
		}
		res := dream.PhaseResult{Counters: map[string]int64{"checks_ok": int64(ok), "checks_not_ok": int64(bad)}}
		if bad > 0 {
			return res, fmt.Errorf("%d checks are not ok: %s", bad, summary)
		}
		return res, nil
	}}))
	return m, nil
}

// must panics on an error that only a programming mistake in this file can
// cause (a bad phase name, a phase registered twice).
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// The host's own phases: expire old strikes, re-check every skill's files
// and records.
const (
	PhaseConsolidate    = "memory_consolidate"
	TimeoutConsolidate  = 300 * time.Second
	PhaseStrikeExpiry   = "strike_expiry"
	TimeoutStrikeExpiry = 60 * time.Second
	PhaseSkillsVerify   = "skills_verify"
	TimeoutSkillsVerify = 120 * time.Second
)

// vectorPrune is the vector_prune phase: when the memories pass 90 % of
// CHROMADB_MAX_VECTORS, the lowest-scoring ones (never a permanent one, nor
// one inside its priority's guaranteed retention) are archived to
// MemoryArchiveFile and deleted, down to 80 %.
func vectorPrune(ctx context.Context, cfg *config.Config, deps MaintenanceDeps) (dream.PhaseResult, error) {
	m, release, err := phaseMemory(ctx, cfg, deps, MemoryOptions{})
	if err != nil {
		return dream.PhaseResult{}, err
	}
	defer release()
	p, err := phasePruner(cfg, m)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	rep, err := p.Run(ctx, prune.Params{TriggerRatio: prune.DefaultTriggerRatio, TargetRatio: prune.DefaultTargetRatio, Reason: "nightly maintenance"}, false)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	res := dream.PhaseResult{Counters: map[string]int64{"memories": int64(rep.Count), "memories_pruned": int64(rep.Deleted),
		"skipped_protected": int64(rep.SkippedProtected)}}
	if !rep.Triggered {
		res.Skipped = fmt.Sprintf("%d memories in %s, under the prune trigger of %d", rep.Count, m.Where, rep.Trigger)
	}
	if len(rep.Failed) > 0 {
		return res, fmt.Errorf("%d memories could not be deleted (archived; the next run retries)", len(rep.Failed))
	}
	return res, nil
}

// consolidate is the memory_consolidate phase: memories written in the
// last 26 hours that repeat another one (near-identical embedding, same
// source, trust and session) are folded into it, archived first and
// restorable (prune.Pruner.Consolidate).
func consolidate(ctx context.Context, cfg *config.Config, deps MaintenanceDeps) (dream.PhaseResult, error) {
	m, release, err := phaseMemory(ctx, cfg, deps, MemoryOptions{})
	if err != nil {
		return dream.PhaseResult{}, err
	}
	defer release()
	p, err := phasePruner(cfg, m)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	rep, err := p.Consolidate(ctx, time.Now().Add(-26*time.Hour), 0)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	res := dream.PhaseResult{Counters: map[string]int64{"memories_checked": int64(rep.Checked), "memories_merged": int64(rep.Merged)}}
	if rep.Merged == 0 {
		res.Skipped = fmt.Sprintf("none of the %d memories of the last day repeats another", rep.Checked)
	}
	return res, nil
}

// zombieHunt is the zombie_hunt phase: Talos-labelled containers older
// than the hunt's maximum age and not in use are stopped and removed,
// through the socket proxy when SOCKET_PROXY_URL is set, else on
// TALOS_DOCKER_HOST. Nothing unlabelled is touched.
func zombieHunt(ctx context.Context, cfg *config.Config, log *slog.Logger) (dream.PhaseResult, error) {
	hostURL := cfg.SocketProxyURL
	if hostURL == "" {
		hostURL = cfg.DockerHost
	}
	if hostURL == "" {
		return dream.PhaseResult{Skipped: "no Docker engine is configured (TALOS_DOCKER_HOST unset): no containers to hunt"}, nil
	}
	eng, err := reaperdocker.New(reaperdocker.Config{Host: hostURL})
	if err != nil {
		return dream.PhaseResult{}, err
	}
	defer eng.Close()
	h, err := reaper.NewHunter(reaper.HuntConfig{Logger: log}, eng, nil, nil)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	rep, err := h.Hunt(ctx)
	res := dream.PhaseResult{Counters: map[string]int64{"containers_removed": int64(len(rep.Removed)),
		"skipped": int64(len(rep.Skipped)), "failed": int64(len(rep.Failed))}}
	if err == nil && len(rep.Failed) > 0 {
		err = fmt.Errorf("%d containers could not be removed: %s", len(rep.Failed), rep.Failed[0].Err)
	}
	if err == nil && len(rep.Removed) == 0 {
		res.Skipped = rep.Summary()
	}
	return res, err
}

// skillsVerify is the skills_verify phase: quarantine's Reconcile (finish
// interrupted promotions, expire requests, move deprecated skills out of
// active) and a re-hash of every active skill; a changed active skill fails
// the phase, and the audit chains are verified.
func skillsVerify(ctx context.Context, cfg *config.Config, log *slog.Logger) (dream.PhaseResult, error) {
	sk, err := OpenSkills(ctx, cfg, nil, log)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	defer sk.Close()
	// The daemon may be running a skill or adding one now: only what is
	// older than the longest run counts as left over.
	rep, err := sk.Quarantine.ReconcileWhileRunning(ctx, sk.RunTimeout()+time.Minute)
	if err != nil {
		return dream.PhaseResult{}, err
	}
	res := dream.PhaseResult{Counters: map[string]int64{
		"requests_expired": int64(rep.Expired), "promotions_finished": int64(len(rep.Promoted)),
		"runs_interrupted": int64(len(rep.Interrupted)), "deprecated_moved": int64(len(rep.Deactivated)),
		"active_changed": int64(len(rep.ActiveChanged)), "temp_removed": int64(len(rep.TempRemoved)),
	}}
	qh, qerr := sk.Quarantine.Verify(ctx)
	sr, serr := sk.Strikes.Verify(ctx)
	res.Counters["audit_entries_verified"] = qh.Entries + sr.AuditEntries
	if err := errors.Join(qerr, serr); err != nil {
		return res, err
	}
	if len(rep.ActiveChanged) > 0 {
		names := make([]string, len(rep.ActiveChanged))
		for i, k := range rep.ActiveChanged {
			names[i] = k.String()
		}
		return res, fmt.Errorf("active skills changed on disk since approval: %s; they must be re-added and approved again", strings.Join(names, ", "))
	}
	return res, nil
}

// rotatedLog matches the files tlog has rotated away ("<prefix>.000012.log");
// the current file of a tier is never one of them.
var rotatedLog = regexp.MustCompile(`^[a-z0-9_-]+\.\d{6}\.log$`)

// LogCompressor is the log_compress phase: it gzips the rotated files of
// log tiers 2 and 3 and deletes compressed files older than their tier's
// retention. Tier 1, the audit log, is never compressed or deleted: its hash
// chain is verified from the plain files.
type LogCompressor struct {
	Home      string
	Retention map[int]time.Duration // by tier; 0 keeps files forever
}

// Run does one pass.
func (l LogCompressor) Run(ctx context.Context) (dream.PhaseResult, error) {
	res := dream.PhaseResult{Counters: map[string]int64{}}
	for _, tier := range []int{2, 3} {
		dir := filepath.Join(l.Home, filepath.FromSlash(layout.Logs), fmt.Sprintf("tier%d", tier))
		ents, err := os.ReadDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return res, err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			name := e.Name()
			path := filepath.Join(dir, name)
			switch {
			case e.Type().IsRegular() && rotatedLog.MatchString(name):
				saved, err := compress(path)
				if err != nil {
					return res, fmt.Errorf("compress %s: %w", path, err)
				}
				res.Counters["files_compressed"]++
				res.Counters["bytes_saved"] += saved
			case e.Type().IsRegular() && strings.HasSuffix(name, ".log.gz") && l.Retention[tier] > 0:
				fi, err := e.Info()
				if err != nil {
					continue
				}
				if time.Since(fi.ModTime()) > l.Retention[tier] {
					if err := os.Remove(path); err != nil {
						return res, err
					}
					res.Counters["files_deleted"]++
				}
			}
		}
	}
	if res.Counters["files_compressed"] == 0 && res.Counters["files_deleted"] == 0 {
		res.Skipped = "no rotated tier-2 or tier-3 log to compress and none past its retention"
	}
	return res, nil
}

// compress writes path.gz next to path (through a temporary file, synced,
// then renamed, so a crash leaves either the plain file or both) and
// removes path; it returns the bytes saved.
func compress(path string) (int64, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".compress-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	zw := gzip.NewWriter(tmp)
	if _, err := io.Copy(zw, in); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := zw.Close(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return 0, err
	}
	zfi, _ := tmp.Stat()
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), path+".gz"); err != nil {
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	if err := os.Remove(path); err != nil {
		return 0, err
	}
	return fi.Size() - zfi.Size(), nil
}

// Describe summarises the maintenance state for /health and `talos dream
// status`: the next window and the last cycle. It returns an error (the
// check warns) when the last cycle did not end ok, a retry is pending or a
// window was missed.
func (m *Maintenance) Describe(now time.Time) (string, error) {
	st, err := m.State(now)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("next cycle %s (%s %s)", st.NextWindow.Format("2006-01-02 15:04 MST"), m.Schedule(), m.Schedule().Location())
	if st.Last == nil {
		return detail + "; no cycle has run yet", nil
	}
	detail += fmt.Sprintf("; last cycle %s %s at %s in %s", st.Last.ID, st.Last.Outcome, st.Last.Finished.Format(time.RFC3339), st.Last.Duration().Round(time.Millisecond))
	var problems []string
	if st.Last.Outcome != dream.OutcomeOK {
		for _, p := range st.Last.Phases {
			if p.Status != dream.StatusOK && p.Status != dream.StatusSkipped {
				problems = append(problems, p.Name+" "+string(p.Status))
			}
		}
	}
	if len(st.RetryPhases) > 0 {
		problems = append(problems, fmt.Sprintf("retry of %s at %s", strings.Join(st.RetryPhases, ", "), st.RetryAt.Format(time.RFC3339)))
	}
	if st.Missed > 0 {
		problems = append(problems, fmt.Sprintf("%d scheduled windows missed", st.Missed))
	}
	if len(problems) > 0 {
		return detail, fmt.Errorf("maintenance needs attention: %s", strings.Join(problems, "; "))
	}
	return detail, nil
}
