package strikestest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/strikes"
)

// Hash returns a valid-looking content hash made of c repeated, for tests.
func Hash(c byte) string { return strings.Repeat(string(c), 64) }

// RunStoreTests runs the conformance suite for a strikes.Store. open must
// return a new, empty store for each call.
func RunStoreTests(t *testing.T, open func(t *testing.T) strikes.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("MatchesByContentHash", func(t *testing.T) { testByHash(t, open(t)) })
	t.Run("ErrorAppliesNothing", func(t *testing.T) { testErrorAppliesNothing(t, open(t)) })
	t.Run("DuplicateNumberRefused", func(t *testing.T) { testDuplicateNumber(t, open(t)) })
	t.Run("Deprecation", func(t *testing.T) { testDeprecation(t, open(t)) })
	t.Run("UpdatesAreSerialised", func(t *testing.T) { testSerialised(t, open(t)) })
}

var skillA = strikes.Skill{ID: "alpha", Version: "1.0.0", Hash: Hash('a')}

func strike(s strikes.Skill, n int, at time.Time) *strikes.Strike {
	return &strikes.Strike{Skill: s, Number: n, Type: strikes.Timeout, ExceptionType: "Timeout", Message: "ran 30 s ✓",
		ExceptionHash: Hash('e'), ExecutionID: "exec-1", SessionID: "sess-1", ContainerID: "c0ffee",
		OccurredAt: at, ExpiresAt: at.Add(strikes.DefaultExpiry), Status: strikes.Active, Signature: Hash('5')}
}

func add(t *testing.T, st strikes.Store, s *strikes.Strike, audit ...strikes.Event) {
	t.Helper()
	err := st.Update(context.Background(), s.Skill, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Add: s, Audit: audit}, nil
	})
	if err != nil {
		t.Fatalf("Update adding strike %d of %s: %v", s.Number, s.Skill, err)
	}
}

func state(t *testing.T, st strikes.Store, s strikes.Skill) strikes.State {
	t.Helper()
	got, err := st.State(context.Background(), s)
	if err != nil {
		t.Fatalf("State(%s): %v", s, err)
	}
	return got
}

func testRoundTrip(t *testing.T, st strikes.Store) {
	if got := state(t, st, skillA); len(got.Strikes) != 0 || got.Deprecated != nil {
		t.Fatalf("empty store: %+v", got)
	}
	at := time.Date(2026, 12, 7, 4, 0, 0, 123456789, time.UTC)
	want := strike(skillA, 1, at)
	sec := strike(skillA, 2, at.Add(time.Second))
	sec.Type, sec.ExpiresAt = strikes.Security, time.Time{}
	add(t, st, want, strikes.Event{Actor: "strike_system", Name: "strike_recorded", Data: map[string]any{"number": 1}})
	add(t, st, sec)
	got := state(t, st, skillA)
	if len(got.Strikes) != 2 {
		t.Fatalf("State has %d strikes, want 2", len(got.Strikes))
	}
	g := got.Strikes[0]
	if !g.OccurredAt.Equal(want.OccurredAt) || !g.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("times: got %v/%v, want %v/%v", g.OccurredAt, g.ExpiresAt, want.OccurredAt, want.ExpiresAt)
	}
	g.OccurredAt, g.ExpiresAt = want.OccurredAt, want.ExpiresAt
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", *want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", g, *want)
	}
	if !got.Strikes[1].ExpiresAt.IsZero() || got.Strikes[1].Type != strikes.Security {
		t.Errorf("a strike that never expires came back as %+v", got.Strikes[1])
	}
	all, err := st.All(context.Background())
	if err != nil || len(all) != 2 {
		t.Errorf("All = %d strikes, %v", len(all), err)
	}
	err = st.Update(context.Background(), skillA, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Statuses: []strikes.StatusChange{{SkillID: "alpha", Version: "1.0.0", Number: 1, Status: strikes.Expired}}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := state(t, st, skillA).Strikes; s[0].Status != strikes.Expired || s[1].Status != strikes.Active {
		t.Errorf("statuses after expiring #1: %s, %s", s[0].Status, s[1].Status)
	}
	if n, err := st.VerifyAudit(context.Background()); err != nil || n != 1 {
		t.Errorf("VerifyAudit = %d, %v; want 1 entry", n, err)
	}
}

