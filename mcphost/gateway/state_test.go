package gateway_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

func stateVerifier(t testing.TB, path string, root *gateway.Identity) *gateway.Verifier {
	t.Helper()
	st, err := gateway.NewFileState(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}}, st)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A revocation and a used nonce outlive the Verifier that saw them: a new
// one on the same file (a restart) refuses the revoked token and the
// replayed request.
func TestFileStateSurvivesARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state", "auth.json")
		root, agent := ident(t, "root"), ident(t, "agent")
		v := stateVerifier(t, path, root)
		keep, gone := issue(t, root, agent, time.Hour, "mcp/*"), issue(t, root, agent, time.Hour, "mcp/*")
		req, _ := gateway.NewRequest(agent, keep, "mcp/fs/read")
		if _, err := v.Authorize(req); err != nil {
			t.Fatal(err)
		}
		pt, _ := gateway.Parse(gone)
		if err := v.Revoke(pt); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("state file: %v %v", st, err)
		}

		v2 := stateVerifier(t, path, root) // the restart
		if _, err := v2.Authorize(req); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "already used") {
			t.Errorf("a request replayed after a restart: %v", err)
		}
		if _, err := v2.Verify(gone); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("a token revoked before the restart: %v", err)
		}
		fresh, _ := gateway.NewRequest(agent, keep, "mcp/fs/read")
		if _, err := v2.Authorize(fresh); err != nil {
			t.Errorf("a fresh request after the restart: %v", err)
		}

		// Entries are dropped once they can no longer matter.
		time.Sleep(2 * time.Hour)
		other := issue(t, root, agent, time.Hour, "mcp/*")
		r3, _ := gateway.NewRequest(agent, other, "mcp/fs/read")
		if _, err := v2.Authorize(r3); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(req.Nonce)) || bytes.Contains(b, []byte(pt.ID)) {
			t.Errorf("expired entries were kept: %s", b)
		}
	})
}

