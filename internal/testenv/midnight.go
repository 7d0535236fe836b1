package testenv

import (
	"testing"
	"time"
)

// AwayFromUTCMidnight returns at once unless the next UTC midnight is
// closer than within; then it waits until that midnight has passed. A test
// that counts something under the current UTC day (token counters) and
// then reads it back under a day it works out itself calls it first, so
// the two days cannot differ.
func AwayFromUTCMidnight(t testing.TB, within time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	if left := midnight.Sub(now); left < within {
		t.Logf("waiting %v for the UTC day to change before the test counts under it", left.Round(time.Millisecond))
		time.Sleep(left + 10*time.Millisecond)
	}
}
