//go:build unix

package filelock_test

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/mcphost/internal/filelock"
)

// A second Lock gets the lock only after the first holder released it.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := filelock.Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	var released atomic.Bool
	sawRelease := make(chan bool)
	go func() {
		u, err := filelock.Lock(path)
		if err != nil {
			t.Error(err)
		} else {
			defer u()
		}
		sawRelease <- released.Load()
	}()
	time.Sleep(50 * time.Millisecond) // give the second Lock its chance to get in early
	released.Store(true)
	unlock()
	if !<-sawRelease {
		t.Fatal("the second Lock got the lock while the first held it")
	}
}
