package breaker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// Defaults of the circuit breaker, those of the Gemini breaker of the
// original specification. A zero Config field takes these values.
const (
	// DefaultFailureThreshold is FAILURE_THRESHOLD: failures within Window
	// that open the breaker.
	DefaultFailureThreshold = 5
	// DefaultWindow is FAILURE_WINDOW_SECONDS: the sliding window in which
	// failures are counted.
	DefaultWindow = 300 * time.Second
	// DefaultOpenFor is COOLDOWN (60 min, "Local Only Mode"): the open
	// period when no ladder is configured.
	DefaultOpenFor = 60 * time.Minute
	// DefaultHalfOpenProbes is HALF_OPEN_MAX_REQUESTS: calls admitted while
	// half-open.
	DefaultHalfOpenProbes = 3
	// DefaultHalfOpenSuccesses is HALF_OPEN_SUCCESS_THRESHOLD: probe
	// successes that close the breaker.
	DefaultHalfOpenSuccesses = 2
	// DefaultBackoffBase and DefaultBackoffMax bound the exponential backoff
	// asked for by a Verdict with Delay == Backoff (base 5 s, max 60 s).
	DefaultBackoffBase = 5 * time.Second
	DefaultBackoffMax  = 60 * time.Second
	// DefaultStoreTimeout bounds each Store call made from Done, which has no
	// context of its own.
	DefaultStoreTimeout = 2 * time.Second
	// DefaultProbeLease is how long a half-open probe slot taken in a
	// shared Store stays taken when its call never reports (its process
	// died): longer than `talos ask`'s default timeout of 2 min.
	DefaultProbeLease = 3 * time.Minute
	// DefaultName names a breaker whose Config has none.
	DefaultName = "breaker"
)

// State is the state of a breaker. The numeric values are not the spec's hex
// codes; use String for display.
type State uint8

