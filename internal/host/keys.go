package host

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/layout"
)

// KeyLen is the length of the keys Key makes, in bytes.
const KeyLen = 32

var keyName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Key returns the secret key name of the home: TALOS_HOME/keys/<name>.key,
// KeyLen random bytes made on first use, mode 0600. Two processes asking
// at once get the same key: the file is written under a temporary name and
// linked into place, and the loser reads the winner's. A key file of the
// wrong length or mode is an error, never silently replaced (everything it
// signed would stop verifying).
func Key(home, name string) ([]byte, error) {
	const op = "host.Key"
	if !keyName.MatchString(name) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "key name %q: want a-z, 0-9, '_' or '-', starting with a letter", name)
	}
	dir := filepath.Join(home, layout.Keys)
	path := filepath.Join(dir, name+".key")
	if b, err := readKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, wrapKey(op, path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, wrapKey(op, path, err)
	}
	key := make([]byte, KeyLen)
	rand.Read(key)
	tmp, err := os.CreateTemp(dir, ".new-"+name+"-")
	if err != nil {
		return nil, wrapKey(op, path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, wrapKey(op, path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, wrapKey(op, path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	b, err := readKey(path)
	return b, wrapKey(op, path, err)
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("mode %v lets others read it; chmod 600 it (and consider the key leaked)", fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != KeyLen {
		return nil, fmt.Errorf("it holds %d bytes, want %d: restore it from a backup (a new key would not verify what the old one signed)", len(b), KeyLen)
	}
	return b, nil
}

func wrapKey(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return talos.E(talos.CodeDirPermissions, op, "key "+path+" is unusable", err)
}
