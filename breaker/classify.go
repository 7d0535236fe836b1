package breaker

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind is what a call's result means for the breaker.
type Kind uint8

// Kinds of Verdict.
const (
	// Success: the service answered. It closes a half-open breaker after
	// HalfOpenSuccesses probes.
	Success Kind = iota
	// Failure counts in the sliding window; FailureThreshold of them within
	// Window open the breaker, and one re-opens a half-open breaker.
	Failure
	// Ignore says nothing about the service's health (for example the
	// caller cancelled). A half-open probe slot is given back; with a
	// Delay, the next probe waits for it.
	Ignore
	// Trip opens the breaker at once, for at least Verdict.Delay.
	Trip
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignore:
		return "ignore"
	case Trip:
		return "trip"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Backoff, as a Verdict's Delay, asks the breaker for an exponential delay:
// BackoffBase doubling on each consecutive delayed result up to BackoffMax,
// reset by a success.
const Backoff time.Duration = -1

// Verdict is a classified result. With Kind Success, Failure or Ignore, a
// positive Delay makes a closed or half-open breaker reject calls for that
// long (a rate-limit wait) without opening it; a half-open breaker admits
// its next probe only after the delay. With Trip, the breaker opens for at
// least Delay.
type Verdict struct {
	Kind  Kind
	Delay time.Duration
}

// Classifier maps a call's non-nil error to a Verdict.
type Classifier func(err error) Verdict

// DefaultClassifier treats a cancelled context as Ignore (the caller gave up;
// the service may be fine) and every other error as Failure. A deadline that
// expired is a Failure: the service was too slow.
func DefaultClassifier(err error) Verdict {
	switch {
	case err == nil:
		return Verdict{Kind: Success}
	case errors.Is(err, context.Canceled):
		return Verdict{Kind: Ignore}
	}
	return Verdict{Kind: Failure}
}

// RateLimitTripAfter is the longest Retry-After that is waited out without
// opening the breaker (a 429 asking for more than 300 s trips it).
const RateLimitTripAfter = 300 * time.Second

// RateLimitVerdict applies the spec's 429 table to a Retry-After the caller
// parsed (ok = false when the response carried none):
//
//	Retry-After > 300 s     → Trip, open for at least that long
//	Retry-After 1 s..300 s  → Ignore, wait Retry-After + 1 s before the next call
//	absent or 0             → Failure, exponential backoff 5 s .. 60 s
//
// A short Retry-After is the service pacing us, not failing: the caller
// waits without tripping, and it does not count toward the failure window
// either (otherwise five paced 429s in 300 s would open the breaker for an
// hour).
func RateLimitVerdict(retryAfter time.Duration, ok bool) Verdict {
	switch {
	case ok && retryAfter > RateLimitTripAfter:
		return Verdict{Kind: Trip, Delay: retryAfter}
	case ok && retryAfter > 0:
		return Verdict{Kind: Ignore, Delay: retryAfter + time.Second}
	}
	return Verdict{Kind: Failure, Delay: Backoff}
}

// maxRetryAfter caps parsed values so that arithmetic on them cannot overflow.
const maxRetryAfter = 365 * 24 * time.Hour

// ParseRetryAfter parses an HTTP Retry-After value (RFC 9110 §10.2.3): either
// a non-negative number of seconds or an HTTP-date, which is turned into the
// time left after now (0 if it is in the past). It also accepts a
// protobuf-JSON duration such as "37s" or "1.5s", the form of Google's
// RetryInfo.retryDelay. Values above one year are capped at one year. ok is
// false for anything else.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true // all digits but huge: cap
		}
		return time.Duration(n) * time.Second, true
	}
	if s, found := strings.CutSuffix(v, "s"); found && s != "" && (s[0] >= '0' && s[0] <= '9') {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil && f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f) {
			if f > maxRetryAfter.Seconds() {
				return maxRetryAfter, true
			}
			return time.Duration(f * float64(time.Second)), true
		}
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		return 0, true
	}
	return min(d, maxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
