package chatapi

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Rate limit defaults: API_RATE_LIMIT_MAX requests per API_RATE_LIMIT_WINDOW
// (100 per 60 s by default).
const (
	DefaultRateLimit  = 100
	DefaultRateWindow = 60 * time.Second
	// maxLimiterKeys bounds the clients tracked at once; beyond it the
	// oldest windows are dropped first.
	maxLimiterKeys = 4096
)

// limiter counts requests per client in fixed windows.
type limiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*rateWindow
}

type rateWindow struct {
	start time.Time
	n     int
}

// allow counts one request of key and reports whether it is within the
// limit; when it is not, wait is how long until the window ends.
func (l *limiter) allow(key string) (ok bool, wait time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.seen[key]
	if w == nil || now.Sub(w.start) >= l.window {
		if w == nil && len(l.seen) >= maxLimiterKeys {
			l.gcLocked(now)
		}
		w = &rateWindow{start: now}
		l.seen[key] = w
	}
	if w.n >= l.max {
		return false, w.start.Add(l.window).Sub(now)
	}
	w.n++
	return true, 0
}

// gcLocked drops finished windows, and the oldest ones if still full.
func (l *limiter) gcLocked(now time.Time) {
	for k, w := range l.seen {
		if now.Sub(w.start) >= l.window {
			delete(l.seen, k)
		}
	}
	for len(l.seen) >= maxLimiterKeys {
		var oldest string
		for k, w := range l.seen {
			if oldest == "" || w.start.Before(l.seen[oldest].start) {
				oldest = k
			}
		}
		delete(l.seen, oldest)
	}
}

// clientKey is the request's remote host: limits apply per client machine,
// before credentials are checked (so they also slow password guessing).
func clientKey(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// limit answers 429 with Retry-After when the client is over its limit.
func (h *handler) limit(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := h.rate.allow(clientKey(r))
	if ok {
		return true
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, ErrorBody{"too many requests: at most " + strconv.Itoa(h.rate.max) + " per " + h.rate.window.String() +
		" (API_RATE_LIMIT_MAX / API_RATE_LIMIT_WINDOW); retry in " + strconv.Itoa(secs) + " s"})
	return false
}
