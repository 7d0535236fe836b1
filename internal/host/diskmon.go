package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/layout"
)

// DiskLevel is how full the home's file system is.
type DiskLevel int32

// Disk levels and the used fraction at which each starts (as in the original
// specification's disk monitor): warning 0.80, critical 0.90, emergency 0.95.
const (
	DiskOK DiskLevel = iota
	DiskWarning
	DiskCritical
	DiskEmergency
)

// Thresholds and interval of the disk monitor.
const (
	DiskWarnAt      = 0.80
	DiskCriticalAt  = 0.90
	DiskEmergencyAt = 0.95
	DiskInterval    = 300 * time.Second
)

// String names the level: ok, warning, critical or emergency.
func (l DiskLevel) String() string {
	switch l {
	case DiskWarning:
		return "warning"
	case DiskCritical:
		return "critical"
	case DiskEmergency:
		return "emergency"
	}
	return "ok"
}

// DiskUsage reports the used and total bytes of the file system holding
// path.
type DiskUsage func(path string) (used, total uint64, err error)

// StatfsUsage is DiskUsage from statfs(2), measured as df measures Use%:
// used is what is taken, total is used plus what an ordinary user may still
// write (blocks reserved for root count in neither).
func StatfsUsage(path string) (used, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	used = (st.Blocks - st.Bfree) * uint64(st.Bsize)
	return used, used + st.Bavail*uint64(st.Bsize), nil
}

// DiskMonitor watches the file system of a Talos home every DiskInterval
// and acts on the highest level reached (the actions are not cumulative,
// as in the spec, but each level's include the cheaper ones' effect):
//
//   - warning: ask the maintenance cycle for an extra run (at most one an
//     hour, the dream scheduler's rule);
//   - critical: empty TALOS_HOME/tmp, compress rotated tier-2 and tier-3
//     logs and delete compressed ones older than 3 days;
//   - emergency: the same with 1 day, and a critical alert.
//
// The tier-1 audit log is never deleted or compressed (the spec's glob
// would have deleted it). Level tells writers (memories, skill runs) to
// refuse new work while the disk is in emergency.
type DiskMonitor struct {
	Home    string
	Usage   DiskUsage     // nil: StatfsUsage
	Maint   *Maintenance  // nil: warnings only logged
	Alerter dream.Alerter // nil: alerts only logged
	Log     *slog.Logger  // nil: discard
	level   atomic.Int32  // last DiskLevel
	last    atomic.Pointer[string]
}

// Level is the level of the last check.
func (m *DiskMonitor) Level() DiskLevel { return DiskLevel(m.level.Load()) }

// Detail describes the last check, for /health.
func (m *DiskMonitor) Detail() string {
	if p := m.last.Load(); p != nil {
		return *p
	}
	return "not checked yet"
}

// DiskLevelOf measures the file system of home once (usage nil: statfs)
// and returns its level, for a process without a running monitor (a CLI
// command about to run a skill).
func DiskLevelOf(home string, usage DiskUsage) (DiskLevel, float64, error) {
	if usage == nil {
		usage = StatfsUsage
	}
	used, total, err := usage(home)
	if err != nil || total == 0 {
		if err == nil {
			err = fmt.Errorf("file system of %s reports a size of 0", home)
		}
		return DiskOK, 0, err
	}
	frac := float64(used) / float64(total)
	switch {
	case frac >= DiskEmergencyAt:
		return DiskEmergency, frac, nil
	case frac >= DiskCriticalAt:
		return DiskCritical, frac, nil
	case frac >= DiskWarnAt:
		return DiskWarning, frac, nil
	}
	return DiskOK, frac, nil
}

// Run checks at once and then every DiskInterval until ctx ends.
func (m *DiskMonitor) Run(ctx context.Context) {
	t := time.NewTicker(DiskInterval)
	defer t.Stop()
	for {
		m.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check measures once, acts on the level and returns it.
func (m *DiskMonitor) Check(ctx context.Context) (DiskLevel, error) {
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	level, frac, err := DiskLevelOf(m.Home, m.Usage)
	if err != nil {
		log.Error("disk monitor: cannot measure the disk", "home", m.Home, "err", err)
		return m.Level(), talos.E(talos.CodeDiskCritical, "host.DiskMonitor", "cannot measure the disk of "+m.Home, err)
	}
	m.level.Store(int32(level))
	detail := fmt.Sprintf("%.1f%% used (%s)", frac*100, level)
	var actErr error
	switch level {
	case DiskWarning:
		if m.Maint != nil {
			if _, err := m.Maint.Request(ctx, "disk "+detail); err != nil && !isBusy(err) {
				actErr = err
			}
		}
	case DiskCritical, DiskEmergency:
		keep := 3 * 24 * time.Hour
		if level == DiskEmergency {
			keep = 24 * time.Hour
		}
		freed := clearTmp(filepath.Join(m.Home, layout.Tmp))
		res, err := LogCompressor{Home: m.Home, Retention: map[int]time.Duration{2: keep, 3: keep}}.Run(ctx)
		actErr = err
		detail += fmt.Sprintf("; emptied tmp (%d entries), compressed %d logs, deleted %d old ones", freed, res.Counters["files_compressed"], res.Counters["files_deleted"])
		if level == DiskEmergency {
			a := dream.Alert{Severity: talos.SeverityCritical, Kind: "disk_emergency", Time: time.Now(),
				Message: fmt.Sprintf("Disk emergency on %s: %.1f%% full; new memories and skill runs are refused until space is freed", m.Home, frac*100)}
			if m.Alerter != nil {
				if err := m.Alerter.Alert(ctx, a); err != nil {
					log.Error("disk monitor: alert failed", "err", err)
				}
			}
		}
	}
	m.last.Store(&detail)
	if level != DiskOK {
		log.Warn("disk monitor", "home", m.Home, "level", level.String(), "detail", detail, "err", actErr)
	}
	return level, actErr
}

func isBusy(err error) bool { return err != nil && talos.CodeOf(err) == talos.CodeMaintenanceBusy }

// clearTmp removes what is inside dir (never dir itself) and returns how
// many entries went.
func clearTmp(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if os.RemoveAll(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}
