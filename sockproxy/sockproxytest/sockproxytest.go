package sockproxytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/sockproxy"
)

// Request is one request an Engine received.
type Request struct {
	Method string
	URI    string // path and query, as received
	Body   []byte
}

// Container is a container an Engine knows.
type Container struct {
	ID      string
	Name    string
	Labels  map[string]string
	Running bool
}

// Engine is a fake Docker engine (API 1.41). It keeps containers in memory;
// a created container's ID is derived from its name, so output is the same
// on every run. It is safe for concurrent use.
type Engine struct {
	mu         sync.Mutex
	containers map[string]*Container // by ID
	requests   []Request
}

// NewEngine returns an Engine without containers.
func NewEngine() *Engine { return &Engine{containers: map[string]*Container{}} }

// Add creates a container named name with labels, as if it had been created
// outside the proxy, and returns its ID. Pass sockproxy.LabelManaged to make
// it one the proxy lets callers act on.
func (e *Engine) Add(name string, labels map[string]string) string {
	sum := sha256.Sum256([]byte(name))
	id := hex.EncodeToString(sum[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	e.containers[id] = &Container{ID: id, Name: name, Labels: labels}
	return id
}

// Containers returns the containers, sorted by name.
func (e *Engine) Containers() []Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Container, 0, len(e.containers))
	for _, c := range e.containers {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Requests returns the requests received so far, oldest first.
func (e *Engine) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.requests...)
}

var (
	reVersion   = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)
	reContainer = regexp.MustCompile(`^/containers/([^/]+)(?:/(json|start|stop|kill|wait|restart))?$`)
)

// lookup finds a container by ID, unique ID prefix or name (under e.mu).
func (e *Engine) lookup(ref string) *Container {
	if c, ok := e.containers[ref]; ok {
		return c
	}
	var found *Container
	for _, c := range e.containers {
		if c.Name == ref || c.Name == "/"+ref || len(ref) >= 12 && strings.HasPrefix(c.ID, ref) {
			if found != nil {
				return nil // ambiguous
			}
			found = c
		}
	}
	return found
}

// ServeHTTP answers one Docker API request.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil { // a client request (through Transport) may have none
		body, _ = io.ReadAll(r.Body)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.requests = append(e.requests, Request{Method: r.Method, URI: r.URL.RequestURI(), Body: body})
	w.Header().Set("Api-Version", "1.41")
	w.Header().Set("Content-Type", "application/json")
	path := reVersion.ReplaceAllString(r.URL.Path, "")
	notFound := func(what string) {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "No such container: " + what})
	}
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "OK")
	case path == "/version":
		_ = json.NewEncoder(w).Encode(map[string]string{"Version": "20.10.0-sockproxytest", "ApiVersion": "1.41"})
	case path == "/containers/create" && r.Method == http.MethodPost:
		var req struct{ Labels map[string]string }
		if err := json.Unmarshal(body, &req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "invalid JSON: " + err.Error()})
			return
		}
		name := r.URL.Query().Get("name")
		sum := sha256.Sum256([]byte(name))
		id := hex.EncodeToString(sum[:])
		e.containers[id] = &Container{ID: id, Name: name, Labels: req.Labels}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"Id": id, "Warnings": []string{}})
	case path == "/containers/json" && r.Method == http.MethodGet:
		want := labelFilter(r.URL.Query().Get("filters"))
		list := []map[string]any{}
		for _, c := range e.containers {
			if want != "" {
				k, v, _ := strings.Cut(want, "=")
				if c.Labels[k] != v {
					continue
				}
			}
			state := "exited"
			if c.Running {
				state = "running"
			}
			list = append(list, map[string]any{"Id": c.ID, "Names": []string{"/" + c.Name}, "Labels": c.Labels, "State": state})
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["Id"].(string) < list[j]["Id"].(string) })
		_ = json.NewEncoder(w).Encode(list)
	case reContainer.MatchString(path):
		m := reContainer.FindStringSubmatch(path)
		c := e.lookup(m[1])
		if c == nil {
			notFound(m[1])
			return
		}
		switch {
		case m[2] == "json" && r.Method == http.MethodGet:
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": c.ID, "Name": "/" + c.Name,
				"Config": map[string]any{"Labels": c.Labels}, "State": map[string]any{"Running": c.Running}})
		case m[2] == "" && r.Method == http.MethodDelete:
			delete(e.containers, c.ID)
			w.WriteHeader(http.StatusNoContent)
		case m[2] == "start" || m[2] == "restart":
			c.Running = true
			w.WriteHeader(http.StatusNoContent)
		case m[2] == "stop" || m[2] == "kill":
			c.Running = false
			w.WriteHeader(http.StatusNoContent)
		case m[2] == "wait":
			c.Running = false
			_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": 0})
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": "page not found"})
	}
}

// labelFilter returns the "key=value" of a list request's label filter, or
// "" when there is none.
func labelFilter(filters string) string {
	if filters == "" {
		return ""
	}
	var f map[string]map[string]bool
	if err := json.Unmarshal([]byte(filters), &f); err != nil {
		return ""
	}
	for l := range f["label"] {
		return l
	}
	return ""
}

// Transport returns an http.RoundTripper that hands each request to h in
// process (set it as sockproxy.Config.Transport to put an Engine behind a
// proxy without a socket).
func Transport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// Server is a proxy served on a unix socket for the rest of a test.
type Server struct {
	// Socket is the path of the unix socket the proxy listens on.
	Socket string

	mu      sync.Mutex
	done    int
	changed chan struct{}
}

// Serve serves p with sockproxy.NewServer and sockproxy.Serve on a fresh
// unix socket until the test ends. The socket lives in a short temporary
// directory (unix socket paths are limited to about 100 bytes).
func Serve(t testing.TB, p *sockproxy.Proxy) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "spt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &Server{Socket: filepath.Join(dir, "docker.sock"), changed: make(chan struct{})}
	ln, err := sockproxy.Listen("unix://"+s.Socket, sockproxy.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := sockproxy.NewServer(p)
	inner := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		inner(c, st)
		if st == http.StateClosed || st == http.StateHijacked {
			s.mu.Lock()
			s.done++
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- sockproxy.Serve(ctx, ln, srv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("sockproxy.Serve: %v", err)
		}
	})
	return s
}

// Client returns an http.Client that dials the proxy's socket (any host
// name in the URL will do, for example http://docker/_ping).
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", s.Socket)
	}}}
}

// ConnsDone returns how many connections the server has finished with
// (closed or hijacked); whatever a connection's end causes (an audit
// record) is written by then.
func (s *Server) ConnsDone() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// WaitConnsDone blocks until the server has finished with at least n
// connections, or fails the test after 10 s.
func (s *Server) WaitConnsDone(t testing.TB, n int) {
	t.Helper()
	guard := time.NewTimer(10 * time.Second)
	defer guard.Stop()
	for {
		s.mu.Lock()
		done, ch := s.done, s.changed
		s.mu.Unlock()
		if done >= n {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("waited 10 s for the proxy to finish %d connections (finished %d)", n, done)
		}
	}
}
