package tlog

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
)

// Dirs are the directories of the three tiers (layout.Layout.LogDir(1..3)).
type Dirs struct {
	Tier1, Tier2, Tier3 string
}

// DirsUnder returns the tier directories under a logs root laid out as in
// the directory tree: root/tier1, root/tier2, root/tier3 (layout.Logs).
func DirsUnder(logsRoot string) Dirs {
	return Dirs{
		Tier1: filepath.Join(logsRoot, "tier1"),
		Tier2: filepath.Join(logsRoot, "tier2"),
		Tier3: filepath.Join(logsRoot, "tier3"),
	}
}

// Set is the daemon's three tiers opened together.
type Set struct {
	// Audit writes tier 1 (security events, hash-chained). Use the Audit
	// helper with it.
	Audit *slog.Logger
	// Ops writes tier 2 (operations) at Info and above.
	Ops *slog.Logger
	// Debug writes tier 3 (debug and trace) at Debug and above.
	Debug *slog.Logger

	handlers [3]*Handler
}

// OpenSet opens the three tiers. opts applies to each (its Level is ignored:
// each tier keeps its own default).
func OpenSet(d Dirs, opts Options) (*Set, error) {
	opts.Level = nil
	s := &Set{}
	for i, dir := range []string{d.Tier1, d.Tier2, d.Tier3} {
		h, err := Open(dir, Tier(i+1), opts)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.handlers[i] = h
	}
	s.Audit = slog.New(s.handlers[0])
	s.Ops = slog.New(s.handlers[1])
	s.Debug = slog.New(s.handlers[2])
	return s, nil
}

// Handler returns the handler of tier (1, 2 or 3).
func (s *Set) Handler(t Tier) *Handler { return s.handlers[t-1] }

// Logger returns the logger packages get injected: records at Info and above
// go to tier 2, and every record (Debug and above) to tier 3, each with the
// context's correlation ID. Security events go to Audit explicitly.
func (s *Set) Logger() *slog.Logger {
	return slog.New(Fanout(s.handlers[1], s.handlers[2]))
}

// Close closes every tier.
func (s *Set) Close() error {
	var err error
	for _, h := range s.handlers {
		if h != nil {
			err = errors.Join(err, h.Close())
		}
	}
	return err
}

// Fanout returns a handler sending each record to every handler that is
// enabled for its level (for example a tier handler and a console handler).
func Fanout(hs ...slog.Handler) slog.Handler { return fanout(hs) }

type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
	var err error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			err = errors.Join(err, h.Handle(ctx, r.Clone()))
		}
	}
	return err
}

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(name string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(name)
	}
	return out
}

// EventKey is the attribute naming a tier-1 event.
const EventKey = "event"

// Audit writes one security event to the tier-1 logger l: the message and
// the "event" attribute are event (a stable snake_case name such as
// "sockproxy_denied"), followed by attrs. The context's correlation ID is
// added by the handler. A nil logger is a no-op, so packages can take an
// optional audit logger. Never pass secrets; log a hash or the shape.
func Audit(ctx context.Context, l *slog.Logger, event string, attrs ...slog.Attr) {
	if l == nil {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	l.LogAttrs(ctx, slog.LevelInfo, event, append([]slog.Attr{slog.String(EventKey, event)}, attrs...)...)
}
