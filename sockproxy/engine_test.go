package sockproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sockproxy"
	"github.com/talos-ironclad/talos/sockproxy/sockproxytest"
)

// auditLog collects the proxy's audit records (JSON lines).
type auditLog struct{ testenv.LockedBuffer }

// records returns the audit records whose event is ev.
func (a *auditLog) records(ev string) []map[string]any {
	var out []map[string]any
	for _, m := range a.JSONLines() {
		if m["event"] == ev {
			out = append(out, m)
		}
	}
	return out
}

// proxyUnderTest is a proxy serving on its own unix socket.
type proxyUnderTest struct {
	sock  string
	proxy *sockproxy.Proxy
	audit *auditLog
	srv   *sockproxytest.Server
}

// startProxy serves a proxy for cfg on a fresh unix socket until the test ends.
func startProxy(t testing.TB, cfg sockproxy.Config) *proxyUnderTest {
	t.Helper()
	a := &auditLog{}
	if cfg.Audit == nil {
		cfg.Audit = slog.New(slog.NewJSONHandler(a, nil))
	}
	p, err := sockproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() }) // after the server has stopped (cleanups run last first)
	srv := sockproxytest.Serve(t, p)
	return &proxyUnderTest{sock: srv.Socket, proxy: p, audit: a, srv: srv}
}

func (pt *proxyUnderTest) client(t testing.TB) *client.Client {
	t.Helper()
	return newClient(t, "unix://"+pt.sock)
}

// httpClient talks raw HTTP to the proxy's socket.
func (pt *proxyUnderTest) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", pt.sock)
		},
		DisableKeepAlives: true,
	}}
}

