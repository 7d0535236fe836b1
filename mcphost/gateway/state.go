package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
	"github.com/talos-ironclad/talos/mcphost/internal/filelock"
)

// StateStore keeps a Verifier's revocations and used request nonces beyond
// the life of one process, so a restart neither forgets a revoked token nor
// accepts a request it already served. Several processes may share one store
// (the operator's `revoke` and a serving daemon): UseNonce reports the
// revocations stored by all of them.
type StateStore interface {
	// Revoked returns every stored revocation: token ID → when it can be
	// forgotten (its expiry plus the tolerated skew).
	Revoked() (map[string]time.Time, error)
	// Revoke stores that the token with this ID is revoked until until.
	Revoke(id string, until time.Time) error
	// UseNonce stores nonce as used until until and reports whether it
	// was fresh (stored by no one before), together with every stored
	// revocation.
	UseNonce(nonce string, until time.Time) (fresh bool, revoked map[string]time.Time, err error)
}

// FileState is a StateStore in one JSON file (mode 0600). A file is enough
// here: the entries are few (a nonce lives as long as the clock skew
// tolerated, a revocation until its token expires, and both are dropped
// after); each change is one read-merge-write under an exclusive flock(2) on
// a lock file beside it (where the system has one), so processes sharing
// the file never lose each other's entries; and each write goes through
// atomicfile, so a crash leaves the old file or the new one, never a torn
// one. It needs no database to be running, which
// the tunnel's two ends (`mcp serve`, `mcp connect`) do not otherwise need.
type FileState struct {
	path string
}

// stateFile is FileState's format. Times are Unix seconds.
type stateFile struct {
	Revoked map[string]int64 `json:"revoked"`
	Nonces  map[string]int64 `json:"nonces"`
}

// NewFileState returns the store at path, creating nothing until the first
// change. An existing file that does not parse is an error now, not at the
// first request.
func NewFileState(path string) (*FileState, error) {
	if path == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "gateway.NewFileState", "the state file path is empty")
	}
	s := &FileState{path: path}
	if _, err := s.read(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the file's path.
func (s *FileState) Path() string { return s.path }

func (s *FileState) read() (stateFile, error) {
	f := stateFile{Revoked: map[string]int64{}, Nonces: map[string]int64{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, talos.E(talos.CodeUnauthorized, "gateway.FileState", "reading the revocation and nonce file "+s.path+" failed", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, talos.E(talos.CodeUnauthorized, "gateway.FileState", "the revocation and nonce file "+s.path+" is damaged (restore it from a backup; deleting it forgets revocations)", err)
	}
	if f.Revoked == nil {
		f.Revoked = map[string]int64{}
	}
	if f.Nonces == nil {
		f.Nonces = map[string]int64{}
	}
	return f, nil
}

// update runs fn on the file's content under the lock and writes the result
// (without entries whose time has passed) when fn reports a change.
func (s *FileState) update(fn func(*stateFile) bool) (stateFile, error) {
	const op = "gateway.FileState"
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return stateFile{}, talos.E(talos.CodeUnauthorized, op, "creating the directory of "+s.path+" failed", err)
	}
	unlock, err := filelock.Lock(s.path + ".lock")
	if err != nil {
		return stateFile{}, talos.E(talos.CodeUnauthorized, op, "locking "+s.path+" failed", err)
	}
	defer unlock()
	f, err := s.read()
	if err != nil {
		return f, err
	}
	if !fn(&f) {
		return f, nil
	}
	now := time.Now().Unix()
	for _, m := range []map[string]int64{f.Revoked, f.Nonces} {
		for k, until := range m {
			if until < now {
				delete(m, k)
			}
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return f, talos.E(talos.CodeUnauthorized, op, "encoding the state failed", err)
	}
	if err := atomicfile.WriteFile(s.path, b, 0o600); err != nil {
		return f, talos.E(talos.CodeUnauthorized, op, fmt.Sprintf("writing %s failed", s.path), err)
	}
	return f, nil
}

// Revoked implements StateStore.
func (s *FileState) Revoked() (map[string]time.Time, error) {
	f, err := s.read()
	return times(f.Revoked), err
}

// Revoke implements StateStore.
func (s *FileState) Revoke(id string, until time.Time) error {
	_, err := s.update(func(f *stateFile) bool {
		f.Revoked[id] = max(f.Revoked[id], until.Unix())
		return true
	})
	return err
}

// UseNonce implements StateStore.
func (s *FileState) UseNonce(nonce string, until time.Time) (bool, map[string]time.Time, error) {
	fresh := false
	f, err := s.update(func(f *stateFile) bool {
		if _, used := f.Nonces[nonce]; used {
			return false
		}
		fresh = true
		f.Nonces[nonce] = until.Unix()
		return true
	})
	if err != nil {
		return false, nil, err
	}
	return fresh, times(f.Revoked), nil
}

func times(m map[string]int64) map[string]time.Time {
	out := make(map[string]time.Time, len(m))
	for k, v := range m {
		out[k] = time.Unix(v, 0)
	}
	return out
}
