package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// DefaultMaxSkew is the clock difference tolerated between peers when
// VerifierConfig.MaxSkew is 0: a clock difference of more than 60 s
// invalidates timestamps and signatures.
const DefaultMaxSkew = 60 * time.Second

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Roots are the issuers whose tokens (and their delegations) are
	// trusted. At least one is required.
	Roots []PeerID
	// MaxSkew is the clock difference tolerated; 0 means DefaultMaxSkew.
	MaxSkew time.Duration
	// Decisions, if set, records every Authorize decision for export.
	Decisions *DecisionLog
}

// Verifier checks tokens and signed requests: trusted root, time, revocation,
// proof of possession, replay and scope. It is safe for concurrent use.
type Verifier struct {
	roots map[PeerID]bool
	skew  time.Duration
	log   *DecisionLog
	state StateStore

	mu      sync.Mutex
	revoked map[string]time.Time // token ID → when it can be forgotten
	seen    map[string]time.Time // request nonce → when it can be forgotten
	pruneAt time.Time            // next sweep of seen
	gen     atomic.Uint64        // bumped by every revocation (Session caches check it)
}

// NewVerifier builds a Verifier. state, if not nil, keeps revocations and
// used request nonces across restarts and processes (FileState); Authorize
// then fails closed when it cannot be written.
func NewVerifier(cfg VerifierConfig, state StateStore) (*Verifier, error) {
	const op = "gateway.NewVerifier"
	if len(cfg.Roots) == 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Roots is empty: name at least one trusted issuer")
	}
	v := &Verifier{roots: map[PeerID]bool{}, skew: cfg.MaxSkew, log: cfg.Decisions, revoked: map[string]time.Time{}, seen: map[string]time.Time{}}
	for _, r := range cfg.Roots {
		if _, err := ParsePeerID(string(r)); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, "Roots holds a bad peer ID", err)
		}
		v.roots[r] = true
	}
	if v.skew == 0 {
		v.skew = DefaultMaxSkew
	}
	if v.skew < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MaxSkew %s is negative: use 0 for %s", cfg.MaxSkew, DefaultMaxSkew)
	}
	if state != nil {
		revoked, err := state.Revoked()
		if err != nil {
			return nil, err
		}
		v.state, v.revoked = state, revoked
	}
	return v, nil
}

// Verify parses raw and checks that its root issuer is trusted, that every
// token of its chain is valid now (within MaxSkew) and that none is revoked.
func (v *Verifier) Verify(raw string) (*Token, error) {
	const op = "gateway.Verify"
	t, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	if root := t.Root(); !v.roots[root.Issuer] {
		return nil, talos.Errorf(talos.CodeUnauthorized, op, "the token's root issuer %s is not trusted", root.Issuer)
	}
	now := time.Now()
	v.mu.Lock()
	defer v.mu.Unlock()
	for c := t; c != nil; c = c.ParentToken {
		if now.Add(v.skew).Unix() < c.IssuedAt {
			return nil, talos.Errorf(talos.CodeUnauthorized, op, "a token of the chain is issued %ds in the future, more than the %s of clock skew tolerated: check the issuer's clock", c.IssuedAt-now.Unix(), v.skew)
		}
		if now.Add(-v.skew).Unix() >= c.ExpiresAt {
			return nil, talos.Errorf(talos.CodeUnauthorized, op, "a token of the chain expired at %s: ask its issuer for a new one", time.Unix(c.ExpiresAt, 0).UTC().Format(time.RFC3339))
		}
		if _, gone := v.revoked[c.ID]; gone {
			return nil, talos.Errorf(talos.CodeUnauthorized, op, "token %s of the chain is revoked", c.ID)
		}
	}
	return t, nil
}

// Revoke refuses the token with this ID, and every token delegated from it,
// from now on (until it would have expired anyway). With a StateStore the
// revocation is stored first; if that fails it still holds in this process
// and the error says it was not stored.
func (v *Verifier) Revoke(t *Token) error {
	until := time.Unix(t.ExpiresAt, 0).Add(v.skew)
	v.mu.Lock()
	v.revoked[t.ID] = until
	v.mu.Unlock()
	v.gen.Add(1)
	if v.state != nil {
		return v.state.Revoke(t.ID, until)
	}
	return nil
}

