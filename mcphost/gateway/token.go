package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// Limits of a capability token.
const (
	// tokenPrefix starts every encoded token (format version 1).
	tokenPrefix = "tct1."
	// MaxTokenBytes is the largest encoded token accepted, chain included.
	MaxTokenBytes = 16 << 10
	// MaxChainDepth is how many delegations a token may carry.
	MaxChainDepth = 8
	// MaxScopes is how many scopes one token may grant.
	MaxScopes = 32
	// MaxTTL is the longest lifetime Issue and Delegate accept.
	MaxTTL = 30 * 24 * time.Hour
)

// reScope is one scope: segments of [a-z0-9_.-] joined by '/', optionally
// ending in "/*" (everything below).
var reScope = regexp.MustCompile(`^[a-z0-9_.-]+(/[a-z0-9_.-]+)*(/\*)?$`)

// Claims are what a token says.
type Claims struct {
	// Issuer signed the token.
	Issuer PeerID `json:"iss"`
	// Subject is the agent the token is for; only it can use the token
	// (requests are signed with its key).
	Subject PeerID `json:"sub"`
	// Scopes are the actions granted. A scope grants exactly what it
	// names: "mcp/fs/read" grants that action only, "mcp/fs/*" grants
	// every action below mcp/fs (not mcp/fs itself).
	Scopes []string `json:"scp"`
	// IssuedAt and ExpiresAt are Unix seconds.
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
	// Nonce makes every token unique (32 hex characters).
	Nonce string `json:"jti"`
	// Parent is the encoded token this one was delegated from, if any.
	Parent string `json:"prt,omitempty"`
}

// Token is a parsed capability token whose signatures and delegation chain
// are valid. Validity in time, trust in its root issuer and revocation are
// the Verifier's checks.
type Token struct {
	Claims
	// ID identifies the token (for revocation): hex SHA-256 of its
	// encoded form, 32 characters.
	ID string
	// ParentToken is the parsed parent token, nil for a root token.
	ParentToken *Token
	raw         string
}

// String returns the encoded token.
func (t *Token) String() string { return t.raw }

// Root returns the first token of the delegation chain.
func (t *Token) Root() *Token {
	for t.ParentToken != nil {
		t = t.ParentToken
	}
	return t
}

// Allows reports whether the token's scopes grant action.
func (t *Token) Allows(action string) bool { return Allows(t.Scopes, action) }

// Allows reports whether one of scopes grants action: the same string, or
// a scope "p/*" and an action below p.
func Allows(scopes []string, action string) bool {
	for _, s := range scopes {
		if covers(s, action) {
			return true
		}
	}
	return false
}

// covers reports whether grant covers want (an action or a narrower scope).
func covers(grant, want string) bool {
	if grant == want {
		return true
	}
	if p, ok := strings.CutSuffix(grant, "*"); ok {
		return strings.HasPrefix(want, p) && len(want) > len(p)
	}
	return false
}

// Issue makes a root token from issuer for subject, valid from now for ttl.
func Issue(issuer *Identity, subject PeerID, scopes []string, ttl time.Duration) (string, error) {
	return issue(issuer, subject, scopes, ttl, nil)
}

// Delegate makes a token from holder (the subject of parent) for subject,
// with scopes that parent's scopes cover and an expiry no later than
// parent's: delegation can only narrow.
func Delegate(holder *Identity, parent string, subject PeerID, scopes []string, ttl time.Duration) (string, error) {
	p, err := Parse(parent)
	if err != nil {
		return "", err
	}
	if p.Subject != holder.PeerID() {
		return "", talos.Errorf(talos.CodeUnauthorized, "gateway.Delegate", "the parent token is for %s, not for %s: only its subject can delegate it", p.Subject, holder.PeerID())
	}
	return issue(holder, subject, scopes, ttl, p)
}

