package gateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

func ident(t testing.TB, name string) *gateway.Identity {
	t.Helper()
	id, err := gateway.NewIdentity(name)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func verifier(t testing.TB, roots ...*gateway.Identity) *gateway.Verifier {
	t.Helper()
	var ids []gateway.PeerID
	for _, r := range roots {
		ids = append(ids, r.PeerID())
	}
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: ids}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func issue(t testing.TB, from *gateway.Identity, to *gateway.Identity, ttl time.Duration, scopes ...string) string {
	t.Helper()
	tok, err := gateway.Issue(from, to.PeerID(), scopes, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIdentityFile(t *testing.T) {
	id := ident(t, "Assistant/Bot")
	path := filepath.Join(t.TempDir(), "identity.json")
	if err := id.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", st.Mode().Perm())
	}
	back, err := gateway.LoadIdentity(path)
	if err != nil || back.PeerID() != id.PeerID() || back.Name() != "Assistant/Bot" {
		t.Fatalf("%v %v", back, err)
	}
	if s := id.String(); strings.Contains(s, "seed") || !strings.HasPrefix(s, "Assistant/Bot (tp1") {
		t.Errorf("String() = %q", s)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.LoadIdentity(path); !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable key was loaded: %v", err)
	}
	if _, err := gateway.ParsePeerID(string(id.PeerID())); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "tp1", "tp2" + string(id.PeerID())[3:], string(id.PeerID()) + "a", "tp1" + strings.Repeat("1", 52)} {
		if _, err := gateway.ParsePeerID(bad); err == nil {
			t.Errorf("peer ID %q accepted", bad)
		}
	}
	if _, err := gateway.NewIdentity("bad\nname"); err == nil {
		t.Error("a name with a newline was accepted")
	}
}

func TestScopesGrantExactlyWhatTheyName(t *testing.T) {
	for _, tc := range []struct {
		scopes []string
		action string
		want   bool
	}{
		{[]string{"mcp/fs/read"}, "mcp/fs/read", true},
		{[]string{"mcp/fs/read"}, "mcp/fs/read/deeper", false},
		{[]string{"mcp/fs/read"}, "mcp/fs", false},
		{[]string{"mcp/fs/*"}, "mcp/fs/write", true},
		{[]string{"mcp/fs/*"}, "mcp/fs", false},
		{[]string{"mcp/fs/*"}, "mcp/fsx/read", false},
		{[]string{"chat/ask", "feedback/view"}, "feedback/submit", false}, // a submit_feedback tool
		{[]string{"chat/ask", "feedback/view"}, "feedback/view", true},
	} {
		if got := gateway.Allows(tc.scopes, tc.action); got != tc.want {
			t.Errorf("Allows(%v, %q) = %v", tc.scopes, tc.action, got)
		}
	}
}

func TestDelegationOnlyNarrows(t *testing.T) {
	root, agent, helper := ident(t, "root"), ident(t, "agent"), ident(t, "helper")
	tok := issue(t, root, agent, time.Hour, "mcp/fs/*", "chat/ask")
	v := verifier(t, root)

	child, err := gateway.Delegate(agent, tok, helper.PeerID(), []string{"mcp/fs/read"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := v.Verify(child)
	if err != nil || !ct.Allows("mcp/fs/read") || ct.Allows("mcp/fs/write") || ct.Root().Issuer != root.PeerID() {
		t.Fatalf("%v %+v", err, ct)
	}
	// Wider scopes, someone else's token, and a longer life are refused.
	if _, err := gateway.Delegate(agent, tok, helper.PeerID(), []string{"admin/*"}, time.Minute); err == nil || !strings.Contains(err.Error(), "not covered by the parent's scopes") {
		t.Errorf("widening: %v", err)
	}
	if _, err := gateway.Delegate(helper, tok, helper.PeerID(), []string{"chat/ask"}, time.Minute); !errors.Is(err, talos.ErrUnauthorized) {
		t.Errorf("delegating a token given to someone else: %v", err)
	}
	long, err := gateway.Delegate(agent, tok, helper.PeerID(), []string{"chat/ask"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	lt, _ := gateway.Parse(long)
	pt, _ := gateway.Parse(tok)
	if lt.ExpiresAt > pt.ExpiresAt {
		t.Error("a delegated token outlives its parent")
	}
	// An untrusted root is refused even with a valid chain.
	if _, err := verifier(t, helper).Verify(child); !errors.Is(err, talos.ErrUnauthorized) {
		t.Errorf("untrusted root: %v", err)
	}
}

func TestTamperedTokensAreRefused(t *testing.T) {
	root, agent := ident(t, "root"), ident(t, "agent")
	tok := issue(t, root, agent, time.Hour, "chat/ask")
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]
	for _, bad := range []string{"", "tct1.", "tct1.a.b.c", forged, strings.Replace(tok, "tct1", "tct2", 1), tok + "x"} {
		if _, err := gateway.Parse(bad); !errors.Is(err, talos.ErrBadSignature) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestExpiryRevocationAndSkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, agent, helper := ident(t, "root"), ident(t, "agent"), ident(t, "helper")
		v := verifier(t, root)
		tok := issue(t, root, agent, time.Minute, "mcp/*")
		child, err := gateway.Delegate(agent, tok, helper.PeerID(), []string{"mcp/fs/*"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute + 59*time.Second) // within the 60 s of skew after expiry
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("refused within the skew: %v", err)
		}
		time.Sleep(2 * time.Second)
		if _, err := v.Verify(tok); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired token: %v", err)
		}

		fresh := issue(t, root, agent, time.Hour, "mcp/*")
		child, err = gateway.Delegate(agent, fresh, helper.PeerID(), []string{"mcp/fs/*"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := gateway.Parse(fresh)
		v.Revoke(pt)
		if _, err := v.Verify(child); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("a delegation of a revoked token: %v", err)
		}
	})
}

func TestAuthorizeRefusesReplayTheftAndSkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, agent, thief := ident(t, "root"), ident(t, "agent"), ident(t, "thief")
		v := verifier(t, root)
		tok := issue(t, root, agent, time.Hour, "chat/ask", "feedback/view")

		req, err := gateway.NewRequest(agent, tok, "chat/ask")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Authorize(req); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Authorize(req); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "replayed") {
			t.Errorf("replay: %v", err)
		}
		stolen, _ := gateway.NewRequest(thief, tok, "chat/ask")
		if _, err := v.Authorize(stolen); !errors.Is(err, talos.ErrBadSignature) {
			t.Errorf("a copied token used by another key: %v", err)
		}
		denied, _ := gateway.NewRequest(agent, tok, "feedback/submit")
		if _, err := v.Authorize(denied); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "no scope of the token grants") {
			t.Errorf("submit_feedback: %v", err)
		}
		old, _ := gateway.NewRequest(agent, tok, "chat/ask")
		time.Sleep(61 * time.Second)
		if _, err := v.Authorize(old); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "check the clocks") {
			t.Errorf("a request 61 s old: %v", err)
		}
		tampered, _ := gateway.NewRequest(agent, tok, "chat/ask")
		tampered.Action = "feedback/view"
		if _, err := v.Authorize(tampered); !errors.Is(err, talos.ErrBadSignature) {
			t.Errorf("a request whose action was changed: %v", err)
		}
	})
}

func TestSessionCachesAndLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root, agent := ident(t, "root"), ident(t, "agent")
		v := verifier(t, root)
		tok := issue(t, root, agent, time.Hour, "mcp/fs/*")
		s := v.NewSession(gateway.RateLimit{PerSecond: 2, Burst: 3})
		for range 3 {
			if err := s.Allow(); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Allow(); !errors.Is(err, talos.ErrRateLimited) || !strings.Contains(err.Error(), "retry in 500ms") {
			t.Fatalf("over the burst: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
		if err := s.Allow(); err != nil {
			t.Fatalf("after refill: %v", err)
		}

		if err := s.Check(tok, "mcp/fs/read"); err != nil {
			t.Fatal(err)
		}
		if err := s.Check(tok, "mcp/git/log"); !errors.Is(err, talos.ErrUnauthorized) {
			t.Fatalf("scope: %v", err)
		}
		pt, _ := gateway.Parse(tok)
		v.Revoke(pt)
		if err := s.Check(tok, "mcp/fs/read"); !errors.Is(err, talos.ErrUnauthorized) {
			t.Fatalf("the cache outlived a revocation: %v", err)
		}
		tok2 := issue(t, root, agent, time.Minute, "mcp/fs/*")
		if err := s.Check(tok2, "mcp/fs/read"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2*time.Minute + time.Second)
		if err := s.Check(tok2, "mcp/fs/read"); !errors.Is(err, talos.ErrUnauthorized) {
			t.Fatalf("the cache outlived the token: %v", err)
		}
	})
}