// mergeRevoked adds revocations stored by other processes and reports
// whether any was new.
func (v *Verifier) mergeRevoked(revoked map[string]time.Time) bool {
	v.mu.Lock()
	grew := false
	for id, until := range revoked {
		if _, ok := v.revoked[id]; !ok {
			v.revoked[id] = until
			grew = true
		}
	}
	v.mu.Unlock()
	if grew {
		v.gen.Add(1)
	}
	return grew
}

// Request is one use of a token: an action, signed by the token's subject
// with a fresh nonce and the time, so it cannot be replayed or used by
// whoever merely copied the token.
type Request struct {
	Token  string `json:"token"`
	Action string `json:"action"`
	// TimeMillis is when the request was made (Unix milliseconds).
	TimeMillis int64 `json:"time_ms"`
	// Nonce is 32 random hex characters.
	Nonce string `json:"nonce"`
	// Signature is the subject's Ed25519 signature of the other fields.
	Signature []byte `json:"sig"`
}

func (r Request) signed() []byte {
	return []byte("tcr1\n" + r.Token + "\n" + r.Action + "\n" + strconv.FormatInt(r.TimeMillis, 10) + "\n" + r.Nonce)
}

// NewRequest signs a request for action with token, as holder (who must be
// the token's subject for the request to pass).
func NewRequest(holder *Identity, token, action string) (Request, error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return Request{}, talos.E(talos.CodeSecretMissing, "gateway.NewRequest", "the system's random source failed", err)
	}
	r := Request{Token: token, Action: action, TimeMillis: time.Now().UnixMilli(), Nonce: hex.EncodeToString(n[:])}
	r.Signature = holder.sign(r.signed())
	return r, nil
}

// Authorize checks a request: its time within MaxSkew, the token (Verify),
// the subject's signature, a nonce never seen before, and a scope that
// grants the action. Every refusal is T400 (T402 for a bad signature) and
// says which check failed.
func (v *Verifier) Authorize(r Request) (*Token, error) {
	t, err := v.authorize(r)
	v.recordToken(r.Action, r.Token, err)
	return t, err
}

// Refuse records in the Decisions log a refusal decided before Authorize
// could run — a request that did not arrive whole, or asks for something
// the transport does not serve — so that the log holds every refusal, not
// only Authorize's: action is what was asked for, token the token
// presented, if any (its subject and id are recorded when it parses). A
// nil err records nothing; without a DecisionLog it does nothing.
func (v *Verifier) Refuse(action, token string, err error) {
	if err != nil {
		v.recordToken(action, token, err)
	}
}

// recordToken records one decision on action with token (its subject and
// id when it parses) if the Verifier keeps a DecisionLog.
func (v *Verifier) recordToken(action, token string, err error) {
	if v.log == nil {
		return
	}
	var subject PeerID
	var tokenID string
	if pt, perr := Parse(token); perr == nil {
		subject, tokenID = pt.Subject, pt.ID
	}
	v.record(action, subject, tokenID, err)
}

// record adds one decision on action to the Verifier's DecisionLog (the
// action clipped to 200 bytes; a refusal with its code and reason).
func (v *Verifier) record(action string, subject PeerID, tokenID string, err error) {
	d := Decision{Time: time.Now(), Action: action, Allowed: err == nil, Subject: subject, TokenID: tokenID}
	if len(d.Action) > 200 {
		d.Action = d.Action[:200]
	}
	if err != nil {
		d.Code, d.Reason = talos.CodeOf(err), err.Error()
	}
	v.log.Record(d)
}

