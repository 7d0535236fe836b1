package host_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/reaper"
	reaperdocker "github.com/talos-ironclad/talos/reaper/docker"
)

// testOwner labels every container these tests create, so that cleanup
// finds them and nothing else.
const testOwner = "talos.test.owner"

// startContainer creates and starts a busybox `sleep 300` (PID 1, so it
// ignores SIGTERM and must be killed after the grace) with labels.
func startContainer(t *testing.T, eng *reaperdocker.Engine, img, name string, labels map[string]string) string {
	t.Helper()
	ctx := context.Background()
	id, err := eng.Create(ctx, reaper.ContainerSpec{Name: name, Image: img, Cmd: []string{"sleep", "300"}, Labels: labels,
		NetworkMode: "none", ReadonlyRootfs: true, CapDrop: []string{"ALL"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Remove(context.Background(), id) })
	if err := eng.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// At shutdown only the containers labelled talos.managed=true and with
// this home's talos.instance are stopped and removed, on the real engine;
// another home's Talos container and an unlabelled one keep running.
func TestStopContainersOnlyThisHomes(t *testing.T) {
	dockerHost := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	eng, err := reaperdocker.New(reaperdocker.Config{Host: dockerHost})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	home := t.TempDir()
	run := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())) + "-" + host.InstanceID(home)[:8]
	mine := map[string]string{reaper.LabelManaged: reaper.LabelManagedValue, host.LabelInstance: host.InstanceID(home), testOwner: run}
	other := map[string]string{reaper.LabelManaged: reaper.LabelManagedValue, host.LabelInstance: host.InstanceID(home + "-other"), testOwner: run}
	plain := map[string]string{testOwner: run, host.LabelInstance: host.InstanceID(home)} // not talos.managed
	startContainer(t, eng, img, run+"-mine-1", mine)
	startContainer(t, eng, img, run+"-mine-2", mine)
	startContainer(t, eng, img, run+"-other", other)
	startContainer(t, eng, img, run+"-plain", plain)

	began := time.Now()
	sweep, err := host.StopContainers(context.Background(), &config.Config{Home: home, DockerHost: dockerHost})
	took := time.Since(began)
	if err != nil || !slices.Equal(sweep.Removed, []string{run + "-mine-1", run + "-mine-2"}) {
		t.Fatalf("sweep %+v, %v", sweep, err)
	}
	t.Logf("two containers ignoring SIGTERM stopped and removed in %v", took)
	if took > 2*host.ContainerStopGrace+5*time.Second {
		t.Errorf("the sweep took %v: the containers were not stopped at once", took)
	}
	left, err := eng.List(context.Background(), testOwner, run)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range left {
		names = append(names, c.Name+":"+c.State)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{run + "-other:running", run + "-plain:running"}) {
		t.Errorf("left on the engine: %v", names)
	}

	// Nothing configured: nothing to do.
	if s, err := host.StopContainers(context.Background(), &config.Config{Home: home}); err != nil || s.Engine != "" || len(s.Removed) != 0 {
		t.Errorf("without an engine: %+v, %v", s, err)
	}
}