// Two processes share one file: a revocation stored by one (the operator's
// command) is seen by the other (the serving daemon) at its next request,
// and a nonce used at one is refused at the other.
func TestFileStateSharedBetweenVerifiers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	root, agent := ident(t, "root"), ident(t, "agent")
	serving, operator := stateVerifier(t, path, root), stateVerifier(t, path, root)
	tok := issue(t, root, agent, time.Hour, "mcp/*")
	req, _ := gateway.NewRequest(agent, tok, "mcp/x")
	if _, err := serving.Authorize(req); err != nil {
		t.Fatal(err)
	}
	if _, err := operator.Authorize(req); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("a nonce used by the other process: %v", err)
	}
	pt, _ := gateway.Parse(tok)
	if err := operator.Revoke(pt); err != nil {
		t.Fatal(err)
	}
	next, _ := gateway.NewRequest(agent, tok, "mcp/x")
	if _, err := serving.Authorize(next); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revocation by the other process: %v", err)
	}

	// Concurrent nonces from both never lose one another's entries.
	var wg sync.WaitGroup
	reqs := make([]gateway.Request, 20)
	tok2 := issue(t, root, agent, time.Hour, "mcp/*")
	for i := range reqs {
		reqs[i], _ = gateway.NewRequest(agent, tok2, "mcp/x")
		wg.Go(func() {
			v := serving
			if i%2 == 1 {
				v = operator
			}
			if _, err := v.Authorize(reqs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	third := stateVerifier(t, path, root)
	for _, r := range reqs {
		if _, err := third.Authorize(r); err == nil {
			t.Fatal("a nonce written concurrently was lost")
		}
	}
}

// The store failing refuses the request (fail closed), and a damaged file
// is reported when the store opens.
func TestFileStateFailsClosed(t *testing.T) {
	dir := t.TempDir()
	root, agent := ident(t, "root"), ident(t, "agent")
	path := filepath.Join(dir, "sub", "auth.json")
	v := stateVerifier(t, path, root)
	if err := os.WriteFile(filepath.Join(dir, "sub"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	req, _ := gateway.NewRequest(agent, issue(t, root, agent, time.Hour, "mcp/*"), "mcp/x")
	if _, err := v.Authorize(req); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "fail closed") {
		t.Errorf("a broken store: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{not json"), 0o600)
	if _, err := gateway.NewFileState(bad); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged file: %v", err)
	}
}

// Decisions teed to a file read back for export, a torn last line skipped.
func TestDecisionsTeeAndRead(t *testing.T) {
	root, agent := ident(t, "root"), ident(t, "agent")
	log := gateway.NewDecisionLog(0)
	var buf bytes.Buffer
	log.Tee(&buf)
	v, _ := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}, Decisions: log}, nil)
	tok := issue(t, root, agent, time.Hour, "mcp/fs/read")
	for _, a := range []string{"mcp/fs/read", "mcp/fs/write"} {
		r, _ := gateway.NewRequest(agent, tok, a)
		v.Authorize(r)
	}
	back, err := gateway.ReadDecisions(bytes.NewReader(append(buf.Bytes(), `{"time":"20`...)), 0)
	if err != nil || log.Err() != nil {
		t.Fatal(err, log.Err())
	}
	ds := back.Decisions()
	if len(ds) != 2 || !ds[0].Allowed || ds[1].Allowed || ds[1].Action != "mcp/fs/write" || ds[1].Code != talos.CodeUnauthorized {
		t.Fatalf("%+v", ds)
	}
	if _, err := gateway.ReadDecisions(strings.NewReader("garbage\n{}\n"), 0); err == nil || !strings.Contains(err.Error(), "line(s) 1") {
		t.Errorf("a bad line: %v", err)
	}

	// A crash cuts a line short and writing goes on after a restart: the
	// reopened file ends the torn line first, and reading skips it.
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	whole := buf.Bytes()
	if err := os.WriteFile(path, append(slices.Clone(whole), `{"time":"20`...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := gateway.OpenDecisionFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(whole); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(path)
	back, err = gateway.ReadDecisions(bytes.NewReader(data), 0)
	if err != nil || len(back.Decisions()) != 4 {
		t.Fatalf("after a torn line and a restart: %v, %d decisions, want 4", err, len(back.Decisions()))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

// A decision file past its maximum starts a new one and keeps the previous
// as path.1 (replacing an older one); the export reads both, oldest first,
// so what is on disk stays bounded and no line is split between files.
func TestDecisionFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	f, err := gateway.OpenDecisionFile(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	log := gateway.NewDecisionLog(0)
	log.Tee(f)
	for i := range 40 { // about 130 bytes each: four generations of files
		log.Record(gateway.Decision{Time: time.Unix(int64(i), 0).UTC(), Action: fmt.Sprintf("mcp/tools/t%02d", i), Allowed: true})
	}
	if err := errors.Join(log.Err(), f.Close()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil || st.Size() > 1000 || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", p, st, err)
		}
	}
	if _, err := os.Stat(path + ".2"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a third file: %v", err)
	}
	back, err := gateway.ReadDecisionFiles(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ds := back.Decisions()
	if len(ds) < 10 || len(ds) >= 40 || ds[len(ds)-1].Action != "mcp/tools/t39" {
		t.Fatalf("%d decisions read back, the last %+v; want the newest ones up to t39", len(ds), ds[len(ds)-1])
	}
	for i := 1; i < len(ds); i++ {
		if !ds[i].Time.After(ds[i-1].Time) {
			t.Fatalf("decisions out of order at %d: %v after %v", i, ds[i].Time, ds[i-1].Time)
		}
	}
	// Two writers on one file (two processes' DecisionFiles): when one
	// rotates, the other follows it to the new file instead of writing into
	// .1 or renaming the new file over it.
	a, err := gateway.OpenDecisionFile(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gateway.OpenDecisionFile(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	line := func(w io.Writer, i int) {
		t.Helper()
		rec, _ := json.Marshal(gateway.Decision{Time: time.Unix(int64(100+i), 0).UTC(), Action: fmt.Sprintf("mcp/tools/u%02d", i), Allowed: true})
		if _, err := w.Write(append(rec, '\n')); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		line([]io.Writer{a, b}[i%2], i)
	}
	back, err = gateway.ReadDecisionFiles(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ds = back.Decisions()
	if len(ds) == 0 || ds[len(ds)-1].Action != "mcp/tools/u29" {
		t.Fatalf("after two writers, the newest decision read back is not the last written: %+v", ds)
	}
	for i := 1; i < len(ds); i++ {
		if !ds[i].Time.After(ds[i-1].Time) {
			t.Fatalf("two writers: decisions out of order at %d (%s after %s): one wrote into the previous file", i, ds[i].Action, ds[i-1].Action)
		}
	}
	for _, p := range []string{path, path + ".1"} {
		if st, err := os.Stat(p); err != nil || st.Size() > 2000 {
			t.Errorf("two writers: %s is %v (%v), want under twice the maximum", p, st, err)
		}
	}
	// A quiet writer: the other rotates twice while it writes nothing; its
	// next decision goes to the file at the path, not to the file it had
	// open, which has no name any more.
	for i := 30; i < 60; i++ {
		line(a, i)
	}
	line(b, 60)
	back, err = gateway.ReadDecisionFiles(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ds = back.Decisions(); len(ds) == 0 || ds[len(ds)-1].Action != "mcp/tools/u60" {
		t.Fatalf("the quiet writer's decision after two rotations elsewhere is lost: newest read back %+v", ds[len(ds)-1])
	}
	if l, err := gateway.ReadDecisionFiles(filepath.Join(t.TempDir(), "none.jsonl"), 0); err != nil || len(l.Decisions()) != 0 {
		t.Errorf("no files: %v, %v", l, err)
	}
}