// States of a breaker.
const (
	Closed   State = iota // calls pass; failures are counted in the window
	Open                  // calls fail fast with T205 until the open period ends
	HalfOpen              // a few probe calls decide whether to close or re-open
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Transition describes one change of state, passed to Config.OnStateChange.
type Transition struct {
	Name    string
	From    State
	To      State
	Reason  string
	At      time.Time
	OpenFor time.Duration // the open period, when To is Open
	// Failures counted in this process's window when the breaker opened
	// from Closed (the spec's failure_count for monitoring).
	Failures int
}

// Config configures a Breaker. A zero field means the spec default named
// next to it.
type Config struct {
	// Name identifies the breaker in errors, logs and the Store.
	Name string
	// FailureThreshold failures within Window open the breaker
	// (DefaultFailureThreshold).
	FailureThreshold int
	// Window is the sliding failure window (DefaultWindow).
	Window time.Duration
	// OpenFor is the ladder of open periods: the first trip opens for
	// OpenFor[0], a re-open from half-open (or a trip soon after a close)
	// for the next entry, and so on, staying on the last. Empty means
	// [DefaultOpenFor], the spec's fixed 60 min.
	OpenFor []time.Duration
	// LadderResetAfter: a trip that comes at least this long after the last
	// close starts the ladder again at OpenFor[0]. Zero means Window.
	LadderResetAfter time.Duration
	// HalfOpenProbes is how many calls half-open admits (DefaultHalfOpenProbes).
	HalfOpenProbes int
	// HalfOpenSuccesses probe successes close the breaker
	// (DefaultHalfOpenSuccesses). It must not exceed HalfOpenProbes.
	HalfOpenSuccesses int
	// BackoffBase and BackoffMax bound the exponential delay of a Verdict
	// whose Delay is Backoff (DefaultBackoffBase, DefaultBackoffMax).
	BackoffBase, BackoffMax time.Duration
	// Classifier maps a call's non-nil error to a Verdict. Nil means
	// DefaultClassifier. A nil error is always a Success.
	Classifier Classifier
	// OnStateChange, if set, is called after every transition, outside the
	// breaker's lock (it may call the breaker).
	OnStateChange func(Transition)
	// StoreTimeout bounds each Store call made from AllowContext and
	// DoneContext (DefaultStoreTimeout), within the caller's context. With a Store, Done on a failure or a
	// transition makes one or two store round-trips, and Allow and Done
	// of a half-open probe make one each (the probe quota and successes
	// are shared); the closed-success and open-reject paths make none.
	StoreTimeout time.Duration
	// ProbeLease is how long a probe slot taken in a shared Store stays
	// taken if its Ticket is never reported (DefaultProbeLease). It should
	// exceed the longest call.
	ProbeLease time.Duration
	// Logger receives transitions and store errors; nil discards.
	Logger *slog.Logger
}

// Breaker is a circuit breaker. It is safe for concurrent use; no lock is
// held while a call runs, and the closed-success and open-reject paths take no
// lock and allocate nothing.
type Breaker struct {
	// word packs generation<<32 | probes<<8 | state. Every transition bumps
	// the generation, so tickets of an earlier state are recognised.
	word       atomic.Uint64
	delayUntil atomic.Int64 // unix ns; closed-state delay after a Verdict.Delay; 0 = none
	openUntil  atomic.Int64 // unix ns; end of the current open period
	backoffOn  atomic.Bool  // a consecutive backoff sequence is running

	nSuccess, nFailure, nIgnored, nRejected, nTrips atomic.Uint64

	cfg      Config
	classify Classifier
	store    Store
	log      *slog.Logger

	errOpen, errHalfOpen, errDelayed error

	mu         sync.Mutex
	ring       []int64 // unix ns of the last FailureThreshold failures
	ringPos    int
	ringLen    int
	hoSuccess  int
	step       int // next ladder index
	closedAt   time.Time
	backoffN   int
	timer      *time.Timer
	lastChange int64 // unix ns of the last transition or adopted record

	// Cold: used only by half-open probes with a Store.
	probeSeq atomic.Uint64 // numbers this process's shared probe slots
	probeID  string        // random prefix that makes probe ids unique across processes
}

const (
	stateMask  = 0xff
	probeShift = 8
	probeUnit  = 1 << probeShift
	genShift   = 32
)

func pack(gen uint32, s State) uint64  { return uint64(gen)<<genShift | uint64(s) }
func stateOf(w uint64) State           { return State(w & stateMask) }
func genOf(w uint64) uint32            { return uint32(w >> genShift) }
func probesOf(w uint64) int            { return int(w>>probeShift) & 0xff }
func nextGen(w uint64, s State) uint64 { return pack(genOf(w)+1, s) }
func discard() *slog.Logger            { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func durMax(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// New returns a closed breaker. store may be nil (state lives in this process
// only); with a Store, failures are counted across every process sharing it
// and trips are saved so that Sync can restore them after a restart.
func New(cfg Config, store Store) (*Breaker, error) {
	const op = "breaker.New"
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	bad := func(field string, v any, allowed string) error {
		return talos.Errorf(talos.CodeConfigInvalid, op, "breaker %q: %s = %v is invalid: %s", cfg.Name, field, v, allowed)
	}
	if cfg.FailureThreshold < 0 || cfg.FailureThreshold > 1000 {
		return nil, bad("FailureThreshold", cfg.FailureThreshold, "allowed 1..1000, 0 for the default 5")
	}
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = DefaultFailureThreshold
	}
	if cfg.Window < 0 {
		return nil, bad("Window", cfg.Window, "must be positive, 0 for the default 300s")
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	for i, d := range cfg.OpenFor {
		if d <= 0 {
			return nil, bad(fmt.Sprintf("OpenFor[%d]", i), d, "every open period must be positive")
		}
	}
	if len(cfg.OpenFor) == 0 {
		cfg.OpenFor = []time.Duration{DefaultOpenFor}
	} else {
		cfg.OpenFor = append([]time.Duration(nil), cfg.OpenFor...)
	}
	if cfg.LadderResetAfter < 0 {
		return nil, bad("LadderResetAfter", cfg.LadderResetAfter, "must be positive, 0 for Window")
	}
	if cfg.LadderResetAfter == 0 {
		cfg.LadderResetAfter = cfg.Window
	}
	if cfg.HalfOpenProbes < 0 || cfg.HalfOpenProbes > 255 {
		return nil, bad("HalfOpenProbes", cfg.HalfOpenProbes, "allowed 1..255, 0 for the default 3")
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if cfg.HalfOpenSuccesses < 0 {
		return nil, bad("HalfOpenSuccesses", cfg.HalfOpenSuccesses, "must be positive, 0 for the default 2")
	}
	if cfg.HalfOpenSuccesses == 0 {
		cfg.HalfOpenSuccesses = min(DefaultHalfOpenSuccesses, cfg.HalfOpenProbes)
	}
	if cfg.HalfOpenSuccesses > cfg.HalfOpenProbes {
		return nil, bad("HalfOpenSuccesses", cfg.HalfOpenSuccesses, fmt.Sprintf("must not exceed HalfOpenProbes (%d), or the breaker could never close", cfg.HalfOpenProbes))
	}
	if cfg.BackoffBase < 0 || cfg.BackoffMax < 0 {
		return nil, bad("BackoffBase/BackoffMax", fmt.Sprint(cfg.BackoffBase, "/", cfg.BackoffMax), "must be positive, 0 for the defaults 5s/60s")
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		return nil, bad("BackoffMax", cfg.BackoffMax, fmt.Sprintf("must be at least BackoffBase (%s)", cfg.BackoffBase))
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.ProbeLease < 0 {
		return nil, bad("ProbeLease", cfg.ProbeLease, "must be positive, 0 for the default 3m")
	}
	if cfg.ProbeLease == 0 {
		cfg.ProbeLease = DefaultProbeLease
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	b := &Breaker{cfg: cfg, classify: cfg.Classifier, store: store, log: cfg.Logger, probeID: hex.EncodeToString(rnd[:])}
	if b.classify == nil {
		b.classify = DefaultClassifier
	}
	if b.log == nil {
		b.log = discard()
	}
	b.ring = make([]int64, cfg.FailureThreshold)
	b.errOpen = talos.Errorf(talos.CodeCircuitOpen, "breaker.Allow",
		"breaker %q is open: calls fail fast until its cooldown ends; use a fallback (local-only mode) or retry after Remaining()", cfg.Name)
	b.errHalfOpen = talos.Errorf(talos.CodeCircuitOpen, "breaker.Allow",
		"breaker %q is half-open and its %d probe calls are taken: retry when the probes have finished", cfg.Name, cfg.HalfOpenProbes)
	b.errDelayed = talos.Errorf(talos.CodeCircuitOpen, "breaker.Allow",
		"breaker %q is backing off after a rate limit or error that asked for a delay: retry after Remaining()", cfg.Name)
	return b, nil
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.cfg.Name }

// State returns the current state.
func (b *Breaker) State() State { return stateOf(b.word.Load()) }

// Ticket is the permission to make one call, returned by Allow. Call Done (or
// Report) exactly once when the call has finished. A Ticket is a small value;
// passing it around allocates nothing.
type Ticket struct {
	b *Breaker
	// word is the breaker's word when the call was admitted; bits 16..31
	// (unused by the breaker's own word) carry the number of a probe slot
	// held in the Store, 0 = none, so the Ticket stays two words.
	word uint64
}

const (
	ticketProbeShift = 16
	ticketProbeMask  = 0xffff
)

// probe returns the number of the Store probe slot t holds (0 = none).
func (t Ticket) probe() uint64 { return t.word >> ticketProbeShift & ticketProbeMask }

// Allow is AllowContext without a context: a half-open probe's Store round
// trip is bounded by StoreTimeout only.
func (b *Breaker) Allow() (Ticket, error) { return b.AllowContext(context.Background()) }

// AllowContext asks to make one call. It returns a T205 CIRCUIT_OPEN error
// when the breaker is open, when half-open has admitted all its probes, or
// while a delay asked for by a Verdict runs (closed or half-open).
// Otherwise the caller makes the call and then calls Ticket.DoneContext
// with its error. Only a half-open probe with a Store blocks: its round
// trip ends with ctx or after StoreTimeout, whichever comes first, and logs
// with ctx (so a request's correlation ID reaches the line).
func (b *Breaker) AllowContext(ctx context.Context) (Ticket, error) {
	for {
		w := b.word.Load()
		switch stateOf(w) {
		case Closed:
			if d := b.delayUntil.Load(); d != 0 {
				if time.Now().UnixNano() < d {
					b.nRejected.Add(1)
					return Ticket{}, b.errDelayed
				}
				b.delayUntil.CompareAndSwap(d, 0)
			}
			return Ticket{b: b, word: w}, nil
		case Open:
			b.nRejected.Add(1)
			return Ticket{}, b.errOpen
		default:
			if t, done, err := b.allowHalfOpen(ctx, w); done {
				return t, err
			}
		}
	}
}

// allowHalfOpen is Allow's half-open case, kept out of Allow so that the
// closed and open paths stay small. done is false when the word changed
// under it and Allow must look again.
func (b *Breaker) allowHalfOpen(ctx context.Context, w uint64) (t Ticket, done bool, err error) {
	if d := b.delayUntil.Load(); d != 0 && time.Now().UnixNano() < d {
		b.nRejected.Add(1)
		return Ticket{}, true, b.errDelayed
	}
	if probesOf(w) >= b.cfg.HalfOpenProbes {
		b.nRejected.Add(1)
		return Ticket{}, true, b.errHalfOpen
	}
	if !b.word.CompareAndSwap(w, w+probeUnit) {
		return Ticket{}, false, nil
	}
	if b.store != nil {
		t, err = b.acquireShared(ctx, w+probeUnit)
		return t, true, err
	}
	return Ticket{b: b, word: w + probeUnit}, true, nil
}

// acquireShared takes a probe slot of the current half-open period in the
// Store, after the local slot of word w was taken. A refusal gives the local
// slot back; a store error keeps it (the local quota still bounds probes).
func (b *Breaker) acquireShared(ctx context.Context, w uint64) (Ticket, error) {
	seq := b.probeSeq.Add(1) & ticketProbeMask
	if seq == 0 {
		seq = b.probeSeq.Add(1) & ticketProbeMask
	}
	period := periodOf(b.openUntil.Load())
	sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
	ok, err := b.store.AcquireProbe(sctx, b.cfg.Name, period, b.probeName(genOf(w), seq), b.cfg.HalfOpenProbes, time.Now(), b.cfg.ProbeLease)
	cancel()
	if err != nil {
		b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "AcquireProbe", "err", err)
		return Ticket{b: b, word: w}, nil
	}
	if !ok {
		b.giveBackProbe(w)
		b.nRejected.Add(1)
		return Ticket{}, b.errHalfOpen
	}
	return Ticket{b: b, word: w | seq<<ticketProbeShift}, nil
}

// giveBackProbe returns the local probe slot of a ticket of word w, unless
// the breaker has left that half-open period.
func (b *Breaker) giveBackProbe(w uint64) {
	for {
		c := b.word.Load()
		if genOf(c) != genOf(w) || probesOf(c) == 0 || b.word.CompareAndSwap(c, c-probeUnit) {
			return
		}
	}
}

// probeName names probe slot seq of generation gen of this breaker value,
// uniquely across processes.
func (b *Breaker) probeName(gen uint32, seq uint64) string {
	return b.probeID + "-" + strconv.FormatUint(uint64(gen), 36) + "-" + strconv.FormatUint(seq, 36)
}

// periodOf turns an open period's end (unix ns) into the identity of the
// half-open period that follows it (unix µs, as stores keep times).
func periodOf(untilNS int64) int64 { return untilNS / 1000 }

// Done is DoneContext without a context.
func (t Ticket) Done(err error) { t.DoneContext(context.Background(), err) }

// DoneContext reports the outcome of the call: err is classified by the
// breaker's Classifier (nil is a Success). DoneContext on a zero Ticket
// does nothing.
//
// With a Store, a failure, a transition or a half-open probe's result makes
// Store round trips; they carry ctx's values (the request's correlation ID
// reaches the breaker's log lines) but not its cancellation, since the call
// is over and the outcome must still be shared, and are bounded by
// StoreTimeout.
func (t Ticket) DoneContext(ctx context.Context, err error) {
	if t.b == nil {
		return
	}
	if err == nil {
		t.b.report(ctx, t, Verdict{})
		return
	}
	t.b.report(ctx, t, t.b.classify(err))
}

// Report is ReportContext without a context.
func (t Ticket) Report(v Verdict) { t.ReportContext(context.Background(), v) }

// ReportContext is DoneContext with a Verdict the caller computed itself.
func (t Ticket) ReportContext(ctx context.Context, v Verdict) {
	if t.b != nil {
		t.b.report(ctx, t, v)
	}
}

// Execute runs fn through b: it fails fast with T205 when b rejects the call,
// otherwise runs fn and reports its error to b. A panic in fn counts as a
// failure and is re-raised.
func Execute[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	t, err := b.AllowContext(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	finished := false
	defer func() {
		if !finished {
			t.ReportContext(ctx, Verdict{Kind: Failure})
		}
	}()
	v, err := fn(ctx)
	finished = true
	t.DoneContext(ctx, err)
	return v, err
}

func (b *Breaker) report(ctx context.Context, t Ticket, v Verdict) {
	if v.Kind == Success && v.Delay == 0 && stateOf(t.word) == Closed {
		b.nSuccess.Add(1)
		if b.backoffOn.Load() {
			b.mu.Lock()
			b.backoffN = 0
			b.backoffOn.Store(false)
			b.mu.Unlock()
		}
		return
	}
	b.reportSlow(context.WithoutCancel(ctx), t, v)
}

// pending collects what must happen after the lock is released.
type pending struct {
	tr      []Transition
	save    *Record
	clear   bool
	addFail int64 // unix ns of a failure to add to the store, 0 = none
	gen     uint32
	// probeOK: a shared probe (number probeOK of period) succeeded; count
	// it in the store and close when the period has enough successes.
	probeOK uint64
	period  int64
	local   int // probe successes seen by this process in the period
}

// reportSlow handles every outcome but a plain closed success; ctx carries
// the caller's values, not its cancellation.
func (b *Breaker) reportSlow(ctx context.Context, t Ticket, v Verdict) {
	w := t.word
	if t.probe() != 0 && v.Kind == Ignore {
		// Give the shared slot back before the local one, so that a
		// probe admitted locally next finds it free.
		sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
		err := b.store.ReleaseProbe(sctx, b.cfg.Name, periodOf(b.openUntil.Load()), b.probeName(genOf(w), t.probe()))
		cancel()
		if err != nil {
			b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "ReleaseProbe", "err", err)
		}
	}
	now := time.Now()
	var p pending
	b.mu.Lock()
	cur := b.word.Load()
	stale := genOf(cur) != genOf(w)
	switch v.Kind {
	case Success:
		b.nSuccess.Add(1)
		if stale {
			break
		}
		b.backoffN = 0
		b.backoffOn.Store(false)
		if stateOf(cur) == HalfOpen {
			b.hoSuccess++
			if t.probe() != 0 {
				// A shared probe: the Store counts the successes of
				// every process and after() decides, outside the lock.
				p.probeOK, p.period, p.gen, p.local = t.probe(), periodOf(b.openUntil.Load()), genOf(cur), b.hoSuccess
			} else if b.hoSuccess >= b.cfg.HalfOpenSuccesses {
				b.toClosedLocked(now, fmt.Sprintf("%d probe calls succeeded", b.hoSuccess), &p)
				break
			}
		}
		if v.Delay != 0 {
			b.delayLocked(now, v.Delay)
		}
	case Ignore:
		b.nIgnored.Add(1)
		if stale {
			break
		}
		if v.Delay != 0 {
			// In half-open too: a rate-limited probe must hold the next
			// probes off for the delay, or a service that paces us is
			// probed on every request. Set before the slot is given back.
			b.delayLocked(now, v.Delay)
		}
		if stateOf(cur) == HalfOpen {
			// Give the probe slot back: an ignored result says nothing
			// about the service's health.
			b.giveBackProbe(w)
		}
	case Trip:
		b.nFailure.Add(1)
		if stale || stateOf(cur) == Open {
			break
		}
		b.toOpenLocked(now, v.Delay, "the classifier asked to trip", &p)
	default: // Failure
		b.nFailure.Add(1)
		if stale {
			break
		}
		switch stateOf(cur) {
		case HalfOpen:
			b.toOpenLocked(now, 0, "a half-open probe failed", &p)
		case Closed:
			b.ring[b.ringPos] = now.UnixNano()
			b.ringPos = (b.ringPos + 1) % len(b.ring)
			if b.ringLen < len(b.ring) {
				b.ringLen++
			}
			if n := b.countLocked(now); n >= b.cfg.FailureThreshold {
				b.toOpenLocked(now, 0, fmt.Sprintf("failure threshold exceeded: %d failures within %s", n, b.cfg.Window), &p)
				break
			}
			if b.store != nil {
				p.addFail = now.UnixNano()
				p.gen = genOf(cur)
			}
			if v.Delay != 0 {
				b.delayLocked(now, v.Delay)
			}
		}
	}
	b.mu.Unlock()
	b.after(ctx, &p)
}

// countLocked returns the failures of the ring inside the window ending at now.
func (b *Breaker) countLocked(now time.Time) int {
	from := now.Add(-b.cfg.Window).UnixNano()
	n := 0
	for i := 0; i < b.ringLen; i++ {
		if b.ring[i] > from {
			n++
		}
	}
	return n
}

func (b *Breaker) delayLocked(now time.Time, d time.Duration) {
	if d == Backoff {
		d = b.cfg.BackoffBase << min(b.backoffN, 16)
		if d > b.cfg.BackoffMax || d <= 0 {
			d = b.cfg.BackoffMax
		}
		b.backoffN++
		b.backoffOn.Store(true)
	}
	if d <= 0 {
		return
	}
	until := now.Add(d).UnixNano()
	if until > b.delayUntil.Load() {
		b.delayUntil.Store(until)
	}
}

// ladderResetLocked starts the ladder again once the breaker has stayed
// closed for LadderResetAfter since its last close (a clean close).
func (b *Breaker) ladderResetLocked(now time.Time) {
	if stateOf(b.word.Load()) == Closed && (b.closedAt.IsZero() || now.Sub(b.closedAt) >= b.cfg.LadderResetAfter) {
		b.step = 0
	}
}

func (b *Breaker) toOpenLocked(now time.Time, atLeast time.Duration, reason string, p *pending) {
	from := stateOf(b.word.Load())
	b.ladderResetLocked(now)
	d := b.cfg.OpenFor[min(b.step, len(b.cfg.OpenFor)-1)]
	d = durMax(d, atLeast)
	if b.step < len(b.cfg.OpenFor) {
		b.step++
	}
	n := 0
	if from == Closed {
		n = b.countLocked(now)
	}
	b.openLocked(now, now.Add(d), from, reason, p)
	p.tr[len(p.tr)-1].Failures = n
	b.nTrips.Add(1)
	p.save = &Record{State: Open, Until: now.Add(d), Step: b.step, Updated: now}
}

// openLocked moves to Open until `until` and arms the timer that moves to
// HalfOpen.
func (b *Breaker) openLocked(now, until time.Time, from State, reason string, p *pending) {
	nw := nextGen(b.word.Load(), Open)
	b.word.Store(nw)
	b.openUntil.Store(until.UnixNano())
	b.delayUntil.Store(0)
	b.ringLen, b.ringPos, b.hoSuccess = 0, 0, 0
	b.lastChange = now.UnixNano()
	d := until.Sub(now)
	if b.timer != nil {
		b.timer.Stop()
	}
	gen := genOf(nw)
	b.timer = time.AfterFunc(d, func() { b.expire(gen) })
	p.tr = append(p.tr, Transition{Name: b.cfg.Name, From: from, To: Open, Reason: reason, At: now, OpenFor: d})
}

func (b *Breaker) expire(gen uint32) {
	var p pending
	b.mu.Lock()
	w := b.word.Load()
	if genOf(w) == gen && stateOf(w) == Open {
		b.toHalfOpenLocked(time.Now(), "the open period ended", &p)
	}
	b.mu.Unlock()
	b.after(context.Background(), &p)
}

func (b *Breaker) toHalfOpenLocked(now time.Time, reason string, p *pending) {
	from := stateOf(b.word.Load())
	b.word.Store(nextGen(b.word.Load(), HalfOpen))
	b.delayUntil.Store(0)
	b.hoSuccess = 0
	b.lastChange = now.UnixNano()
	p.tr = append(p.tr, Transition{Name: b.cfg.Name, From: from, To: HalfOpen, Reason: reason, At: now})
}

func (b *Breaker) toClosedLocked(now time.Time, reason string, p *pending) {
	from := stateOf(b.word.Load())
	b.word.Store(nextGen(b.word.Load(), Closed))
	b.openUntil.Store(0)
	b.delayUntil.Store(0)
	b.ringLen, b.ringPos, b.hoSuccess, b.backoffN = 0, 0, 0, 0
	b.backoffOn.Store(false)
	b.closedAt = now
	b.lastChange = now.UnixNano()
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	p.tr = append(p.tr, Transition{Name: b.cfg.Name, From: from, To: Closed, Reason: reason, At: now})
	p.save = &Record{State: Closed, Step: b.step, Updated: now}
	p.clear = true
}

// after runs hooks, logging and store writes outside the lock, each store
// call bounded by StoreTimeout within ctx, logging with ctx.
func (b *Breaker) after(ctx context.Context, p *pending) {
	if p.probeOK != 0 {
		b.sharedProbeSuccess(ctx, p)
	}
	if p.addFail != 0 {
		sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
		n, err := b.store.AddFailure(sctx, b.cfg.Name, time.Unix(0, p.addFail), b.cfg.Window)
		cancel()
		if err != nil {
			b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "AddFailure", "err", err)
		} else if n >= b.cfg.FailureThreshold {
			now := time.Now()
			b.mu.Lock()
			w := b.word.Load()
			if genOf(w) == p.gen && stateOf(w) == Closed {
				b.toOpenLocked(now, 0, fmt.Sprintf("failure threshold exceeded: %d failures within %s (shared store)", n, b.cfg.Window), p)
			}
			b.mu.Unlock()
		}
	}
	if b.store != nil && (p.save != nil || p.clear) {
		sctx, cancel := context.WithTimeout(ctx, b.cfg.StoreTimeout)
		if p.clear {
			if err := b.store.ClearFailures(sctx, b.cfg.Name); err != nil {
				b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "ClearFailures", "err", err)
			}
		}
		if p.save != nil {
			if err := b.store.Save(sctx, b.cfg.Name, *p.save); err != nil {
				b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "Save", "err", err)
			}
		}
		cancel()
	}
	for _, tr := range p.tr {
		b.log.WarnContext(ctx, "CIRCUIT_BREAKER_TRANSITION", "breaker", tr.Name, "from", tr.From.String(), "to", tr.To.String(), "reason", tr.Reason)
		if tr.To == Open {
			b.log.ErrorContext(ctx, "CIRCUIT_BREAKER_OPENED", "breaker", tr.Name, "reason", tr.Reason, "failure_count", tr.Failures,
				"cooldown_seconds", int64(tr.OpenFor.Seconds()),
				"cooldown_until", tr.At.Add(tr.OpenFor).UTC().Format(time.RFC3339), "local_only_mode", "ENABLED")
		}
		if b.cfg.OnStateChange != nil {
			b.cfg.OnStateChange(tr)
		}
	}
}

// sharedProbeSuccess counts a shared probe's success in the Store and closes
// the breaker when the period has HalfOpenSuccesses across all processes (or
// in this one, if the Store fails), unless another process has re-opened
// the breaker since: a newer open record wins, and is adopted instead.
func (b *Breaker) sharedProbeSuccess(lctx context.Context, p *pending) {
	ctx, cancel := context.WithTimeout(lctx, b.cfg.StoreTimeout)
	defer cancel()
	n, err := b.store.ProbeSuccess(ctx, b.cfg.Name, p.period, b.probeName(p.gen, p.probeOK))
	how := "shared store"
	if err != nil {
		b.log.WarnContext(lctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "ProbeSuccess", "err", err)
		n, how = p.local, "this process; the store failed"
	}
	n = max(n, p.local)
	if n < b.cfg.HalfOpenSuccesses {
		return
	}
	b.mu.Lock()
	lastChange := b.lastChange
	b.mu.Unlock()
	if rec, ok, err := b.store.Load(ctx, b.cfg.Name); err == nil && ok && rec.State == Open && rec.Updated.UnixNano() > lastChange {
		// A probe of another process failed after this period began.
		if err := b.Sync(ctx); err != nil {
			b.log.WarnContext(lctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "Sync", "err", err)
		}
		return
	}
	b.mu.Lock()
	w := b.word.Load()
	if genOf(w) == p.gen && stateOf(w) == HalfOpen {
		b.toClosedLocked(time.Now(), fmt.Sprintf("%d probe calls succeeded (%s)", n, how), p)
	}
	b.mu.Unlock()
}

// Remaining returns how long calls will still be rejected: the rest of the
// open period, or of a delay asked for by a Verdict while closed or
// half-open. It is 0 when calls are admitted (half-open with its probes
// taken also returns 0: the wait depends on the probes). Use it for UIs and
// Retry-After headers.
func (b *Breaker) Remaining() time.Duration {
	now := time.Now().UnixNano()
	var until int64
	switch b.State() {
	case Open:
		until = b.openUntil.Load()
	default:
		until = b.delayUntil.Load()
	}
	if until <= now {
		return 0
	}
	return time.Duration(until - now)
}

// Stats is a snapshot of a breaker's state and counters.
type Stats struct {
	Name             string
	State            State
	FailuresInWindow int           // failures counted in the current window (this process)
	Remaining        time.Duration // see Breaker.Remaining
	// LadderStep is the number of trips in the current ladder run (at
	// most len(OpenFor)): the next trip opens for OpenFor[min(LadderStep, len(OpenFor)-1)]. It is
	// 0 once the breaker has stayed closed for LadderResetAfter after its
	// last close (a clean close); before that a new trip keeps climbing.
	LadderStep     int
	HalfOpenProbes int // probes this process admitted in the current half-open period
	Successes      uint64
	Failures       uint64
	Ignored        uint64
	Rejected       uint64
	Trips          uint64
}

// Stats returns a snapshot of the breaker.
func (b *Breaker) Stats() Stats {
	b.mu.Lock()
	b.ladderResetLocked(time.Now())
	w := b.word.Load()
	s := Stats{
		Name:       b.cfg.Name,
		State:      stateOf(w),
		LadderStep: b.step,
	}
	if s.State == Closed {
		s.FailuresInWindow = b.countLocked(time.Now())
	}
	if s.State == HalfOpen {
		s.HalfOpenProbes = probesOf(w)
	}
	b.mu.Unlock()
	s.Remaining = b.Remaining()
	s.Successes, s.Failures, s.Ignored = b.nSuccess.Load(), b.nFailure.Load(), b.nIgnored.Load()
	s.Rejected, s.Trips = b.nRejected.Load(), b.nTrips.Load()
	return s
}

// Trip is TripContext without a context.
func (b *Breaker) Trip(atLeast time.Duration, reason string) {
	b.TripContext(context.Background(), atLeast, reason)
}

// TripContext opens the breaker now (an operator's or a caller's decision)
// for the next open period of the ladder, or for at least atLeast. With a
// Store it saves the open record, within ctx and StoreTimeout.
func (b *Breaker) TripContext(ctx context.Context, atLeast time.Duration, reason string) {
	var p pending
	b.mu.Lock()
	if b.State() != Open {
		b.toOpenLocked(time.Now(), atLeast, "manual trip: "+reason, &p)
	}
	b.mu.Unlock()
	b.after(ctx, &p)
}

// Reset is ResetContext without a context.
func (b *Breaker) Reset(reason string) { b.ResetContext(context.Background(), reason) }

// ResetContext closes the breaker now and clears its failures and ladder
// (an administrator's reset). With a Store it saves the closed record and
// clears the shared failures, within ctx and StoreTimeout.
func (b *Breaker) ResetContext(ctx context.Context, reason string) {
	var p pending
	b.mu.Lock()
	b.step = 0
	if b.State() != Closed {
		b.toClosedLocked(time.Now(), "manual reset: "+reason, &p)
	} else {
		b.ringLen, b.ringPos = 0, 0
		b.delayUntil.Store(0)
	}
	b.mu.Unlock()
	b.after(ctx, &p)
}

// Sync loads the breaker's record from its Store and adopts it when it is
// newer than this process's last transition: an open record whose period
// has not ended opens this breaker until the same instant; one whose period
// ended while nobody was looking makes it half-open, so probes decide; a
// closed record closes it. Call Sync at start-up (so a restart does not
// forget an open breaker) and periodically (Watch) to share one breaker
// between processes. Without a Store it does nothing.
func (b *Breaker) Sync(ctx context.Context) error {
	if b.store == nil {
		return nil
	}
	rec, ok, err := b.store.Load(ctx, b.cfg.Name)
	if err != nil {
		return fmt.Errorf("breaker.Sync: loading breaker %q from its store failed (the local state stays in force): %w", b.cfg.Name, err)
	}
	if !ok {
		return nil
	}
	var p pending
	now := time.Now()
	b.mu.Lock()
	if rec.Updated.UnixNano() > b.lastChange {
		cur := b.State()
		switch rec.State {
		case Open:
			b.step = max(rec.Step, 0)
			if rec.Until.After(now) {
				if cur != Open || b.openUntil.Load() != rec.Until.UnixNano() {
					b.openLocked(now, rec.Until, cur, "adopted an open record from the store", &p)
				}
			} else if cur != HalfOpen || periodOf(b.openUntil.Load()) != periodOf(rec.Until.UnixNano()) {
				// Probe, in the half-open period every process sharing
				// the record calls by the same name, so that their
				// probe slots and successes add up in the store.
				b.openUntil.Store(rec.Until.UnixNano())
				b.toHalfOpenLocked(now, "the stored open period ended while this process was not watching", &p)
			}
		case Closed:
			if cur != Closed {
				b.step = max(rec.Step, 0)
				b.toClosedLocked(now, "adopted a closed record from the store", &p)
				p.save, p.clear = nil, false
			}
		}
		b.lastChange = rec.Updated.UnixNano()
	}
	b.mu.Unlock()
	b.after(ctx, &p)
	return nil
}

// Watch calls Sync every interval until ctx ends, logging errors. It returns
// ctx's error.
func (b *Breaker) Watch(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return talos.Errorf(talos.CodeConfigInvalid, "breaker.Watch", "interval = %s is invalid: must be positive", interval)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := b.Sync(ctx); err != nil && ctx.Err() == nil {
			b.log.WarnContext(ctx, "BREAKER_STORE_ERROR", "breaker", b.cfg.Name, "op", "Sync", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// IsRejection reports whether err is a breaker's fail-fast rejection (code
// T205 CIRCUIT_OPEN).
func IsRejection(err error) bool { return errors.Is(err, talos.ErrCircuitOpen) }