func newClient(t testing.TB, host string) *client.Client {
	t.Helper()
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// engineCreate creates a container directly on the engine (not through the
// proxy), removed when the test ends.
func engineCreate(t testing.TB, eng *client.Client, image, name string, labels map[string]string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	res, err := eng.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: image, Cmd: cmd, Labels: labels},
		HostConfig: &container.HostConfig{NetworkMode: "none", ReadonlyRootfs: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanupContainer(t, eng, res.ID)
	return res.ID
}

func cleanupContainer(t testing.TB, eng *client.Client, id string) {
	t.Cleanup(func() {
		_, err := eng.ContainerRemove(context.Background(), id, client.ContainerRemoveOptions{Force: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("cleanup of container %s: %v", id, err)
		}
	})
}

// TestEngineLifecycleThroughProxy drives a labelled busybox container through
// its whole life with the moby client, through the proxy only.
func TestEngineLifecycleThroughProxy(t *testing.T) {
	host := testenv.DockerHost(t)
	image := testenv.BusyboxImage(t)
	eng := newClient(t, host)
	pt := startProxy(t, sockproxy.Config{Upstream: host, Profile: sockproxy.MaintenanceProfile()})
	cli := pt.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != "1.41" || cli.ClientVersion() != "1.41" {
		t.Fatalf("negotiated API %q / client %q; want 1.41 through the proxy", ping.APIVersion, cli.ClientVersion())
	}
	if _, err := cli.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		t.Fatalf("version through the proxy: %v", err)
	}

	name := "sp-life-" + randHex(4)
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{Image: image,
			Cmd: []string{"sh", "-c", "echo first; sleep 1; echo second; exit 3"}},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none",
			CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"}},
	})
	if err != nil {
		t.Fatalf("create through the proxy: %v", err)
	}
	cleanupContainer(t, eng, created.ID)

	// The label was injected; the engine holds exactly what was asked.
	direct, err := eng.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := direct.Container.Config.Labels[sockproxy.LabelManaged]; got != sockproxy.LabelManagedValue {
		t.Fatalf("label %s = %q; want %q", sockproxy.LabelManaged, got, sockproxy.LabelManagedValue)
	}
	if !direct.Container.HostConfig.ReadonlyRootfs || direct.Container.HostConfig.NetworkMode != "none" {
		t.Fatalf("host config on the engine: %+v", direct.Container.HostConfig)
	}

	// Inspect by name through the proxy resolves to the same container.
	viaName, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil || viaName.Container.ID != created.ID {
		t.Fatalf("inspect by name: %v, %v", viaName.Container.ID, err)
	}

	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start: %v", err)
	}
	// Wait is long-lived: register it now, through the proxy.
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})

	logs, err := cli.ContainerLogs(ctx, created.ID[:12], client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer logs.Close()
	// Read the first frame while the container still runs: the proxy
	// streams instead of buffering until the end.
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(logs, hdr); err != nil {
		t.Fatal(err)
	}
	size := int(hdr[4])<<24 | int(hdr[5])<<16 | int(hdr[6])<<8 | int(hdr[7])
	first := make([]byte, size)
	if _, err := io.ReadFull(logs, first); err != nil {
		t.Fatal(err)
	}
	if string(first) != "first\n" {
		t.Fatalf("first log frame %q", first)
	}
	st, err := eng.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.Container.State.Running {
		t.Fatal("the first log line arrived only after the container exited: logs were buffered")
	}
	var rest bytes.Buffer
	if _, err := stdcopy.StdCopy(&rest, io.Discard, logs); err != nil {
		t.Fatal(err)
	}
	if rest.String() != "second\n" {
		t.Fatalf("rest of the followed logs %q", rest.String())
	}

	select {
	case res := <-wait.Result:
		if res.StatusCode != 3 {
			t.Fatalf("wait: exit code %d, want 3", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatalf("wait: %v", err)
	case <-ctx.Done():
		t.Fatal("wait did not return")
	}
	if _, err := cli.ContainerStop(ctx, created.ID, client.ContainerStopOptions{}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := eng.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Fatalf("container still exists after remove through the proxy: %v", err)
	}
	// Kill (maintenance profile) on a running labelled container.
	sleeper, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: image, Cmd: []string{"sleep", "30"}},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanupContainer(t, eng, sleeper.ID)
	if _, err := cli.ContainerStart(ctx, sleeper.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerKill(ctx, sleeper.ID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatalf("kill through the maintenance profile: %v", err)
	}
	killed := cli.ContainerWait(ctx, sleeper.ID, client.ContainerWaitOptions{})
	select {
	case res := <-killed.Result:
		if res.StatusCode != 137 {
			t.Fatalf("killed container exit code %d; want 137", res.StatusCode)
		}
	case err := <-killed.Error:
		t.Fatal(err)
	}
	if _, err := cli.ContainerRemove(ctx, sleeper.ID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatalf("remove: %v", err)
	}

	// The state-changing calls were audited as allowed.
	ops := map[string]bool{}
	for _, r := range pt.audit.records("sockproxy.allow") {
		ops[r["op"].(string)] = true
	}
	for _, op := range []string{"create", "start", "wait", "stop", "kill", "remove"} {
		if !ops[op] {
			t.Errorf("no allow audit record for %s (have %v)", op, ops)
		}
	}
	if s := pt.proxy.Stats(); s.Denied != 0 || s.Allowed < 8 {
		t.Errorf("stats %+v", s)
	}
}

// TestEngineListShowsOnlyLabelled proves the list filter: an unlabelled
// container made directly on the engine is invisible through the proxy.
func TestEngineListShowsOnlyLabelled(t *testing.T) {
	host := testenv.DockerHost(t)
	image := testenv.BusyboxImage(t)
	eng := newClient(t, host)
	pt := startProxy(t, sockproxy.Config{Upstream: host})
	cli := pt.client(t)
	ctx := context.Background()

	run := randHex(4)
	unlabelled := engineCreate(t, eng, image, "sp-list-plain-"+run, map[string]string{"talos.test.run": run}, "true")
	labelled := engineCreate(t, eng, image, "sp-list-managed-"+run,
		map[string]string{"talos.test.run": run, sockproxy.LabelManaged: sockproxy.LabelManagedValue}, "true")

	direct, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "talos.test.run="+run)})
	if err != nil || len(direct.Items) != 2 {
		t.Fatalf("direct list: %d items, %v; want both containers", len(direct.Items), err)
	}
	for _, opts := range []client.ContainerListOptions{
		{All: true},
		{All: true, Filters: make(client.Filters).Add("label", "talos.test.run="+run)},
		{All: true, Filters: make(client.Filters).Add("id", unlabelled)},
	} {
		res, err := cli.ContainerList(ctx, opts)
		if err != nil {
			t.Fatalf("list through the proxy: %v", err)
		}
		sawLabelled := false
		for _, c := range res.Items {
			if c.Labels[sockproxy.LabelManaged] != sockproxy.LabelManagedValue {
				t.Errorf("list through the proxy shows unlabelled container %s %v", c.ID, c.Names)
			}
			if c.ID == unlabelled {
				t.Errorf("the unlabelled container is listed")
			}
			sawLabelled = sawLabelled || c.ID == labelled
		}
		if _, idOnly := opts.Filters["id"]; !sawLabelled && !idOnly {
			t.Errorf("the labelled container is missing from the list (filters %v)", opts.Filters)
		}
	}
}

// TestEngineAttachHijacked streams an attached (hijacked, upgraded)
// connection through a profile that allows attach.
func TestEngineAttachHijacked(t *testing.T) {
	host := testenv.DockerHost(t)
	image := testenv.BusyboxImage(t)
	eng := newClient(t, host)
	p := sockproxy.SkillsProfile()
	p.Name = "attach-test"
	p.Ops = append(p.Ops, sockproxy.OpAttach)
	pt := startProxy(t, sockproxy.Config{Upstream: host, Profile: p})
	cli := pt.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Cmd: []string{"sh", "-c", "read line; echo got:$line"},
			OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true},
		HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanupContainer(t, eng, created.ID)
	att, err := cli.ContainerAttach(ctx, created.ID, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatalf("attach through the proxy: %v", err)
	}
	defer att.Close()
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := att.Conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { _, err := stdcopy.StdCopy(&out, io.Discard, att.Reader); done <- err }()
	select {
	case err := <-done:
		if err != nil && !strings.Contains(err.Error(), "closed") {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("attach stream did not end")
	}
	if out.String() != "got:hello\n" {
		t.Fatalf("attach output %q", out.String())
	}
}

// rawRequest writes a raw HTTP/1.1 request to the proxy and returns the
// status line's code and the body.
func rawRequest(t *testing.T, sock, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write concurrently: the proxy may answer (and close) before it has
	// read an oversized body.
	go func() { _, _ = io.WriteString(c, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
