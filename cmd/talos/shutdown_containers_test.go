package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/reaper"
	reaperdocker "github.com/talos-ironclad/talos/reaper/docker"
)

// The daemon's shutdown, whether from SIGTERM, SIGINT or a panic, stops and
// removes this home's Talos containers on the real engine (one that
// ignores SIGTERM is killed after the grace) well inside the 20 s forced
// deadline, leaves an unlabelled container alone, and audits what it did.
func TestShutdownStopsThisHomesContainers(t *testing.T) {
	dockerHost := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	eng, err := reaperdocker.New(reaperdocker.Config{Host: dockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, how := range []string{"SIGTERM", "SIGINT", "panic"} {
		t.Run(how, func(t *testing.T) {
			home := initHome(t)
			run := "talos-shutdown-test-" + strings.ToLower(how) + "-" + host.InstanceID(home)[:8]
			start := func(name string, labels map[string]string) {
				id, err := eng.Create(context.Background(), reaper.ContainerSpec{Name: name, Image: img, Cmd: []string{"sleep", "300"},
					Labels: labels, NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = eng.Remove(context.Background(), id) })
				if err := eng.Start(context.Background(), id); err != nil {
					t.Fatal(err)
				}
			}
			start(run+"-skill", map[string]string{reaper.LabelManaged: reaper.LabelManagedValue, host.LabelInstance: host.InstanceID(home), "talos.test.owner": run})
			start(run+"-plain", map[string]string{"talos.test.owner": run})

			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "TALOS_HELPER_ARGS="+strings.Join([]string{"run", "--home", home, "--health-addr", freeAddr(t),
				"--set", "WEB_PORT=" + strings.TrimPrefix(freeAddr(t), "127.0.0.1:"), "--set", "TALOS_DOCKER_HOST=" + dockerHost}, "\x1f"))
			var out testenv.LockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-done; done <- nil })
			waitFile(t, filepath.Join(home, boot.ReadyFileName), 30*time.Second)

			began := time.Now()
			switch how {
			case "SIGTERM":
				err = cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				err = cmd.Process.Signal(syscall.SIGINT)
			case "panic":
				_, _, err = talosCmd(context.Background(), "panic", "--reason", "container test", "--home", home)
			}
			if err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				done <- err
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, out.String())
				}
			case <-time.After(ShutdownForce):
				t.Fatalf("no exit within the %v forced deadline\n%s", ShutdownForce, out.String())
			}
			t.Logf("%s → exit with one container to stop: %v", how, time.Since(began).Round(time.Millisecond))

			left, err := eng.List(context.Background(), "talos.test.owner", run)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 1 || left[0].Name != run+"-plain" || left[0].State != "running" {
				t.Errorf("left on the engine after the shutdown: %+v", left)
			}
			audit, _ := os.ReadFile(filepath.Join(home, "logs", "tier1", "audit.log"))
			if !strings.Contains(string(audit), `"containers_stopped"`) || !strings.Contains(string(audit), run+"-skill") {
				t.Errorf("no containers_stopped audit line naming %s-skill:\n%s", run, audit)
			}
		})
	}
}

// The drain ends early enough to leave the containers their budget before
// the forced exit, and never lasts longer than the daemon's grace.
func TestDrainDeadlineLeavesTheContainersTheirBudget(t *testing.T) {
	now := time.Now()
	if d := drainDeadline(now); d.Sub(now) > daemon.ShutdownGrace+time.Second || d.Sub(now) < daemon.ShutdownGrace-time.Second {
		t.Errorf("fresh shutdown: drain for %v, want %v", d.Sub(now), daemon.ShutdownGrace)
	}
	began := now.Add(-10 * time.Second) // maintenance and the dashboard took 10 s
	if d := drainDeadline(began); !d.Equal(began.Add(ShutdownForce - containerBudget)) {
		t.Errorf("late drain ends %v after the start, want %v", d.Sub(began), ShutdownForce-containerBudget)
	}
}
