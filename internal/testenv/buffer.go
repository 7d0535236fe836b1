package testenv

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// LockedBuffer is a bytes.Buffer that a logger or command may write while
// a test reads it (a plain bytes.Buffer there is a data race).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// JSONLines decodes every line written so far that is a JSON object (a
// slog JSON handler's records); other lines are skipped.
func (l *LockedBuffer) JSONLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
