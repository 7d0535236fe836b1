package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
)

// Restart cap (the original specification's watchdog restart policy): 5 an
// hour, 10 s backoff.
const (
	MaxRestartsPerHour = 5
	RestartBackoff     = 10 * time.Second
)

// Dir is the lifecycle state folder, relative to TALOS_HOME.
const Dir = "data/lifecycle"

// Run describes one run of the daemon, as its marker records it.
type Run struct {
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	BootID  string    `json:"boot_id"`
}

// state is the persisted restart history.
type state struct {
	Unclean []time.Time `json:"unclean_restarts"`
}

// Recovery is what Begin found about the previous run.
type Recovery struct {
	// Unclean is set when the previous run did not stop cleanly (crash,
	// SIGKILL, power loss): its marker was still there.
	Unclean bool
	// Previous is the previous run's marker, when Unclean.
	Previous Run
	// RecentUnclean counts the unclean restarts in the last hour,
	// this one included.
	RecentUnclean int
	// Wait is how long to wait before starting (RestartBackoff after an
	// unclean stop less than RestartBackoff ago, else 0).
	Wait time.Duration
}

// Lifecycle manages the run marker and the restart history of a home.
type Lifecycle struct {
	dir string
}

// New returns the lifecycle of home.
func New(home string) *Lifecycle {
	return &Lifecycle{dir: filepath.Join(home, filepath.FromSlash(Dir))}
}

func (l *Lifecycle) markerPath() string { return filepath.Join(l.dir, "running.json") }
func (l *Lifecycle) statePath() string  { return filepath.Join(l.dir, "restarts.json") }

// Begin records the start of a run. When the previous run's marker is
// still there, that run ended uncleanly: it is counted, and when more than
// MaxRestartsPerHour unclean restarts happened in the last hour Begin
// refuses (T404) so a supervisor's restart loop stops instead of spinning.
// The refusal leaves the marker in place: the next attempt is refused too,
// until an hour has passed or an operator runs `talos run` after fixing the
// cause (Clear).
func (l *Lifecycle) Begin(r Run) (Recovery, error) {
	const op = "lifecycle.Begin"
	var rec Recovery
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return rec, talos.E(talos.CodeDirPermissions, op, "cannot create "+l.dir, err)
	}
	var st state
	if b, err := os.ReadFile(l.statePath()); err == nil {
		if json.Unmarshal(b, &st) != nil {
			st = state{} // a damaged history counts as none; the marker still tells
		}
	}
	now := time.Now().UTC()
	b, err := os.ReadFile(l.markerPath())
	switch {
	case err == nil:
		rec.Unclean = true
		_ = json.Unmarshal(b, &rec.Previous)
		st.Unclean = append(st.Unclean, now)
	case !errors.Is(err, fs.ErrNotExist):
		return rec, talos.E(talos.CodeDirPermissions, op, "cannot read "+l.markerPath(), err)
	}
	var recent []time.Time
	for _, t := range st.Unclean {
		if now.Sub(t) < time.Hour {
			recent = append(recent, t)
		}
	}
	st.Unclean = recent
	rec.RecentUnclean = len(recent)
	if n := len(recent); n >= 2 && now.Sub(recent[n-2]) < RestartBackoff {
		rec.Wait = RestartBackoff - now.Sub(recent[n-2])
	}
	sb, _ := json.Marshal(st)
	if err := atomicfile.WriteFile(l.statePath(), sb, 0o600); err != nil {
		return rec, talos.E(talos.CodeDirPermissions, op, "cannot write "+l.statePath(), err)
	}
	if len(recent) > MaxRestartsPerHour {
		return rec, talos.Errorf(talos.CodePanic, op,
			"%d unclean restarts in the last hour (at most %d): Talos will not start again until the cause is found; read the tier-2 log, then `talos run --clear-restarts`",
			len(recent), MaxRestartsPerHour)
	}
	mb, _ := json.Marshal(r)
	if err := atomicfile.WriteFile(l.markerPath(), mb, 0o600); err != nil {
		return rec, talos.E(talos.CodeDirPermissions, op, "cannot write "+l.markerPath(), err)
	}
	return rec, nil
}

// End records a clean stop: the marker goes.
func (l *Lifecycle) End() error {
	if err := os.Remove(l.markerPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lifecycle.End: %w", err)
	}
	return nil
}

// Clear forgets the restart history (an operator found the cause).
func (l *Lifecycle) Clear() error {
	if err := os.Remove(l.statePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