func (v *Verifier) authorize(r Request) (*Token, error) {
	const op = "gateway.Authorize"
	now := time.Now()
	at := time.UnixMilli(r.TimeMillis)
	if d := now.Sub(at); d > v.skew || d < -v.skew {
		return nil, talos.Errorf(talos.CodeUnauthorized, op, "the request's time is %s away from ours, more than the %s tolerated: check the clocks", d.Round(time.Second), v.skew)
	}
	if len(r.Nonce) != 32 {
		return nil, talos.Errorf(talos.CodeUnauthorized, op, "the request's nonce is not 32 hex characters")
	}
	t, err := v.Verify(r.Token)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePeerID(string(t.Subject))
	if err != nil {
		return nil, talos.E(talos.CodeBadSignature, op, "bad subject", err)
	}
	if len(r.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, r.signed(), r.Signature) {
		return nil, talos.Errorf(talos.CodeBadSignature, op, "the request is not signed by the token's subject %s", t.Subject)
	}
	v.mu.Lock()
	if now.After(v.pruneAt) { // forget nonces too old to pass the time check, once per skew/4
		for n, until := range v.seen {
			if now.After(until) {
				delete(v.seen, n)
			}
		}
		v.pruneAt = now.Add(v.skew / 4)
	}
	_, replay := v.seen[r.Nonce]
	if !replay {
		v.seen[r.Nonce] = at.Add(v.skew)
	}
	v.mu.Unlock()
	if replay {
		return nil, talos.Errorf(talos.CodeUnauthorized, op, "the request's nonce was already used: a replayed request is refused")
	}
	if v.state != nil {
		fresh, revoked, err := v.state.UseNonce(r.Nonce, at.Add(v.skew))
		if err != nil {
			return nil, talos.E(talos.CodeUnauthorized, op, "refused because the used-nonce store failed (fail closed)", err)
		}
		if !fresh {
			return nil, talos.Errorf(talos.CodeUnauthorized, op, "the request's nonce was already used (before a restart or by another process): a replayed request is refused")
		}
		if v.mergeRevoked(revoked) {
			if _, err := v.Verify(r.Token); err != nil {
				return nil, err
			}
		}
	}
	if !t.Allows(r.Action) {
		return nil, talos.Errorf(talos.CodeUnauthorized, op, "no scope of the token grants %s (a scope grants exactly what it names; %s grants below it with /*)", clip(r.Action), clip(r.Action))
	}
	return t, nil
}

// RateLimit is a token bucket.
type RateLimit struct {
	// PerSecond is the sustained rate; 0 means unlimited.
	PerSecond float64
	// Burst is the bucket's depth; 0 means one second's worth (at least 1).
	Burst int
}

// Session caches authorization for one connection: a token verified once is
// trusted until it expires or any revocation happens, so each further check
// is a scope match. It also holds the session's token bucket. It is safe for
// concurrent use.
type Session struct {
	v     *Verifier
	limit RateLimit

	mu     sync.Mutex
	cache  map[string]cached
	tokens float64
	last   time.Time
}

type cached struct {
	t   *Token
	gen uint64
	exp time.Time
}

// NewSession starts a session checked by v and limited by limit.
func (v *Verifier) NewSession(limit RateLimit) *Session {
	burst := float64(limit.Burst)
	if burst == 0 {
		burst = max(1, limit.PerSecond)
	}
	return &Session{v: v, limit: RateLimit{PerSecond: limit.PerSecond, Burst: int(burst)}, cache: map[string]cached{}, tokens: burst, last: time.Now()}
}

// Check reports whether token grants action in this session: the token is
// verified on first use (and after a revocation), then only its scopes are
// matched until it expires. Requests that need replay protection use
// Verifier.Authorize.
func (s *Session) Check(token, action string) error {
	gen := s.v.gen.Load()
	now := time.Now()
	s.mu.Lock()
	c, ok := s.cache[token]
	s.mu.Unlock()
	if !ok || c.gen != gen || !now.Before(c.exp) {
		t, err := s.v.Verify(token)
		if err != nil {
			s.mu.Lock()
			delete(s.cache, token)
			s.mu.Unlock()
			return err
		}
		c = cached{t: t, gen: gen, exp: chainExpiry(t).Add(s.v.skew)}
		s.mu.Lock()
		s.cache[token] = c
		s.mu.Unlock()
	}
	if !c.t.Allows(action) {
		return talos.Errorf(talos.CodeUnauthorized, "gateway.Session.Check", "no scope of the token grants %s", clip(action))
	}
	return nil
}

// chainExpiry is the earliest expiry in t's chain.
func chainExpiry(t *Token) time.Time {
	e := t.ExpiresAt
	for c := t; c != nil; c = c.ParentToken {
		e = min(e, c.ExpiresAt)
	}
	return time.Unix(e, 0)
}

// Allow takes one call from the session's token bucket, or returns T403
// saying how long to wait.
func (s *Session) Allow() error {
	if s.limit.PerSecond <= 0 {
		return nil
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = min(float64(s.limit.Burst), s.tokens+now.Sub(s.last).Seconds()*s.limit.PerSecond)
	s.last = now
	if s.tokens >= 1 {
		s.tokens--
		return nil
	}
	wait := time.Duration((1 - s.tokens) / s.limit.PerSecond * float64(time.Second))
	return talos.Errorf(talos.CodeRateLimited, "gateway.Session.Allow", "the session's rate limit (%g calls/s, burst %d) is used up: retry in %s", s.limit.PerSecond, s.limit.Burst, wait.Round(time.Millisecond))
}
