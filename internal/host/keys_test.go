package host_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/host"
)

func TestKeyIsMadeOnceAndKept(t *testing.T) {
	home := t.TempDir()
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := host.Key(home, "audit")
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if len(k) != host.KeyLen || !bytes.Equal(k, keys[0]) {
			t.Fatalf("concurrent callers got different keys")
		}
	}
	path := filepath.Join(home, "keys", "audit.key")
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(filepath.Join(home, "keys")); len(ents) != 1 {
		t.Errorf("left temporary files: %v", ents)
	}
	os.Chmod(path, 0o644)
	if _, err := host.Key(home, "audit"); !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("readable key: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := host.Key(home, "audit"); err == nil || !strings.Contains(err.Error(), "holds 5 bytes") {
		t.Errorf("short key: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Error("a damaged key was replaced")
	}
	if _, err := host.Key(home, "../x"); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("bad name: %v", err)
	}
}
