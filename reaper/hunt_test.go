package reaper_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/proc/proctest"
	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/reapertest"
)

type fakeRegistry []reaper.Registered

func (f fakeRegistry) Registered() []reaper.Registered { return f }

func byID(entries []reaper.HuntEntry) map[string]reaper.HuntEntry {
	m := map[string]reaper.HuntEntry{}
	for _, e := range entries {
		m[e.ID] = e
	}
	return m
}

func TestHuntContainers(t *testing.T) {
	eng := reapertest.NewEngine()
	now := time.Now()
	old := now.Add(-4 * 24 * time.Hour)
	managed := map[string]string{reaper.LabelManaged: reaper.LabelManagedValue}
	oldID := eng.Add(reaper.Container{Name: "talos-browser-old", Labels: managed, Created: old})
	stoppedID := eng.Add(reaper.Container{Name: "talos-browser-stopped", Labels: managed, Created: old, State: "exited"})
	youngID := eng.Add(reaper.Container{Name: "talos-browser-young", Labels: managed, Created: now.Add(-71 * time.Hour)})
	activeID := eng.Add(reaper.Container{Name: "talos-browser-active", Labels: managed, Created: old})
	busyID := eng.Add(reaper.Container{Name: "talos-browser-busy", Labels: map[string]string{reaper.LabelManaged: "true", "busy": "1"}, Created: old})
	serviceID := eng.Add(reaper.Container{Name: "talos-socket-proxy", Labels: managed, Created: old})
	foreignID := eng.Add(reaper.Container{Name: "postgres", Labels: map[string]string{"app": "db"}, Created: old})
	wrongValueID := eng.Add(reaper.Container{Name: "other", Labels: map[string]string{reaper.LabelManaged: "false"}, Created: old})

	h, err := reaper.NewHunter(reaper.HuntConfig{
		ActiveContainers:    []string{"talos-browser-active"},
		IsActive:            func(c reaper.Container) bool { return c.Labels["busy"] == "1" },
		ProtectedContainers: []string{"talos-socket-proxy"},
	}, eng, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := h.Hunt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	removed := byID(rep.Removed)
	if len(removed) != 2 || removed[oldID].Name == "" || removed[stoppedID].Name == "" {
		t.Errorf("removed %+v, want exactly the two old inactive labelled containers", rep.Removed)
	}
	skipped := byID(rep.Skipped)
	for id, why := range map[string]string{youngID: reaper.SkipTooYoung, activeID: reaper.SkipActive, busyID: reaper.SkipActive, serviceID: reaper.SkipProtected} {
		if skipped[id].Reason != why {
			t.Errorf("%s: skipped as %q, want %q", skipped[id].Name, skipped[id].Reason, why)
		}
	}
	left := map[string]bool{}
	for _, c := range eng.Containers() {
		left[c.ID] = true
	}
	for _, id := range []string{youngID, activeID, busyID, serviceID, foreignID, wrongValueID} {
		if !left[id] {
			t.Errorf("container %s was removed", id[:12])
		}
	}
	if left[oldID] || left[stoppedID] {
		t.Error("old containers still there")
	}
	for _, call := range eng.Calls() {
		for _, id := range []string{foreignID, wrongValueID} {
			if strings.HasSuffix(call, id) {
				t.Errorf("the hunt called %q on a container without the Talos label", call)
			}
		}
	}
	if len(rep.Failed) != 0 || !strings.Contains(rep.Summary(), "2 containers removed") {
		t.Errorf("report: %s", rep.String())
	}
}

func TestHuntContainerFailureDoesNotStopTheHunt(t *testing.T) {
	eng := reapertest.NewEngine()
	old := time.Now().Add(-5 * 24 * time.Hour)
	a := eng.Add(reaper.Container{Name: "a", Labels: map[string]string{reaper.LabelManaged: "true"}, Created: old})
	b := eng.Add(reaper.Container{Name: "b", Labels: map[string]string{reaper.LabelManaged: "true"}, Created: old})
	eng.FailRemove = func(id string) error {
		if id == a {
			return errors.New("engine said no")
		}
		return nil
	}
	h, _ := reaper.NewHunter(reaper.HuntConfig{}, eng, nil, nil)
	rep, err := h.Hunt(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Failed) != 1 || rep.Failed[0].ID != a || !strings.Contains(rep.Failed[0].Err, "engine said no") {
		t.Errorf("failed %+v", rep.Failed)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].ID != b {
		t.Errorf("removed %+v", rep.Removed)
	}
}

type failingList struct{ reaper.Engine }

func (failingList) List(context.Context, string, string) ([]reaper.Container, error) {
	return nil, errors.New("proxy down")
}

func TestHuntListFailure(t *testing.T) {
	h, _ := reaper.NewHunter(reaper.HuntConfig{}, failingList{reapertest.NewEngine()}, nil, nil)
	if _, err := h.Hunt(context.Background()); !errors.Is(err, talos.ErrDocker) {
		t.Errorf("%v, want T009", err)
	}
}

// Processes: only registered ones, never self, ancestors or services; TERM,
// then KILL after the 5 s grace for one that ignores TERM.
func TestHuntProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := proctest.NewProcs()
		self := os.Getpid()
		// Our real ancestry as the fake sees it: self → 50 → 1.
		procs.Add(self, "reaper.test", 50, false)
		procs.Add(50, "bash", 1, false)
		procs.Add(1, "init", 0, false)
		procs.Add(1001, "chromium", self, false) // old, idle: TERM suffices
		procs.Add(1002, "chromium", self, true)  // old, idle, ignores TERM: KILL
		procs.Add(1003, "chromium", self, false) // young
		procs.Add(1004, "chromium", self, false) // recently active
		procs.Add(1005, "redis-server", self, false)
		procs.Add(1006, "chromium", self, false) // in ActivePIDs
		procs.Add(1008, "chromium", self, false)
		procs.SetZombie(1008)
		procs.Add(2000, "unregistered", self, false) // never registered: never touched

		now := time.Now()
		old := now.Add(-4 * 24 * time.Hour)
		reg := fakeRegistry{
			{PID: self, Name: "talos", Started: old, LastActivity: old},
			{PID: 50, Name: "bash", Started: old, LastActivity: old},
			{PID: 1001, Name: "chromium", Started: old, LastActivity: old},
			{PID: 1002, Name: "chromium", Started: old, LastActivity: old},
			{PID: 1003, Name: "chromium", Started: now.Add(-time.Hour), LastActivity: now.Add(-time.Hour)},
			{PID: 1004, Name: "chromium", Started: old, LastActivity: now.Add(-time.Minute)},
			{PID: 1005, Name: "redis-server", Started: old, LastActivity: old},
			{PID: 1006, Name: "chromium", Started: old, LastActivity: old},
			{PID: 1007, Name: "gone", Started: old, LastActivity: old},
			{PID: 1008, Name: "chromium", Started: old, LastActivity: old},
		}
		h, err := reaper.NewHunter(reaper.HuntConfig{ActivePIDs: []int{1006}}, nil, reg, procs)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := h.Hunt(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		killed := byID(rep.Killed)
		if len(killed) != 2 || killed["1001"].Reason != "SIGTERM" || killed["1002"].Reason != "SIGKILL" {
			t.Errorf("killed %+v", rep.Killed)
		}
		skipped := byID(rep.Skipped)
		for pid, why := range map[int]string{self: reaper.SkipSelf, 50: reaper.SkipParent, 1003: reaper.SkipTooYoung, 1004: reaper.SkipActive,
			1005: reaper.SkipProtected, 1006: reaper.SkipActive, 1007: reaper.SkipGone, 1008: reaper.SkipZombie} {
			if got := skipped[strconv.Itoa(pid)].Reason; got != why {
				t.Errorf("pid %d skipped as %q, want %q", pid, got, why)
			}
		}
		// Signals went only to 1001 (TERM) and 1002 (TERM then KILL, 5 s apart).
		var s1002 []proctest.Sent
		for _, s := range procs.Sent() {
			switch s.PID {
			case 1001:
				if s.Signal != syscall.SIGTERM {
					t.Errorf("1001 got %v", s.Signal)
				}
			case 1002:
				s1002 = append(s1002, s)
			default:
				t.Errorf("pid %d was signalled (%v)", s.PID, s.Signal)
			}
		}
		if len(s1002) != 2 || s1002[0].Signal != syscall.SIGTERM || s1002[1].Signal != syscall.SIGKILL || s1002[1].At.Sub(s1002[0].At) != reaper.DefaultHuntGrace {
			t.Errorf("1002 signals %+v, want TERM then KILL %v later", s1002, reaper.DefaultHuntGrace)
		}
		if d := time.Since(start); d != reaper.DefaultHuntGrace {
			t.Errorf("hunt took %v on the fake clock, want %v (one grace for the stubborn one)", d, reaper.DefaultHuntGrace)
		}
		if !procs.Alive(2000) || !procs.Alive(self) || !procs.Alive(50) || !procs.Alive(1005) {
			t.Error("an unregistered, self, parent or service process died")
		}
	})
}

func TestNewHunterValidation(t *testing.T) {
	if _, err := reaper.NewHunter(reaper.HuntConfig{}, nil, nil, nil); err == nil {
		t.Error("nothing to hunt accepted")
	}
	if _, err := reaper.NewHunter(reaper.HuntConfig{MaxAge: -1}, reapertest.NewEngine(), nil, nil); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("negative MaxAge: %v", err)
	}
}

func TestAncestors(t *testing.T) {
	got := reaper.Ancestors(proc.OS(), os.Getpid())
	if len(got) == 0 || got[0] != os.Getppid() {
		t.Fatalf("Ancestors = %v, want to start with our parent %d", got, os.Getppid())
	}
	// A loop in a (fake) table ends.
	p := proctest.NewProcs()
	p.Add(10, "a", 11, false)
	p.Add(11, "b", 10, false)
	if a := reaper.Ancestors(p, 10); len(a) != 1 || a[0] != 11 {
		t.Errorf("loop: %v", a)
	}
}
