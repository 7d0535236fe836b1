package breakertest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/talos-ironclad/talos/breaker"
)

// FailingStore is a breaker.Store whose every call fails with Err: use it to
// check that your code keeps working (on the breaker's local state) while the
// shared store is down. Calls counts the calls made.
type FailingStore struct {
	Err   error
	Calls atomic.Int64
}

var _ breaker.Store = (*FailingStore)(nil)

// AddFailure implements breaker.Store.
func (f *FailingStore) AddFailure(context.Context, string, time.Time, time.Duration) (int, error) {
	f.Calls.Add(1)
	return 0, f.Err
}

// ClearFailures implements breaker.Store.
func (f *FailingStore) ClearFailures(context.Context, string) error {
	f.Calls.Add(1)
	return f.Err
}

// Save implements breaker.Store.
func (f *FailingStore) Save(context.Context, string, breaker.Record) error {
	f.Calls.Add(1)
	return f.Err
}

// Load implements breaker.Store.
func (f *FailingStore) Load(context.Context, string) (breaker.Record, bool, error) {
	f.Calls.Add(1)
	return breaker.Record{}, false, f.Err
}

// AcquireProbe implements breaker.Store.
func (f *FailingStore) AcquireProbe(context.Context, string, int64, string, int, time.Time, time.Duration) (bool, error) {
	f.Calls.Add(1)
	return false, f.Err
}

// ReleaseProbe implements breaker.Store.
func (f *FailingStore) ReleaseProbe(context.Context, string, int64, string) error {
	f.Calls.Add(1)
	return f.Err
}

// ProbeSuccess implements breaker.Store.
func (f *FailingStore) ProbeSuccess(context.Context, string, int64, string) (int, error) {
	f.Calls.Add(1)
	return 0, f.Err
}
