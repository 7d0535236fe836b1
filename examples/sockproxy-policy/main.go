// Command sockproxy-policy shows the Docker socket proxy at work: a client
// talks to the proxy's unix socket exactly as it would to Docker's, allowed
// calls reach the engine (a container create gets the talos.managed label
// added), and everything the profile does not allow is answered with 403 and
// a Docker-style {"message": ...} body, never reaching the engine. Every
// denial and every allowed state change is written to the audit log.
//
// The engine is a small fake (net/http/httptest) that records what it
// receives, so it needs no Docker:
//
//	go run ./examples/sockproxy-policy
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/talos-ironclad/talos/sockproxy"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sockproxy-policy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	engine := newFakeEngine()
	engine.add("postgres", nil) // the user's own container, not Talos's
	upstream := httptest.NewServer(engine)
	defer upstream.Close()

	// The proxy in front of the engine, with the skills profile (the spec's
	// allowlist: ping, version, list, inspect, create, start, stop, wait,
	// logs) and a tier-1 audit log.
	var audit syncBuffer
	p, err := sockproxy.New(sockproxy.Config{
		Upstream: "tcp://" + strings.TrimPrefix(upstream.URL, "http://"),
		Profile:  sockproxy.SkillsProfile(),
		Audit:    slog.New(slog.NewJSONHandler(&audit, nil)),
	})
	if err != nil {
		return err
	}
	defer p.Close()

	// Listen on a unix socket (mode 0660) as the daemon does, and serve.
	dir, err := os.MkdirTemp("", "sockproxy-policy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "docker.sock")
	ln, err := sockproxy.Listen("unix://"+sock, sockproxy.ListenOptions{})
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- sockproxy.Serve(ctx, ln, sockproxy.NewServer(p)) }()
	defer func() { stop(); <-served }()

	// A client of the proxy's socket, like DOCKER_HOST=unix://.../docker.sock.
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer client.CloseIdleConnections()

	call := func(title, method, path, body string) error {
		fmt.Fprintf(w, "# %s\n%s %s\n", title, method, path)
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
			fmt.Fprintf(w, "  body: %s\n", body)
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, rd)
		if err != nil {
			return err
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  -> %s\n", strings.TrimSpace(fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(data))))
		for _, e := range engine.takeLog() {
			fmt.Fprintf(w, "  engine saw: %s\n", e)
		}
		return nil
	}

	steps := []struct{ title, method, path, body string }{
		{"Docker clients start with a ping.", "GET", "/_ping", ""},
		{"A create the profile allows: read-only root, no network. The proxy adds the talos.managed label.",
			"POST", "/v1.41/containers/create?name=skill-demo",
			`{"Image":"busybox","Cmd":["echo","hi"],"Labels":{"app":"skill-demo"},"HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"}}`},
		{"A privileged create is denied; the engine never sees it.",
			"POST", "/v1.41/containers/create?name=escape",
			`{"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"Privileged":true}}`},
		{"So is a bind mount of the host's root.",
			"POST", "/v1.41/containers/create?name=escape",
			`{"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"Binds":["/:/host"]}}`},
		{"Starting a Talos container: the proxy checks its label, then forwards the full ID.",
			"POST", "/v1.41/containers/skill-demo/start", ""},
		{"Stopping a container Talos did not create is denied.",
			"POST", "/v1.41/containers/postgres/stop", ""},
		{"Endpoints outside the profile (exec, images, volumes, prune, ...) are denied.",
			"GET", "/v1.41/images/json", ""},
	}
	for _, s := range steps {
		if err := call(s.title, s.method, s.path, s.body); err != nil {
			return err
		}
	}

	st := p.Stats()
	fmt.Fprintf(w, "# Proxy stats: %d allowed, %d denied\n", st.Allowed, st.Denied)
	fmt.Fprintln(w, "# Audit log (tier 1), one JSON record per denial and per allowed change:")
	sc := bufio.NewScanner(bytes.NewReader(audit.Bytes()))
	for sc.Scan() {
		var rec struct {
			Level, Event, Method, Path, Op, Code string
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("audit record %q: %w", sc.Text(), err)
		}
		line := fmt.Sprintf("  %-5s %-15s %-4s %-36s", rec.Level, rec.Event, rec.Method, rec.Path)
		if rec.Op != "" {
			line += " op=" + rec.Op
		}
		if rec.Code != "" {
			line += " code=" + rec.Code
		}
		fmt.Fprintln(w, line)
	}
	return sc.Err()
}

// fakeEngine answers the few Docker API calls of the walkthrough and records
// each request it receives.
type fakeEngine struct {
	mu         sync.Mutex
	containers map[string]container // by name
	log        []string
}

type container struct {
	id     string
	labels map[string]string
}

func newFakeEngine() *fakeEngine { return &fakeEngine{containers: map[string]container{}} }

// add creates a container; its ID is derived from its name, so the
// walkthrough's output is the same on every run.
func (e *fakeEngine) add(name string, labels map[string]string) string {
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[name] = container{id: id, labels: labels}
	return id
}

// takeLog returns the requests received since the last call.
func (e *fakeEngine) takeLog() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.log
	e.log = nil
	return l
}

func (e *fakeEngine) record(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, fmt.Sprintf(format, args...))
}

// lookup finds a container by name or full ID.
func (e *fakeEngine) lookup(ref string) (container, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, c := range e.containers {
		if name == ref || c.id == ref {
			return c, true
		}
	}
	return container{}, false
}

var (
	reVersion = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)
	reInspect = regexp.MustCompile(`^/containers/([^/]+)/json$`)
	reAction  = regexp.MustCompile(`^/containers/([^/]+)/(start|stop)$`)
)

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := reVersion.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", "1.41")
	switch {
	case path == "/_ping":
		e.record("%s %s", r.Method, r.URL.Path)
		io.WriteString(w, "OK")
	case path == "/containers/create" && r.Method == http.MethodPost:
		var body struct {
			Labels map[string]string
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, `{"message":"bad body"}`, http.StatusBadRequest)
			return
		}
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(body.Labels)) {
			labels = append(labels, k+"="+body.Labels[k])
		}
		name := r.URL.Query().Get("name")
		id := e.add(name, body.Labels)
		e.record("%s %s with labels %s", r.Method, r.URL.RequestURI(), strings.Join(labels, ","))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"Id":%q,"Warnings":[]}`, id)
	case reInspect.MatchString(path) && r.Method == http.MethodGet:
		// The proxy's label check; not shown in the engine log.
		c, ok := e.lookup(reInspect.FindStringSubmatch(path)[1])
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such container"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"Id": c.id, "Config": map[string]any{"Labels": c.labels}})
	case reAction.MatchString(path) && r.Method == http.MethodPost:
		e.record("%s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNoContent)
	default:
		e.record("%s %s (unexpected)", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"page not found"}`)
	}
}

// syncBuffer is a bytes.Buffer safe for the proxy's concurrent audit writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written.
func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