func FuzzParse(f *testing.F) {
	root, _ := gateway.NewIdentity("root")
	agent, _ := gateway.NewIdentity("agent")
	tok, _ := gateway.Issue(root, agent.PeerID(), []string{"mcp/*"}, time.Hour)
	child, _ := gateway.Delegate(agent, tok, root.PeerID(), []string{"mcp/fs"}, time.Minute)
	for _, s := range []string{tok, child, "tct1.e30.AAAA", "tct1..", "", strings.Repeat("tct1.", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := gateway.Parse(s)
		if err != nil {
			if !errors.Is(err, talos.ErrBadSignature) {
				t.Fatalf("error without T402: %v", err)
			}
			return
		}
		// Whatever parses was signed by a key we hold only for the seeds;
		// its invariants hold along the chain.
		for c := tk; c.ParentToken != nil; c = c.ParentToken {
			if c.Issuer != c.ParentToken.Subject || c.ExpiresAt > c.ParentToken.ExpiresAt {
				t.Fatalf("a widening chain parsed: %+v", c)
			}
		}
		if tk.String() != s {
			t.Fatal("String() is not the parsed text")
		}
	})
}

func TestDecisionsExportAsCSVAndJSON(t *testing.T) {
	root, agent := ident(t, "root"), ident(t, "agent")
	log := gateway.NewDecisionLog(0)
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}, Decisions: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := issue(t, root, agent, time.Hour, "chat/ask")
	for _, action := range []string{"chat/ask", "=cmd|' /C calc'!A0"} {
		r, _ := gateway.NewRequest(agent, tok, action)
		_, _ = v.Authorize(r)
	}
	ds := log.Decisions()
	if len(ds) != 2 || !ds[0].Allowed || ds[1].Allowed || ds[1].Code != talos.CodeUnauthorized || ds[0].Subject != agent.PeerID() {
		t.Fatalf("%+v", ds)
	}
	var csvOut, jsonOut strings.Builder
	if err := log.WriteCSV(&csvOut); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csvOut.String()), "\n")
	if len(lines) != 3 || lines[0] != "time,subject,token_id,action,allowed,code,reason" || !strings.Contains(lines[2], `'=cmd`) {
		t.Fatalf("csv:\n%s", csvOut.String())
	}
	if err := log.WriteJSON(&jsonOut); err != nil {
		t.Fatal(err)
	}
	var back []gateway.Decision
	if err := json.Unmarshal([]byte(jsonOut.String()), &back); err != nil || len(back) != 2 || back[1].Reason == "" {
		t.Fatalf("json: %v %+v", err, back)
	}

	small := gateway.NewDecisionLog(2)
	for i := range 5 {
		small.Record(gateway.Decision{Action: fmt.Sprint(i)})
	}
	if ds := small.Decisions(); len(ds) != 2 || ds[0].Action != "3" || ds[1].Action != "4" {
		t.Errorf("the log keeps the newest: %+v", ds)
	}
}