func issue(issuer *Identity, subject PeerID, scopes []string, ttl time.Duration, parent *Token) (string, error) {
	const op = "gateway.Issue"
	if _, err := ParsePeerID(string(subject)); err != nil {
		return "", talos.E(talos.CodeConfigInvalid, op, "bad subject", err)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", talos.Errorf(talos.CodeConfigInvalid, op, "ttl %s is out of range: use more than 0 and at most %s", ttl, MaxTTL)
	}
	now := time.Now()
	c := Claims{Issuer: issuer.PeerID(), Subject: subject, Scopes: slices.Clone(scopes), IssuedAt: now.Unix(), ExpiresAt: now.Add(ttl).Unix()}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", talos.E(talos.CodeSecretMissing, op, "the system's random source failed", err)
	}
	c.Nonce = hex.EncodeToString(n[:])
	if parent != nil {
		c.Parent = parent.raw
		c.ExpiresAt = min(c.ExpiresAt, parent.ExpiresAt)
		if c.IssuedAt < parent.IssuedAt {
			c.IssuedAt = parent.IssuedAt
		}
	}
	if err := checkClaims(c, parent); err != nil {
		return "", talos.E(talos.CodeConfigInvalid, op, "the token would be invalid", err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(payload)
	raw := signed + "." + base64.RawURLEncoding.EncodeToString(issuer.sign([]byte(signed)))
	if len(raw) > MaxTokenBytes {
		return "", talos.Errorf(talos.CodeConfigInvalid, op, "the token would be %d bytes, over the limit of %d: delegate less deep or with fewer scopes", len(raw), MaxTokenBytes)
	}
	return raw, nil
}

// Parse decodes an encoded token and checks its form, every signature in
// its chain and that each delegation only narrows. It does not check time,
// trust or revocation (Verifier does).
func Parse(raw string) (*Token, error) {
	t, err := parse(raw, 0)
	if err != nil {
		return nil, talos.E(talos.CodeBadSignature, "gateway.Parse", "the capability token is invalid", err)
	}
	return t, nil
}

func parse(raw string, depth int) (*Token, error) {
	if depth > MaxChainDepth {
		return nil, fmt.Errorf("the delegation chain is deeper than %d", MaxChainDepth)
	}
	if len(raw) > MaxTokenBytes {
		return nil, fmt.Errorf("%d bytes, over the limit of %d", len(raw), MaxTokenBytes)
	}
	rest, ok := strings.CutPrefix(raw, tokenPrefix)
	if !ok {
		return nil, fmt.Errorf("it does not start with %q", tokenPrefix)
	}
	payloadB64, sigB64, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigB64, ".") {
		return nil, errors.New("it is not of the form tct1.PAYLOAD.SIGNATURE")
	}
	payload, err := base64.RawURLEncoding.DecodeString(payloadB64)
	if err != nil {
		return nil, errors.New("the payload is not base64url")
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigB64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("the signature is not a base64url Ed25519 signature")
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, errors.New("the payload is not the expected JSON object")
	}
	issuerKey, err := ParsePeerID(string(c.Issuer))
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(issuerKey, []byte(raw[:len(tokenPrefix)+len(payloadB64)]), sig) {
		return nil, fmt.Errorf("the signature does not match issuer %s", c.Issuer)
	}
	var parent *Token
	if c.Parent != "" {
		if parent, err = parse(c.Parent, depth+1); err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
	}
	if err := checkClaims(c, parent); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(raw))
	return &Token{Claims: c, ID: hex.EncodeToString(sum[:16]), ParentToken: parent, raw: raw}, nil
}

// checkClaims checks one token's claims against its parent (nil for a root).
func checkClaims(c Claims, parent *Token) error {
	if _, err := ParsePeerID(string(c.Subject)); err != nil {
		return err
	}
	if len(c.Scopes) == 0 || len(c.Scopes) > MaxScopes {
		return fmt.Errorf("it grants %d scopes: grant 1–%d", len(c.Scopes), MaxScopes)
	}
	for _, s := range c.Scopes {
		if !reScope.MatchString(s) || len(s) > 200 {
			return fmt.Errorf("scope %s is not segments of a-z 0-9 _ . - joined by '/', optionally ending in /*", clip(s))
		}
	}
	if c.ExpiresAt <= c.IssuedAt {
		return errors.New("it expires before it is issued")
	}
	if len(c.Nonce) != 32 {
		return errors.New("its nonce is not 32 hex characters")
	}
	if _, err := hex.DecodeString(c.Nonce); err != nil {
		return errors.New("its nonce is not 32 hex characters")
	}
	if parent == nil {
		return nil
	}
	if c.Issuer != parent.Subject {
		return fmt.Errorf("it is issued by %s, but its parent was given to %s", c.Issuer, parent.Subject)
	}
	if c.ExpiresAt > parent.ExpiresAt {
		return errors.New("it expires after its parent: delegation can only narrow")
	}
	if c.IssuedAt < parent.IssuedAt {
		return errors.New("it is issued before its parent")
	}
	for _, s := range c.Scopes {
		if !Allows(parent.Scopes, s) {
			return fmt.Errorf("scope %s is not covered by the parent's scopes: delegation can only narrow", clip(s))
		}
	}
	return nil
}