func testByHash(t *testing.T, st strikes.Store) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add(t, st, strike(skillA, 1, at))
	for _, s := range []strikes.Skill{
		{ID: "alpha", Version: "1.0.1", Hash: Hash('a')},   // new version, same code
		{ID: "renamed", Version: "1.0.0", Hash: Hash('a')}, // same code under another name
		{ID: "alpha", Version: "1.0.0", Hash: Hash('b')},   // same id and version, other code
	} {
		if got := state(t, st, s).Strikes; len(got) != 1 {
			t.Errorf("State(%s %s…) sees %d strikes, want the one of alpha@1.0.0", s, s.Hash[:4], len(got))
		}
	}
	if got := state(t, st, strikes.Skill{ID: "other", Version: "1.0.0", Hash: Hash('c')}).Strikes; len(got) != 0 {
		t.Errorf("an unrelated skill sees %d strikes", len(got))
	}
}

func testErrorAppliesNothing(t *testing.T, st strikes.Store) {
	boom := errors.New("boom")
	err := st.Update(context.Background(), skillA, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Add: strike(skillA, 1, time.Now().UTC()), Audit: []strikes.Event{{Name: "x"}}}, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Update returned %v, want fn's error", err)
	}
	if got := state(t, st, skillA).Strikes; len(got) != 0 {
		t.Errorf("%d strikes kept after fn failed", len(got))
	}
	if n, _ := st.VerifyAudit(context.Background()); n != 0 {
		t.Errorf("%d audit entries kept after fn failed", n)
	}
}

func testDuplicateNumber(t *testing.T, st strikes.Store) {
	add(t, st, strike(skillA, 1, time.Now().UTC()))
	err := st.Update(context.Background(), skillA, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Add: strike(skillA, 1, time.Now().UTC()), Audit: []strikes.Event{{Name: "dup"}}}, nil
	})
	if err == nil {
		t.Fatal("a second strike 1 of alpha@1.0.0 was stored")
	}
	if n, _ := st.VerifyAudit(context.Background()); n != 0 {
		t.Errorf("the refused change left %d audit entries", n)
	}
}

func testDeprecation(t *testing.T, st strikes.Store) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := &strikes.Deprecation{Skill: skillA, At: at, By: "strike_system", Numbers: []int{1, 2, 3}, FinalType: "MemoryError", FinalReason: "out of memory"}
	err := st.Update(context.Background(), skillA, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Deprecate: d}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := state(t, st, skillA).Deprecated
	if got == nil || !got.At.Equal(at) || fmt.Sprint(got.Numbers) != "[1 2 3]" || got.FinalType != "MemoryError" || got.FinalReason != "out of memory" || got.By != "strike_system" || got.Skill != skillA {
		t.Errorf("Deprecated = %+v, want %+v", got, d)
	}
	if other := state(t, st, strikes.Skill{ID: "alpha", Version: "1.0.1", Hash: Hash('a')}); other.Deprecated != nil {
		t.Error("a new version inherited the deprecation of the old one")
	}
	err = st.Update(context.Background(), skillA, func(strikes.State) (strikes.Change, error) {
		return strikes.Change{Deprecate: d}, nil
	})
	if err == nil {
		t.Error("a skill was deprecated twice")
	}
}

// testSerialised runs many read-modify-write updates at once; each numbers
// its strike after the highest it sees, so any lost serialisation shows as
// a refused duplicate or a gap.
func testSerialised(t *testing.T, st strikes.Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- st.Update(context.Background(), skillA, func(s strikes.State) (strikes.Change, error) {
				return strikes.Change{Add: strike(skillA, len(s.Strikes)+1, time.Now().UTC()),
					Audit: []strikes.Event{{Actor: "test", Name: "add", Data: map[string]any{"seen": len(s.Strikes)}}}}, nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	got := state(t, st, skillA).Strikes
	seen := map[int]bool{}
	for _, s := range got {
		seen[s.Number] = true
	}
	if len(got) != n || len(seen) != n {
		t.Errorf("%d strikes with %d distinct numbers, want %d", len(got), len(seen), n)
	}
	if c, err := st.VerifyAudit(context.Background()); err != nil || c != n {
		t.Errorf("VerifyAudit = %d, %v; want %d", c, err, n)
	}
}
