package reaper_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/reapertest"
	"github.com/talos-ironclad/talos/sockproxy"
)

func newManager(t *testing.T, cfg reaper.RespawnConfig, eng reaper.Engine) *reaper.Manager {
	t.Helper()
	if cfg.Image == "" {
		cfg.Image = "talos/browser-automation:v4.0"
	}
	m, err := reaper.NewManager(cfg, eng)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLabelMatchesSocketProxy(t *testing.T) {
	if reaper.LabelManaged != sockproxy.LabelManaged || reaper.LabelManagedValue != sockproxy.LabelManagedValue {
		t.Fatalf("reaper label %s=%s differs from the proxy's %s=%s: the proxy would hide the respawned containers",
			reaper.LabelManaged, reaper.LabelManagedValue, sockproxy.LabelManaged, sockproxy.LabelManagedValue)
	}
}

// Backoff 5, 10, 20, 40, 80 s, then the
// 6th attempt fails with "max respawns exceeded" and spawns nothing.
func TestRespawnBackoffThenMaxExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := reapertest.NewEngine()
		m := newManager(t, reaper.RespawnConfig{}, eng)
		ctx := context.Background()
		if _, err := m.Spawn(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
		for n, backoff := range want {
			before := len(eng.Specs())
			start := time.Now()
			done := make(chan reaper.RespawnResult, 1)
			go func() {
				res, err := m.Respawn(ctx, "s1")
				if err != nil {
					t.Errorf("respawn %d: %v", n+1, err)
				}
				done <- res
			}()
			time.Sleep(backoff - time.Nanosecond)
			synctest.Wait()
			if len(eng.Specs()) != before {
				t.Fatalf("respawn %d: spawned before its %v backoff ended", n+1, backoff)
			}
			if got := len(eng.Containers()); got != 0 {
				t.Fatalf("respawn %d: the old container was not removed before the backoff (%d left)", n+1, got)
			}
			res := <-done
			if waited := time.Since(start); waited != backoff {
				t.Errorf("respawn %d waited %v, want %v", n+1, waited, backoff)
			}
			if res.Attempt != n+1 || res.Backoff != backoff || res.ContainerID == "" {
				t.Errorf("respawn %d result %+v", n+1, res)
			}
			if got := len(eng.Containers()); got != 1 {
				t.Errorf("respawn %d: %d containers, want exactly the new one", n+1, got)
			}
			if m.Backoff(n) != backoff {
				t.Errorf("Backoff(%d) = %v", n, m.Backoff(n))
			}
		}
		creates := len(eng.Specs())
		start := time.Now()
		_, err := m.Respawn(ctx, "s1")
		if !errors.Is(err, reaper.ErrMaxRespawns) || !errors.Is(err, talos.ErrSandboxQuota) {
			t.Fatalf("6th respawn: %v, want ErrMaxRespawns (T104)", err)
		}
		if !strings.Contains(err.Error(), "max respawns exceeded") {
			t.Errorf("message %q does not say max respawns exceeded", err)
		}
		if time.Since(start) != 0 || len(eng.Specs()) != creates {
			t.Error("the refused respawn waited or spawned")
		}
		if m.Attempts("s1") != 5 {
			t.Errorf("Attempts = %d", m.Attempts("s1"))
		}
		// Other sessions have their own counters.
		if _, err := m.Respawn(ctx, "s2"); err != nil {
			t.Errorf("another session: %v", err)
		}
	})
}

// The original specification never resets the counter; we do after a
// respawn-free ResetAfter.
func TestRespawnCounterResetsAfterQuietPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := reapertest.NewEngine()
		m := newManager(t, reaper.RespawnConfig{MaxRespawns: 2}, eng)
		ctx := context.Background()
		for range 2 {
			if _, err := m.Respawn(ctx, "s"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Respawn(ctx, "s"); !errors.Is(err, reaper.ErrMaxRespawns) {
			t.Fatalf("3rd: %v", err)
		}
		time.Sleep(reaper.DefaultResetAfter + time.Second)
		res, err := m.Respawn(ctx, "s")
		if err != nil || res.Attempt != 1 || res.Backoff != reaper.DefaultBaseBackoff {
			t.Fatalf("after the quiet period: %+v, %v; want attempt 1 with a 5 s backoff", res, err)
		}
	})
}

func TestRespawnBackoffCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := reapertest.NewEngine()
		m := newManager(t, reaper.RespawnConfig{}, eng)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := m.Respawn(ctx, "s")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v, want the context's error", err)
		}
		if len(eng.Specs()) != 0 {
			t.Error("spawned after the context ended")
		}
	})
}

// TestRespawnBackoffDoesNotHoldTheSession: while a Respawn waits out its
// backoff, the session's other operations answer at once, a second Respawn
// is refused, and Kill ends the wait so nothing is spawned.
func TestRespawnBackoffDoesNotHoldTheSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := reapertest.NewEngine()
		m := newManager(t, reaper.RespawnConfig{}, eng)
		ctx := context.Background()
		if _, err := m.Spawn(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		spawned := len(eng.Specs())
		done := make(chan error, 1)
		go func() {
			_, err := m.Respawn(ctx, "s")
			done <- err
		}()
		time.Sleep(time.Second) // inside the 5 s backoff (synctest time)
		start := time.Now()
		if n := m.Attempts("s"); n != 1 {
			t.Fatalf("attempts %d during the backoff, want 1", n)
		}
		_ = m.ActiveContainers()
		if _, err := m.Respawn(ctx, "s"); err == nil || !strings.Contains(err.Error(), "already waiting") {
			t.Fatalf("a second Respawn during the backoff: %v", err)
		}
		if err := m.Kill(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, reaper.ErrKilledDuringBackoff) {
			t.Fatalf("Respawn after Kill: %v, want ErrKilledDuringBackoff", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("the session's operations waited %v for the backoff", d)
		}
		if n := len(eng.Specs()); n != spawned {
			t.Fatalf("%d containers spawned after the Kill", n-spawned)
		}
	})
}

// The container spec carries the original specification's resource limits.
func TestSpawnSpecLimits(t *testing.T) {
	eng := reapertest.NewEngine()
	m := newManager(t, reaper.RespawnConfig{Labels: map[string]string{"team": "a", reaper.LabelManaged: "false"}}, eng)
	id, err := m.Spawn(context.Background(), "sess-1")
	if err != nil {
		t.Fatal(err)
	}
	specs := eng.Specs()
	if len(specs) != 1 {
		t.Fatalf("%d creates", len(specs))
	}
	s := specs[0]
	checkLimits(t, s)
	if s.Name != "talos-browser-sess-1" || s.Labels[reaper.LabelSession] != "sess-1" || s.Labels["team"] != "a" {
		t.Errorf("name/labels: %q %v", s.Name, s.Labels)
	}
	if _, err := time.Parse(time.RFC3339, s.Labels[reaper.LabelCreatedAt]); err != nil {
		t.Errorf("created_at label %q: %v", s.Labels[reaper.LabelCreatedAt], err)
	}
	if !slices.Contains(s.Env, "TALOS_SESSION_ID=sess-1") {
		t.Errorf("env %v", s.Env)
	}
	if c := eng.Containers(); len(c) != 1 || c[0].ID != id || c[0].State != "running" {
		t.Errorf("containers %+v", c)
	}
	if got := m.ActiveContainers(); !slices.Equal(got, []string{id}) {
		t.Errorf("ActiveContainers = %v, want [%s]", got, id)
	}
	if err := m.Kill(context.Background(), "sess-1"); err != nil || len(m.ActiveContainers()) != 0 {
		t.Errorf("after Kill: %v, active %v", err, m.ActiveContainers())
	}
}

