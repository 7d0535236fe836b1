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
)

// FilePins is a PinStore in one JSON file (mode 0600, replaced atomically
// on every save), so approvals survive a restart: a definition changed
// while Talos was down is caught at the next start.
type FilePins struct {
	path string
	mu   sync.Mutex
	pins map[string]map[string]string
}

type pinFile struct {
	Version int                          `json:"version"`
	Pins    map[string]map[string]string `json:"pins"`
}

// NewFilePins opens (or, when missing, starts) the pin file at path. A
// file that others can read or write, or that does not parse, is refused:
// the pins are security state.
func NewFilePins(path string) (*FilePins, error) {
	const op = "mcphost.NewFilePins"
	f := &FilePins{path: path, pins: map[string]map[string]string{}}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot read the pin file "+path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, talos.Errorf(talos.CodeDirPermissions, op, "pin file %s has mode %04o: run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot read the pin file "+path, err)
	}
	var pf pinFile
	if err := json.Unmarshal(b, &pf); err != nil || pf.Version != 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "pin file %s is not a version-1 pin file: restore it from a backup, or move it away to approve every server again", path)
	}
	for id, p := range pf.Pins {
		if p == nil {
			p = map[string]string{}
		}
		f.pins[id] = p
	}
	return f, nil
}

// LoadPins returns a copy of the pins of identity.
func (f *FilePins) LoadPins(_ context.Context, identity string) (map[string]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pins[identity]
	if !ok {
		return nil, false, nil
	}
	return maps.Clone(p), true, nil
}

// SavePins replaces the pins of identity and rewrites the file; when the
// write fails nothing changes.
func (f *FilePins) SavePins(_ context.Context, identity string, pins map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
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
		return talos.E(talos.CodeDirPermissions, "mcphost.FilePins.SavePins", "writing the pin file "+f.path+" failed", err)
	}
	f.pins = next
	return nil
}
