package boot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRetrySucceedsOnAttemptK(t *testing.T) {
	for _, k := range []int{1, 3, 10} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				var waits []int
				start := time.Now()
				err := Retry(context.Background(), RetryPolicy{Attempts: RedisAttempts, Delay: RetryDelay},
					func(a int, err error) { waits = append(waits, a) },
					func(ctx context.Context) error {
						calls++
						if calls < k {
							return errors.New("not yet")
						}
						return nil
					})
				if err != nil {
					t.Fatalf("Retry: %v", err)
				}
				if calls != k || len(waits) != k-1 {
					t.Fatalf("calls %d waits %v, want %d calls", calls, waits, k)
				}
				if el := time.Since(start); el != time.Duration(k-1)*time.Second {
					t.Fatalf("elapsed %v, want %ds", el, k-1)
				}
			})
		})
	}
}

func TestRetryExhausts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		var waits []int
		last := errors.New("connection refused")
		start := time.Now()
		err := Retry(context.Background(), RetryPolicy{Attempts: PostgresAttempts, Delay: RetryDelay},
			func(a int, err error) { waits = append(waits, a) },
			func(ctx context.Context) error { calls++; return last })
		if calls != 15 {
			t.Fatalf("calls = %d, want exactly 15 (attempt N+1 must never happen)", calls)
		}
		if len(waits) != 14 || waits[0] != 1 || waits[13] != 14 {
			t.Fatalf("waits %v", waits)
		}
		if el := time.Since(start); el != 14*time.Second {
			t.Fatalf("elapsed %v, want 14s (no wait after the last attempt)", el)
		}
		if !errors.Is(err, last) || !strings.Contains(err.Error(), "failed after 15 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRetryStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		calls := 0
		err := Retry(ctx, RetryPolicy{Attempts: 10, Delay: time.Second}, nil,
			func(ctx context.Context) error { calls++; return errors.New("down") })
		if calls != 3 {
			t.Fatalf("calls = %d, want 3 (at 0s, 1s, 2s)", calls)
		}
		if !strings.Contains(err.Error(), "gave up after 3 of 10 attempts") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRetryCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	err := Retry(ctx, RetryPolicy{Attempts: 0}, nil, func(ctx context.Context) error { calls++; return nil })
	if !errors.Is(err, context.Canceled) || calls != 0 {
		t.Fatalf("err %v calls %d", err, calls)
	}
}
