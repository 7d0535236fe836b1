package dream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Files and directories under Config.StateDir.
const (
	lockFile       = "dream.lock"
	ledgerFile     = "ledger.json"
	checkpointFile = "checkpoint.json"
	reportsDir     = "reports"
	escalationsDir = "escalations"
	stateVersion   = 1
)

// writeFileAtomic replaces path with data (mode 0600) so a reader, or a
// process started after a crash, sees the old or the new content, never a
// mix: write a temporary file in the same directory, fsync it, rename it
// over path, fsync the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: create a temporary file in %s: %w (check the directory exists and is writable)", path, dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: chmod %s: %w", path, tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: sync %s: %w", path, tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close %s: %w", path, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename %s over it: %w", path, tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort
		_ = d.Close()
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// readJSON decodes path into v; a missing file leaves v as it is and
// returns false.
func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, &corruptError{path: path, err: err}
	}
	return true, nil
}

// corruptError is a state file that does not decode.
type corruptError struct {
	path string
	err  error
}

func (e *corruptError) Error() string { return fmt.Sprintf("decode %s: %v", e.path, e.err) }
func (e *corruptError) Unwrap() error { return e.err }

// setAside renames a state file that does not decode to
// <name>.corrupt-<unix>, so the scheduler starts afresh instead of
// stopping for good, and the file is kept for a person to look at.
func (s *Scheduler) setAside(err error) error {
	var ce *corruptError
	if !errors.As(err, &ce) {
		return err
	}
	to := fmt.Sprintf("%s.corrupt-%d", ce.path, time.Now().Unix())
	if rerr := os.Rename(ce.path, to); rerr != nil {
		return errors.Join(err, rerr)
	}
	s.log.Error("dream state file did not decode; set aside, starting afresh", "file", ce.path, "moved_to", to, "err", ce.err)
	return nil
}

// ledger is what ran when: it makes a window run at most once and limits
// automatic on-demand runs, across processes and restarts. It is read and
// written only while holding the lock.
type ledger struct {
	Version int `json:"version"`
	// LastWindow is the latest scheduled window that was started or
	// recorded as missed (on a fresh state directory: its first use), so
	// every window after it is still due.
	LastWindow time.Time `json:"last_window,omitzero"`
	// LastAutomatic is when the latest automatic on-demand run started.
	LastAutomatic time.Time `json:"last_automatic,omitzero"`
	// Missed counts windows that passed without a run, ever.
	Missed int `json:"missed,omitempty"`
	// IdleNights counts, per phase, the scheduled cycles in a row in
	// which the phase did nothing useful.
	IdleNights map[string]int `json:"idle_nights,omitempty"`
}

// Cycle states in the checkpoint.
const (
	cpRunning      = "running"       // a cycle is (or was, if nobody holds the lock) running
	cpRetryPending = "retry_pending" // failed phases wait for their retry
	cpDone         = "done"          // nothing left to do
)

// checkpoint is the state of the latest cycle, rewritten atomically before
// and after every phase, so a killed cycle resumes where it stopped.
type checkpoint struct {
	Version int       `json:"version"`
	CycleID string    `json:"cycle_id"`
	Kind    Kind      `json:"kind"`
	Reason  string    `json:"reason,omitempty"`
	Window  time.Time `json:"window,omitzero"`
	Started time.Time `json:"cycle_start"`
	State   string    `json:"state"`
	// Phases are the names this cycle runs, in order.
	Phases []string `json:"phases"`
	// Done holds the reports of the phases that finished.
	Done []PhaseReport `json:"done,omitempty"`
	// Current is the phase in progress; CurrentStarts counts how often it
	// was started in this cycle (more than one means a crash during it).
	Current       string                     `json:"current,omitempty"`
	CurrentStarts int                        `json:"current_starts,omitempty"`
	Progress      map[string]json.RawMessage `json:"progress,omitempty"`
	Resumed       int                        `json:"resumed,omitempty"`
	// Retry state: the phases still failing, the retry count so far and
	// when the next retry is due.
	Failed       []string  `json:"failed,omitempty"`
	RetryAttempt int       `json:"retry_attempt,omitempty"`
	NextRetryAt  time.Time `json:"next_retry_at,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	// Origin is the ID of the cycle whose failures a retry cycle retries.
	Origin string `json:"origin,omitempty"`
}

func (s *Scheduler) path(name string) string { return filepath.Join(s.cfg.StateDir, name) }

// loadLedger reads the ledger; one that does not decode is set aside and
// a fresh one returned. The lock is held.
func (s *Scheduler) loadLedger() (ledger, error) {
	l, err := s.readLedger()
	if err != nil {
		l = ledger{IdleNights: map[string]int{}}
		err = s.setAside(err)
	}
	return l, err
}

// readLedger reads the ledger without changing anything (for State, which
// runs without the lock); a file that does not decode is a *corruptError.
func (s *Scheduler) readLedger() (ledger, error) {
	var l ledger
	_, err := readJSON(s.path(ledgerFile), &l)
	if l.IdleNights == nil {
		l.IdleNights = map[string]int{}
	}
	return l, err
}

func (s *Scheduler) saveLedger(l ledger) error {
	l.Version = stateVersion
	return writeJSON(s.path(ledgerFile), l)
}

// loadCheckpoint reads the checkpoint (nil: none); one that does not
// decode is set aside. The lock is held.
func (s *Scheduler) loadCheckpoint() (*checkpoint, error) {
	cp, err := s.readCheckpoint()
	if err != nil {
		return nil, s.setAside(err)
	}
	return cp, nil
}

// readCheckpoint reads the checkpoint without changing anything; a file
// that does not decode is a *corruptError.
func (s *Scheduler) readCheckpoint() (*checkpoint, error) {
	var cp checkpoint
	ok, err := readJSON(s.path(checkpointFile), &cp)
	if err != nil || !ok {
		return nil, err
	}
	return &cp, nil
}

func (s *Scheduler) saveCheckpoint(cp *checkpoint) error {
	cp.Version = stateVersion
	return writeJSON(s.path(checkpointFile), cp)
}
