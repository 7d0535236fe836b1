package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// LogsStreamPath streams the daemon's log lines as server-sent events: the
// lines still in the feed's memory, then each new one as it is logged.
const LogsStreamPath = "/api/logs/stream"

// DefaultLogFeedSize is how many recent lines a LogFeed keeps for a page
// that opens later.
const DefaultLogFeedSize = 500

// LogLine is one log line as the logs view shows it. Tier is 2 for
// operational lines (Info and above) and 3 for debug lines, as the tiered
// logs file them.
type LogLine struct {
	Seq           uint64    `json:"seq"`
	Time          time.Time `json:"time"`
	Level         string    `json:"level"`
	Tier          int       `json:"tier"`
	Msg           string    `json:"msg"`
	Attrs         string    `json:"attrs,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`

	// fields are the record's own top-level values as text (redacted),
	// for views that pick lines by their fields.
	fields map[string]string
}

// LogFeed is a slog.Handler that keeps the most recent log lines in memory
// and hands each new one to the logs view as it is logged. Messages and
// values pass through the same redaction as the log files, so a URL's
// credentials or a password=… pair never reach the page. Add it beside
// the daemon's other handlers (tlog.Fanout).
type LogFeed struct {
	core  *feedCore
	inner slog.Handler
}

type feedCore struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	lines   []LogLine // ring, oldest first once full
	size    int
	next    uint64
	changed chan struct{} // closed and replaced on every new line
}

// NewLogFeed returns a feed keeping the last size lines (DefaultLogFeedSize
// when size <= 0).
func NewLogFeed(size int) *LogFeed {
	if size <= 0 {
		size = DefaultLogFeedSize
	}
	c := &feedCore{size: size, next: 1, changed: make(chan struct{})}
	return &LogFeed{core: c, inner: slog.NewTextHandler(&c.buf, &slog.HandlerOptions{
		Level: slog.LevelDebug - 8,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return redactAttr(a)
		},
	})}
}

// redactAttr is redact.ReplaceAttr, and the value of an attribute whose
// key names a credential (password, token, api_key…) replaced whole.
func redactAttr(a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindGroup && redact.Text(a.Key+"=v") != a.Key+"=v" {
		return slog.String(a.Key, redact.Redacted)
	}
	return redact.ReplaceAttr(nil, a)
}

// Enabled reports true for every level: tier 3 keeps debug lines too.
func (f *LogFeed) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r as a LogLine and wakes the pages following the feed.
func (f *LogFeed) Handle(ctx context.Context, r slog.Record) error {
	c := f.core
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	if err := f.inner.Handle(ctx, r); err != nil {
		return err
	}
	tier := 2
	if r.Level < slog.LevelInfo {
		tier = 3
	}
	line := LogLine{Seq: c.next, Time: r.Time.UTC(), Level: r.Level.String(), Tier: tier, Msg: redact.Text(r.Message),
		Attrs: strings.TrimSpace(c.buf.String()), CorrelationID: tlog.CorrelationID(ctx)}
	r.Attrs(func(a slog.Attr) bool {
		a = redactAttr(a)
		if k := a.Value.Kind(); k != slog.KindGroup {
			if line.fields == nil {
				line.fields = map[string]string{}
			}
			line.fields[a.Key] = a.Value.Resolve().String()
		}
		return true
	})
	c.next++
	if len(c.lines) == c.size {
		copy(c.lines, c.lines[1:])
		c.lines = c.lines[:c.size-1]
	}
	c.lines = append(c.lines, line)
	close(c.changed)
	c.changed = make(chan struct{})
	return nil
}

// WithAttrs returns a handler adding attrs to every line; it shares the feed.
func (f *LogFeed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &LogFeed{core: f.core, inner: f.inner.WithAttrs(attrs)}
}

// WithGroup returns a handler nesting later attributes under name; it
// shares the feed.
func (f *LogFeed) WithGroup(name string) slog.Handler {
	return &LogFeed{core: f.core, inner: f.inner.WithGroup(name)}
}

// After returns the kept lines with a sequence number above seq, and a
// channel closed when a newer line arrives.
func (f *LogFeed) After(seq uint64) ([]LogLine, <-chan struct{}) {
	c := f.core
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []LogLine
	for _, l := range c.lines {
		if l.Seq > seq {
			out = append(out, l)
		}
	}
	return out, c.changed
}

// serveLogs streams the feed as server-sent events ("line" events carrying
// a LogLine) until the client goes away. A feed that is not wired sends one
// "unavailable" event saying so.
func (d *Dashboard) serveLogs(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream lasts as long as the page
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush() // the page knows it is connected before the first line
	send := func(name string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if d.deps.Logs == nil {
		send("unavailable", errorBody{Error: notWired})
		return
	}
	var seq uint64
	if s := r.URL.Query().Get("after"); s != "" {
		seq, _ = strconv.ParseUint(s, 10, 64)
	}
	// A comment now and then shows a dead connection.
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		lines, changed := d.deps.Logs.After(seq)
		for _, l := range lines {
			if !send("line", l) {
				return
			}
			seq = l.Seq
		}
		select {
		case <-changed:
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-d.stop:
			return
		}
	}
}
