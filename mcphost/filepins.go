package mcphost

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"sync"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
	"github.com/talos-ironclad/talos/mcphost/internal/filelock"
)

// FilePins is a PinStore in one JSON file (mode 0600, replaced atomically
// on every save), so approvals survive a restart: a definition changed
// while Talos was down is caught at the next start. Several processes may
// share the file (the daemon and `talos mcp approve`): LoadPins reads it
// each time (it is small, and read when tools are listed or approvals
// polled, never per call), and SavePins merges into what the file holds now
// under an exclusive lock (flock(2) on a lock file beside it, where the
// system has one), so neither loses the other's approvals.
type FilePins struct {
	path string
	mu   sync.Mutex
	pins map[string]map[string]string // the file as last read or written
}

type pinFile struct {
	Version int                          `json:"version"`
	Pins    map[string]map[string]string `json:"pins"`
}

// NewFilePins opens (or, when missing, starts) the pin file at path. A
// file that others can read or write, or that does not parse, is refused:
// the pins are security state.
func NewFilePins(path string) (*FilePins, error) {
	f := &FilePins{path: path, pins: map[string]map[string]string{}}
	if err := f.read(); err != nil {
		return nil, err
	}
	return f, nil
}

// read re-reads the file. f.mu is held (or f is not shared yet). A missing
// file keeps what is known. It reads every time: a stamp of the file (time,
// size, inode) can stay the same over two rewrites by another process
// within one clock tick, and an approval made there would be missed.
func (f *FilePins) read() error {
	const op = "mcphost.FilePins"
	st, err := os.Stat(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "cannot read the pin file "+f.path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return talos.Errorf(talos.CodeDirPermissions, op, "pin file %s has mode %04o: run chmod 600 %s", f.path, st.Mode().Perm(), f.path)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "cannot read the pin file "+f.path, err)
	}
	var pf pinFile
	if err := json.Unmarshal(b, &pf); err != nil || pf.Version != 1 {
		return talos.Errorf(talos.CodeConfigInvalid, op, "pin file %s is not a version-1 pin file: restore it from a backup, or move it away to approve every server again", f.path)
	}
	pins := map[string]map[string]string{}
	for id, p := range pf.Pins {
		if p == nil {
			p = map[string]string{}
		}
		pins[id] = p
	}
	f.pins = pins
	return nil
}

// LoadPins returns a copy of the pins of identity, as the file holds them
// now.
func (f *FilePins) LoadPins(_ context.Context, identity string) (map[string]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.read(); err != nil {
		return nil, false, err
	}
	p, ok := f.pins[identity]
	if !ok {
		return nil, false, nil
	}
	return maps.Clone(p), true, nil
}

// SavePins replaces the pins of identity and rewrites the file, keeping
// every other identity's pins as the file holds them now; when the write
// fails nothing changes.
func (f *FilePins) SavePins(_ context.Context, identity string, pins map[string]string) error {
	const op = "mcphost.FilePins.SavePins"
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := filelock.Lock(f.path + ".lock")
	if err != nil {
		return talos.E(talos.CodeDirPermissions, op, "locking the pin file "+f.path+" failed", err)
	}
	defer unlock()
	if err := f.read(); err != nil {
		return err
	}
	next := maps.Clone(f.pins)
	c := maps.Clone(pins)
	if c == nil {
		c = map[string]string{}
	}
	next[identity] = c
	b, err := json.MarshalIndent(pinFile{Version: 1, Pins: next}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(f.path, b, 0o600); err != nil {
		return talos.E(talos.CodeDirPermissions, op, "writing the pin file "+f.path+" failed", err)
	}
	f.pins = next
	return nil
}
