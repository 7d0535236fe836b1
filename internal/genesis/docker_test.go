package genesis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sockproxy"
)

// engineClient talks to the engine directly (not through a proxy): the
// test's own view of what really happened.
func engineClient(t testing.TB, host string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// createOnEngine creates a stopped busybox container directly on the
// engine, labelled talos.test.genesis (and talos.managed when managed),
// removed when the test ends.
func createOnEngine(t testing.TB, eng *client.Client, image, name string, managed bool) string {
	t.Helper()
	labels := map[string]string{"talos.test.genesis": name}
	if managed {
		labels[sockproxy.LabelManaged] = sockproxy.LabelManagedValue
	}
	res, err := eng.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: image, Cmd: []string{"sleep", "300"}, Labels: labels, Env: []string{"SECRET_TOKEN=do-not-show"}},
		HostConfig: &container.HostConfig{NetworkMode: "none", ReadonlyRootfs: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := eng.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup of %s: %v", name, err)
		}
	})
	return res.ID
}

func engineState(t *testing.T, eng *client.Client, id string) string {
	t.Helper()
	info, err := eng.ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(info.Container.State.Status)
}

func newDockerEngine(t testing.TB, host string) *genesis.DockerEngine {
	t.Helper()
	d, err := genesis.NewDockerEngine(genesis.DockerConfig{DockerHost: host, StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDockerControlOnEngine(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	r, _, ws := engineEnv(t, genesis.TrustContainers)
	eng := engineClient(t, host)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	mine := "talos-genesis-dc-mine-" + suffix
	other := "talos-genesis-dc-other-" + suffix
	mineID := createOnEngine(t, eng, img, mine, true)
	otherID := createOnEngine(t, eng, img, other, false)

	ansDir := filepath.Join(filepath.Dir(ws), ".docker")
	r.WithDocker(newDockerEngine(t, host), ansDir)
	if !slices.Contains(r.Names(), genesis.DockerControl) {
		t.Fatalf("docker_control not offered at level 3: %v", r.Names())
	}
	ctx := context.Background()

	list, err := r.Call(ctx, genesis.DockerControl, map[string]any{"action": "list"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list, mine) || !strings.Contains(list, mineID[:12]) || strings.Contains(list, other) || strings.Contains(list, otherID[:12]) {
		t.Fatalf("list must show the labelled container and never the other:\n%s", list)
	}

	out, err := r.Call(ctx, genesis.DockerControl, map[string]any{"action": "start", "container": mine})
	if err != nil || !strings.Contains(out, "started "+mine+": it is running now") {
		t.Fatalf("start: %q %v", out, err)
	}
	if st := engineState(t, eng, mineID); st != "running" {
		t.Fatalf("on the engine after start: %s", st)
	}
	out, err = r.Call(ctx, genesis.DockerControl, map[string]any{"action": "inspect", "container": mineID[:12]})
	if err != nil || !strings.Contains(out, "state: running") || !strings.Contains(out, "talos.managed=true") || !strings.Contains(out, "id: "+mineID) {
		t.Fatalf("inspect: %q %v", out, err)
	}
	if strings.Contains(out, "do-not-show") || strings.Contains(out, "SECRET_TOKEN") {
		t.Fatalf("inspect leaked the environment:\n%s", out)
	}
	out, err = r.Call(ctx, genesis.DockerControl, map[string]any{"action": "stop", "container": mine})
	if err != nil || !strings.Contains(out, "stopped "+mine+": it is exited now") {
		t.Fatalf("stop: %q %v", out, err)
	}
	if st := engineState(t, eng, mineID); st != "exited" {
		t.Fatalf("on the engine after stop: %s", st)
	}

	// The unlabelled container: refused by the real proxy, by name and by
	// ID, and untouched on the engine.
	for _, action := range []string{"inspect", "start", "stop"} {
		for _, ref := range []string{other, otherID} {
			_, err := r.Call(ctx, genesis.DockerControl, map[string]any{"action": action, "container": ref})
			if talos.CodeOf(err) != talos.CodePolicyDenied || !strings.Contains(err.Error(), "socket proxy") {
				t.Errorf("%s of the unlabelled container %s: %v", action, ref[:min(len(ref), 16)], err)
			}
		}
	}
	if st := engineState(t, eng, otherID); st != "created" {
		t.Fatalf("the unlabelled container was touched: %s", st)
	}

	// Bad requests never reach the engine; every problem is named.
	for _, args := range []map[string]any{
		{"action": "remove", "container": mine},
		{"action": "stop", "container": "../containers/x"},
		{"action": "inspect"},
		{"action": "list", "container": mine},
		{"action": 3},
	} {
		if _, err := r.Call(ctx, genesis.DockerControl, args); talos.CodeOf(err) != talos.CodeInputInvalid {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := r.Call(ctx, genesis.DockerControl, map[string]any{"action": "inspect", "container": "no-such-" + suffix}); talos.CodeOf(err) != talos.CodeInputInvalid {
		t.Errorf("missing container: %v", err)
	}
	if _, err := r.Docker(ctx, "wipe", "a\x1bb"); err == nil || !strings.Contains(err.Error(), `"wipe"`) || !strings.Contains(err.Error(), `"a\x1bb"`) {
		t.Errorf("both problems, escaped: %v", err)
	}
}

func TestDockerControlNeedsTrustLevel3(t *testing.T) {
	host := testenv.DockerHost(t)
	r, _, ws := engineEnv(t, genesis.TrustCode)
	r.WithDocker(newDockerEngine(t, host), filepath.Join(filepath.Dir(ws), ".docker"))
	if slices.Contains(r.Names(), genesis.DockerControl) {
		t.Fatalf("docker_control offered at level 2: %v", r.Names())
	}
	for _, tl := range r.Tools() {
		if tl.Name == genesis.DockerControl {
			t.Fatal("docker_control in the tools at level 2")
		}
	}
	if _, err := r.Docker(context.Background(), genesis.DockerList, ""); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Fatalf("docker_control at level 2: %v", err)
	}
}

// The docker_control engine itself, past the Runner: the proxy refuses the
// unlabelled container and the profile refuses what it does not list.
func TestDockerEngineThroughProxy(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.BusyboxImage(t)
	eng := engineClient(t, host)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	other := "talos-genesis-de-other-" + hex.EncodeToString(b)
	otherID := createOnEngine(t, eng, img, other, false)
	d := newDockerEngine(t, host)
	ctx := context.Background()
	if err := d.Start(ctx, other); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Fatalf("start of an unlabelled container: %v", err)
	}
	if st := engineState(t, eng, otherID); st != "created" {
		t.Fatalf("the unlabelled container was started: %s", st)
	}
	cs, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == otherID || c.Labels[sockproxy.LabelManaged] != sockproxy.LabelManagedValue {
			t.Fatalf("the list holds an unlabelled container: %+v", c)
		}
	}
	if _, err := genesis.NewDockerEngine(genesis.DockerConfig{StopTimeout: 1500 * time.Millisecond}); talos.CodeOf(err) != talos.CodeConfigInvalid ||
		!strings.Contains(err.Error(), "DockerHost") || !strings.Contains(err.Error(), "StopTimeout") {
		t.Fatalf("bad config: %v", err)
	}
}
