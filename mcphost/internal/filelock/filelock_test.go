//go:build unix

package filelock_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/talos-ironclad/talos/mcphost/internal/filelock"
)

// While Lock holds the lock, no other open file description gets it (a
// non-blocking flock says so at once, without waiting); after unlock, a
// second Lock does.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := filelock.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("flock on a held lock: %v, want EWOULDBLOCK", err)
	}
	unlock()
	u, err := filelock.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	u()
}
