package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/docker"
	"github.com/talos-ironclad/talos/reaper/reapertest"
	"github.com/talos-ironclad/talos/sockproxy"
	"github.com/talos-ironclad/talos/sockproxy/sockproxytest"
)

func newEngine(t *testing.T, host string) *docker.Engine {
	t.Helper()
	e, err := docker.New(docker.Config{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func rawClient(t *testing.T, host string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func runID() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startProxy serves the socket proxy's maintenance profile (what the daemon
// gives the respawn manager and the hunt) in front of the engine.
func startProxy(t *testing.T, upstream string) string {
	t.Helper()
	p, err := sockproxy.New(sockproxy.Config{Upstream: upstream, Profile: sockproxy.MaintenanceProfile(), Audit: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() }) // after the server has stopped (cleanups run last first)
	return "unix://" + sockproxytest.Serve(t, p).Socket
}

func TestEngineConformance(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	suite := reapertest.Suite{Image: img, Cmd: []string{"sleep", "60"}}
	t.Run("direct", func(t *testing.T) {
		reapertest.RunEngine(t, func(t *testing.T) reaper.Engine { return newEngine(t, host) }, suite)
	})
	t.Run("through-proxy", func(t *testing.T) {
		sock := startProxy(t, host)
		s := suite
		s.LabelsEveryCreate = true
		reapertest.RunEngine(t, func(t *testing.T) reaper.Engine { return newEngine(t, sock) }, s)
	})
}

// The respawn manager, through the socket proxy, creates a container with
// the spec's limits; we inspect it on the engine itself.
func TestRespawnCreatesLimitedContainer(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	eng := newEngine(t, startProxy(t, host))
	raw := rawClient(t, host)
	m, err := reaper.NewManager(reaper.RespawnConfig{
		Image:       img,
		Cmd:         []string{"sleep", "60"},
		NamePrefix:  "talos-reaper-test-",
		BaseBackoff: time.Millisecond, // the 5 s ladder is checked on a fake clock
		StopTimeout: time.Second,
	}, eng)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	session := runID()
	t.Cleanup(func() {
		if err := m.Kill(context.Background(), session); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	first, err := m.Spawn(ctx, session)
	if err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	res, err := m.Respawn(ctx, session)
	if err != nil {
		t.Fatalf("Respawn: %v", err)
	}
	if res.Attempt != 1 || res.ContainerID == first {
		t.Fatalf("Respawn result %+v", res)
	}
	if _, err := raw.ContainerInspect(ctx, first, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the replaced container %s still exists (err %v)", first[:12], err)
	}
	got, err := raw.ContainerInspect(ctx, res.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Container
	hc := c.HostConfig
	if hc.Memory != 512<<20 || hc.MemorySwap != hc.Memory {
		t.Errorf("Memory %d MemorySwap %d, want 536870912 both (no swap)", hc.Memory, hc.MemorySwap)
	}
	if hc.NanoCPUs != 1e9 {
		t.Errorf("NanoCPUs %d", hc.NanoCPUs)
	}
	if hc.PidsLimit == nil || *hc.PidsLimit != 100 {
		t.Errorf("PidsLimit %v", hc.PidsLimit)
	}
	if !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 {
		t.Errorf("CapDrop %v CapAdd %v", hc.CapDrop, hc.CapAdd)
	}
	if !hc.ReadonlyRootfs {
		t.Error("root file system is writable")
	}
	if !maps.Equal(hc.Tmpfs, reaper.DefaultTmpfs()) {
		t.Errorf("Tmpfs %v, want %v", hc.Tmpfs, reaper.DefaultTmpfs())
	}
	if string(hc.NetworkMode) != "none" || !slices.Contains(hc.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("NetworkMode %q SecurityOpt %v", hc.NetworkMode, hc.SecurityOpt)
	}
	if c.Config.Labels[reaper.LabelManaged] != "true" || c.Config.Labels[reaper.LabelSession] != session {
		t.Errorf("labels %v", c.Config.Labels)
	}
	if c.State == nil || !c.State.Running {
		t.Errorf("respawned container not running: %+v", c.State)
	}
}

// The hunt removes an old labelled container and leaves an unlabelled one
// alone. "Old" is MaxAge 1 ns; containers of other tests on the shared
// engine are kept out through IsActive.
func TestHuntOnRealEngine(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	direct := newEngine(t, host)
	raw := rawClient(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	run := runID()
	mk := func(name string, labelled bool) string {
		labels := map[string]string{"talos.test.run": run}
		if labelled {
			labels[reaper.LabelManaged] = reaper.LabelManagedValue
		}
		id, err := direct.Create(ctx, reaper.ContainerSpec{Name: name + "-" + run, Image: img, Cmd: []string{"sleep", "60"}, Labels: labels, NetworkMode: "none", ReadonlyRootfs: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = direct.Remove(context.Background(), id) })
		if err := direct.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	labelled := mk("talos-hunt-old", true)
	unlabelled := mk("talos-hunt-foreign", false)
	kept := mk("talos-hunt-active", true)

	h, err := reaper.NewHunter(reaper.HuntConfig{
		MaxAge:           time.Nanosecond,
		Grace:            time.Second,
		ActiveContainers: []string{"talos-hunt-active-" + run},
		IsActive:         func(c reaper.Container) bool { return c.Labels["talos.test.run"] != run },
	}, newEngine(t, startProxy(t, host)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := h.Hunt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].ID != labelled {
		t.Fatalf("removed %+v, want only %s\n%s", rep.Removed, labelled[:12], rep)
	}
	if _, err := raw.ContainerInspect(ctx, labelled, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the old labelled container still exists: %v", err)
	}
	for _, id := range []string{unlabelled, kept} {
		got, err := raw.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("container %s was removed: %v", id[:12], err)
		}
		if !got.Container.State.Running {
			t.Errorf("container %s was stopped", id[:12])
		}
	}
	for _, e := range append(rep.Removed, rep.Skipped...) {
		if e.ID == unlabelled {
			t.Errorf("the hunt even considered the unlabelled container: %+v", e)
		}
	}
}

func TestNewBadHost(t *testing.T) {
	if _, err := docker.New(docker.Config{Host: "bogus://x"}); err == nil {
		t.Error("bad host accepted")
	}
	e, err := docker.New(docker.Config{Host: "unix:///nonexistent/talos.sock"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.List(context.Background(), reaper.LabelManaged, "true")
	if err == nil || errors.Is(err, reaper.ErrContainerNotFound) {
		t.Errorf("List on a missing socket: %v", err)
	}
}
