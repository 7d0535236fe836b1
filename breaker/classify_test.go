package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/breaker"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 120 * time.Second, true},
		{" 301 ", 301 * time.Second, true},
		{"0", 0, true},
		{"37s", 37 * time.Second, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"Mon, 23 Nov 2026 18:02:00 GMT", 2 * time.Minute, true}, // HTTP-date (fixed vs the spec)
		{"Mon, 23 Nov 2026 17:00:00 GMT", 0, true},               // in the past
		{"99999999999999999999999", 365 * 24 * time.Hour, true},
		{"-5", 0, false},
		{"soon", 0, false},
		{"", 0, false},
		{"NaNs", 0, false},
		{"1e400s", 0, false},
	} {
		got, ok := breaker.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRateLimitVerdictTable(t *testing.T) {
	for _, tc := range []struct {
		ra   time.Duration
		ok   bool
		want breaker.Verdict
	}{
		{301 * time.Second, true, breaker.Verdict{Kind: breaker.Trip, Delay: 301 * time.Second}},
		{300 * time.Second, true, breaker.Verdict{Kind: breaker.Ignore, Delay: 301 * time.Second}},
		{120 * time.Second, true, breaker.Verdict{Kind: breaker.Ignore, Delay: 121 * time.Second}},
		{0, true, breaker.Verdict{Kind: breaker.Failure, Delay: breaker.Backoff}},
		{0, false, breaker.Verdict{Kind: breaker.Failure, Delay: breaker.Backoff}},
	} {
		if got := breaker.RateLimitVerdict(tc.ra, tc.ok); got != tc.want {
			t.Errorf("RateLimitVerdict(%s, %v) = %+v, want %+v", tc.ra, tc.ok, got, tc.want)
		}
	}
}

func TestDefaultClassifier(t *testing.T) {
	if v := breaker.DefaultClassifier(fmt.Errorf("wrapped: %w", context.Canceled)); v.Kind != breaker.Ignore {
		t.Errorf("cancel = %v", v.Kind)
	}
	if v := breaker.DefaultClassifier(context.DeadlineExceeded); v.Kind != breaker.Failure {
		t.Errorf("deadline = %v", v.Kind)
	}
	if v := breaker.DefaultClassifier(errors.New("x")); v.Kind != breaker.Failure {
		t.Errorf("error = %v", v.Kind)
	}
	if v := breaker.DefaultClassifier(nil); v.Kind != breaker.Success {
		t.Errorf("nil = %v", v.Kind)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "37s", "1.5s", "Mon, 23 Nov 2026 18:02:00 GMT", "Monday, 23-Nov-26 18:02:00 GMT", "Mon Nov 23 18:02:00 2026", "-1", "1e9s", "0.000000001s", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := breaker.ParseRetryAfter(s, now)
		if !ok && d != 0 {
			t.Fatalf("%q: not ok but d = %s", s, d)
		}
		if d < 0 || d > 365*24*time.Hour {
			t.Fatalf("%q: d = %s out of [0, 1y]", s, d)
		}
		v := breaker.RateLimitVerdict(d, ok)
		if v.Kind == breaker.Trip && d <= breaker.RateLimitTripAfter {
			t.Fatalf("%q: tripped on %s", s, d)
		}
	})
}
