package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos/atomicfile"
)

// PanicFile is the panic signal file, relative to TALOS_HOME (SIGNAL_PANIC,
// as in the original specification's emergency procedure). Writing it asks
// the running daemon for its graceful shutdown.
const PanicFile = "SIGNAL_PANIC"

// PanicPoll is how often the daemon looks for the panic file (spec: 5 s).
const PanicPoll = 5 * time.Second

// PanicRequest is the optional content of the panic file. An empty or
// unreadable file still panics, with the defaults.
type PanicRequest struct {
	InitiatedBy string    `json:"initiated_by"`
	Reason      string    `json:"reason"`
	Timestamp   time.Time `json:"timestamp"`
}

// RequestPanic writes the panic file of home (0600, atomically).
func RequestPanic(home string, r PanicRequest) error {
	if r.Timestamp.IsZero() {
		r.Timestamp = time.Now().UTC()
	}
	b, _ := json.Marshal(r)
	return atomicfile.WriteFile(filepath.Join(home, PanicFile), b, 0o600)
}

// WatchPanic polls for the panic file of home every PanicPoll until ctx
// ends; when it appears, WatchPanic removes it and returns the request
// (defaults filled in when the file is empty or not JSON).
func WatchPanic(ctx context.Context, home string) (PanicRequest, bool) {
	path := filepath.Join(home, PanicFile)
	t := time.NewTicker(PanicPoll)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
			var r PanicRequest
			if json.Unmarshal(b, &r) != nil || r.Reason == "" {
				r.Reason = "panic signal file"
			}
			if r.InitiatedBy == "" {
				r.InitiatedBy = "unknown"
			}
			os.Remove(path)
			return r, true
		}
		select {
		case <-ctx.Done():
			return PanicRequest{}, false
		case <-t.C:
		}
	}
}
