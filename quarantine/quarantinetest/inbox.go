package quarantinetest

import (
	"context"
	"sync"

	"github.com/talos-ironclad/talos/quarantine"
)

// Inbox is a quarantine.Notifier for tests: it keeps every notice, so a
// test can read the approval code a person would have received. Set Fail
// to make deliveries fail. It is safe for concurrent use.
type Inbox struct {
	mu      sync.Mutex
	notices []quarantine.Notice
	// Fail, when not nil, is returned by Notify instead of delivering.
	Fail error
}

var _ quarantine.Notifier = (*Inbox)(nil)

// Notify implements quarantine.Notifier.
func (in *Inbox) Notify(_ context.Context, n quarantine.Notice) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.Fail != nil {
		return in.Fail
	}
	in.notices = append(in.notices, n)
	return nil
}

// Name implements quarantine.Notifier.
func (in *Inbox) Name() string { return "inbox" }

// Code returns the code of the latest notice about key, and whether there
// was one.
func (in *Inbox) Code(key quarantine.Key) (string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := len(in.notices) - 1; i >= 0; i-- {
		if in.notices[i].Key == key {
			return in.notices[i].Code, true
		}
	}
	return "", false
}

// Notices returns every notice delivered so far, oldest first.
func (in *Inbox) Notices() []quarantine.Notice {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]quarantine.Notice(nil), in.notices...)
}