func checkLimits(t *testing.T, s reaper.ContainerSpec) {
	t.Helper()
	if s.MemoryBytes != 512<<20 || s.MemorySwap != s.MemoryBytes {
		t.Errorf("memory %d swap %d, want 512 MiB and no swap (equal)", s.MemoryBytes, s.MemorySwap)
	}
	if s.NanoCPUs != 1e9 || s.PidsLimit != 100 {
		t.Errorf("cpus %d pids %d", s.NanoCPUs, s.PidsLimit)
	}
	if !slices.Equal(s.CapDrop, []string{"ALL"}) || len(s.CapAdd) != 0 || !s.ReadonlyRootfs {
		t.Errorf("capdrop %v capadd %v readonly %v", s.CapDrop, s.CapAdd, s.ReadonlyRootfs)
	}
	if !maps.Equal(s.Tmpfs, reaper.DefaultTmpfs()) || s.Tmpfs["/tmp"] != "rw,noexec,nosuid,size=100m" || s.Tmpfs["/home/browser/data"] != "rw,noexec,nosuid,size=50m" {
		t.Errorf("tmpfs %v", s.Tmpfs)
	}
	if s.NetworkMode != "none" || !slices.Equal(s.SecurityOpt, []string{"no-new-privileges:true"}) {
		t.Errorf("network %q secopt %v", s.NetworkMode, s.SecurityOpt)
	}
	if s.Labels[reaper.LabelManaged] != reaper.LabelManagedValue {
		t.Errorf("managed label %q", s.Labels[reaper.LabelManaged])
	}
}

// A container left with the session's name is replaced; a start
// failure leaves no container behind.
func TestSpawnReplacesLeftoverAndCleansUpFailedStart(t *testing.T) {
	eng := reapertest.NewEngine()
	old := eng.Add(reaper.Container{Name: "talos-browser-s", Labels: map[string]string{reaper.LabelManaged: "true"}, Created: time.Now().Add(-time.Hour)})
	m := newManager(t, reaper.RespawnConfig{}, eng)
	id, err := m.Spawn(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	cs := eng.Containers()
	if len(cs) != 1 || cs[0].ID != id || id == old {
		t.Fatalf("containers %+v, want only the new one", cs)
	}
	eng.FailStart = func(string) error { return errors.New("boom") }
	if _, err := m.Spawn(context.Background(), "t"); !errors.Is(err, talos.ErrDocker) {
		t.Fatalf("failed start: %v, want T009", err)
	}
	if cs := eng.Containers(); len(cs) != 1 {
		t.Errorf("a failed start left a container: %+v", cs)
	}
	// Kill of a gone container is fine (spec "already_gone").
	eng.FailStart = nil
	if err := m.Kill(context.Background(), "never-spawned"); err != nil {
		t.Errorf("Kill of an unknown session: %v", err)
	}
	if err := m.Kill(context.Background(), "s"); err != nil || len(eng.Containers()) != 0 {
		t.Errorf("Kill: %v, containers %+v", err, eng.Containers())
	}
}

func TestManagerConfigValidation(t *testing.T) {
	eng := reapertest.NewEngine()
	bad := []reaper.RespawnConfig{
		{},                           // no image
		{Image: "x", MemoryBytes: 1}, // below Docker's minimum
		{Image: "x", NetworkMode: "host"},
		{Image: "x", NetworkMode: "container:abc"},
		{Image: "x", MaxRespawns: -1},
		{Image: "x", BaseBackoff: -time.Second},
		{Image: "x", PidsLimit: -1},
	}
	for _, cfg := range bad {
		if _, err := reaper.NewManager(cfg, eng); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("NewManager(%+v) = %v, want T010", cfg, err)
		}
	}
	if _, err := reaper.NewManager(reaper.RespawnConfig{Image: "x"}, nil); err == nil {
		t.Error("nil engine accepted")
	}
	m := newManager(t, reaper.RespawnConfig{}, eng)
	for _, id := range []string{"", "../x", "a b", strings.Repeat("a", 65), "-x"} {
		if _, err := m.Spawn(context.Background(), id); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("session %q: %v", id, err)
		}
	}
}

func TestFakeEnginePassesConformance(t *testing.T) {
	reapertest.RunEngine(t, func(*testing.T) reaper.Engine { return reapertest.NewEngine() }, reapertest.Suite{Image: "img"})
}
