package reapertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/reaper"
)

// Suite parameterises RunEngine.
type Suite struct {
	// Image is a local image; Cmd a command in it that keeps running (for
	// example busybox and ["sleep", "60"]).
	Image string
	Cmd   []string
	// LabelsEveryCreate says the Engine puts the Talos label on every
	// container it creates (the socket proxy does): the suite then expects
	// a container created without the label to be listed with it.
	LabelsEveryCreate bool
}

// RunEngine is the conformance suite of reaper.Engine: every implementation
// (the fake here, reaper/docker against a real engine or through the socket
// proxy) must pass it. newEngine returns a fresh Engine for one subtest.
// Containers the suite creates are removed when it ends.
func RunEngine(t *testing.T, newEngine func(t *testing.T) reaper.Engine, suite Suite) {
	t.Helper()
	image, cmd := suite.Image, suite.Cmd
	spec := func(t *testing.T, labelled bool) reaper.ContainerSpec {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		s := reaper.ContainerSpec{
			Name:           "talos-conf-" + hex.EncodeToString(b),
			Image:          image,
			Cmd:            cmd,
			Labels:         map[string]string{"talos.test": t.Name()},
			MemoryBytes:    64 << 20,
			MemorySwap:     64 << 20,
			NanoCPUs:       500_000_000,
			PidsLimit:      20,
			CapDrop:        []string{"ALL"},
			ReadonlyRootfs: true,
			Tmpfs:          map[string]string{"/tmp": "rw,noexec,nosuid,size=1m"},
			NetworkMode:    "none",
			SecurityOpt:    []string{"no-new-privileges:true"},
		}
		if labelled {
			s.Labels[reaper.LabelManaged] = reaper.LabelManagedValue
		}
		return s
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	cleanup := func(t *testing.T, e reaper.Engine, id string) {
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := e.Remove(c, id); err != nil && !errors.Is(err, reaper.ErrContainerNotFound) {
				t.Errorf("cleanup: remove %s: %v", id, err)
			}
		})
	}
	ids := func(cs []reaper.Container) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.ID
		}
		return out
	}

	t.Run("LifecycleAndList", func(t *testing.T) {
		e, c := newEngine(t), ctx(t)
		s := spec(t, true)
		id, err := e.Create(c, s)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		cleanup(t, e, id)
		if id == "" {
			t.Fatal("Create returned an empty ID")
		}
		if err := e.Start(c, id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		list, err := e.List(c, reaper.LabelManaged, reaper.LabelManagedValue)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		i := slices.IndexFunc(list, func(x reaper.Container) bool { return x.ID == id })
		if i < 0 {
			t.Fatalf("List does not include the created container %s: %v", id, ids(list))
		}
		got := list[i]
		if got.Name != s.Name {
			t.Errorf("Name = %q, want %q (no leading slash)", got.Name, s.Name)
		}
		if got.Labels["talos.test"] != t.Name() || got.Labels[reaper.LabelManaged] != reaper.LabelManagedValue {
			t.Errorf("Labels = %v, want the spec's labels", got.Labels)
		}
		if age := time.Since(got.Created); got.Created.IsZero() || age < -time.Minute || age > 5*time.Minute {
			t.Errorf("Created = %v, want about now", got.Created)
		}
		if got.State != "running" {
			t.Errorf("State = %q after Start, want running", got.State)
		}
		if err := e.Stop(c, id, time.Second); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := e.Remove(c, id); err != nil {
			t.Fatalf("Remove: %v", err)
		}
		list, err = e.List(c, reaper.LabelManaged, reaper.LabelManagedValue)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if slices.Contains(ids(list), id) {
			t.Errorf("removed container %s still listed", id)
		}
	})

	t.Run("ListOnlyLabelled", func(t *testing.T) {
		e, c := newEngine(t), ctx(t)
		id, err := e.Create(c, spec(t, false))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		cleanup(t, e, id)
		list, err := e.List(c, reaper.LabelManaged, reaper.LabelManagedValue)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		listed := slices.Contains(ids(list), id)
		switch {
		case suite.LabelsEveryCreate && !listed:
			t.Errorf("the engine labels every create, but a container created without the label is not listed")
		case !suite.LabelsEveryCreate && listed:
			t.Errorf("List(%s) includes an unlabelled container", reaper.LabelManaged)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		e, c := newEngine(t), ctx(t)
		missing := "talos-conf-does-not-exist"
		if err := e.Remove(c, missing); !errors.Is(err, reaper.ErrContainerNotFound) {
			t.Errorf("Remove(missing) = %v, want ErrContainerNotFound", err)
		}
		if err := e.Start(c, missing); !errors.Is(err, reaper.ErrContainerNotFound) {
			t.Errorf("Start(missing) = %v, want ErrContainerNotFound", err)
		}
	})

	t.Run("RemoveRunningForces", func(t *testing.T) {
		e, c := newEngine(t), ctx(t)
		id, err := e.Create(c, spec(t, true))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		cleanup(t, e, id)
		if err := e.Start(c, id); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if err := e.Remove(c, id); err != nil {
			t.Fatalf("Remove of a running container: %v", err)
		}
		list, _ := e.List(c, reaper.LabelManaged, reaper.LabelManagedValue)
		if slices.Contains(ids(list), id) {
			t.Errorf("container %s still listed after Remove", id)
		}
	})
}
