package tlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos"
)

func openT(t *testing.T, dir string, tier Tier, max int64) *Handler {
	t.Helper()
	h, err := Open(dir, tier, Options{MaxSize: max, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func writeAudit(t *testing.T, h *Handler, n, from int) {
	t.Helper()
	l := slog.New(h)
	for i := 0; i < n; i++ {
		Audit(context.Background(), l, "test_event", slog.Int("i", from+i), slog.String("pad", strings.Repeat("x", 40)))
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
}

func mustBreak(t *testing.T, dir string, kind Kind, file string, line int) Report {
	t.Helper()
	rep, err := Verify(dir)
	if err == nil || rep.Break == nil {
		t.Fatalf("Verify passed a tampered chain: %+v", rep)
	}
	if !errors.Is(err, talos.ErrBadSignature) {
		t.Errorf("want T402, got %v", err)
	}
	if rep.Break.Kind != kind || rep.Break.File != file || rep.Break.Line != line {
		t.Fatalf("got %s, want %s at %s:%d", rep.Break, kind, file, line)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d", file, line)) {
		t.Errorf("error does not name the line: %v", err)
	}
	return rep
}

func TestTier2LineShape(t *testing.T) {
	dir := t.TempDir()
	h := openT(t, dir, Tier2, 0)
	l := slog.New(h)
	ctx := WithCorrelationID(context.Background(), "0123456789abcdef")
	l.DebugContext(ctx, "hidden") // tier 2 is Info+
	l.With("component", "boot").WithGroup("g").InfoContext(ctx, "hello", "k", "v")
	ls := lines(t, filepath.Join(dir, "ops.log"))
	if len(ls) != 1 {
		t.Fatalf("lines: %q", ls)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(ls[0]), &m); err != nil {
		t.Fatal(err)
	}
	if m["correlation_id"] != "0123456789abcdef" || m["msg"] != "hello" || m["component"] != "boot" {
		t.Errorf("line: %s", ls[0])
	}
	if g, _ := m["g"].(map[string]any); g["k"] != "v" {
		t.Errorf("group lost: %s", ls[0])
	}
	if _, ok := m["seq"]; ok {
		t.Errorf("tier 2 must not be chained: %s", ls[0])
	}
	if ts, _ := m["time"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("time not UTC: %s", ts)
	}
	st, _ := os.Stat(filepath.Join(dir, "ops.log"))
	if st.Mode().Perm() != FileMode {
		t.Errorf("mode %o", st.Mode().Perm())
	}
}

func TestChainIntact(t *testing.T) {
	dir := t.TempDir()
	h := openT(t, dir, Tier1, 0)
	writeAudit(t, h, 5, 0)
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	seq, prev := h.Head()
	if rep.Last != 5 || rep.Lines != 5 || seq != 5 {
		t.Errorf("report %+v head %d", rep, seq)
	}
	ls := lines(t, filepath.Join(dir, "audit.log"))
	if !strings.HasPrefix(ls[0], `{"seq":1,"prev":"`+GenesisPrev+`",`) {
		t.Errorf("first line: %s", ls[0])
	}
	if prev != hashLine([]byte(ls[4])) {
		t.Error("Head hash differs from the last line's hash")
	}
	if !strings.Contains(ls[2], `"event":"test_event"`) {
		t.Errorf("event missing: %s", ls[2])
	}
}

func TestVerifyCatchesEdit(t *testing.T) {
	dir := t.TempDir()
	writeAudit(t, openT(t, dir, Tier1, 0), 6, 0)
	path := filepath.Join(dir, "audit.log")
	ls := lines(t, path)
	ls[2] = strings.Replace(ls[2], `"i":2`, `"i":9`, 1) // still valid JSON, same seq
	writeLines(t, path, ls)
	rep := mustBreak(t, dir, Broken, "audit.log", 3)
	if !strings.Contains(rep.Break.Detail, "edited") {
		t.Errorf("detail: %s", rep.Break.Detail)
	}
	// An edit that breaks the JSON is caught at the line itself.
	ls[2] = ls[2][:20]
	writeLines(t, path, ls)
	mustBreak(t, dir, Broken, "audit.log", 3)
}

func TestVerifyCatchesDelete(t *testing.T) {
	dir := t.TempDir()
	writeAudit(t, openT(t, dir, Tier1, 0), 6, 0)
	path := filepath.Join(dir, "audit.log")
	ls := lines(t, path)
	writeLines(t, path, append(append([]string{}, ls[:3]...), ls[4:]...)) // drop seq 4
	rep := mustBreak(t, dir, Missing, "audit.log", 4)
	if rep.Break.Seq != 4 || !strings.Contains(rep.Break.Detail, "seq 4-4 missing") {
		t.Errorf("%s", rep.Break)
	}
	// Deleting the first line is caught too.
	writeLines(t, path, ls[1:])
	mustBreak(t, dir, Missing, "audit.log", 1)
}

func TestVerifyCatchesReorder(t *testing.T) {
	dir := t.TempDir()
	writeAudit(t, openT(t, dir, Tier1, 0), 6, 0)
	path := filepath.Join(dir, "audit.log")
	ls := lines(t, path)
	ls[1], ls[2] = ls[2], ls[1]
	writeLines(t, path, ls)
	rep := mustBreak(t, dir, Reordered, "audit.log", 2)
	if !strings.Contains(rep.Break.Detail, "seq 2 comes later (audit.log:3)") {
		t.Errorf("%s", rep.Break)
	}
	// A duplicated line is reordered (replayed) too.
	ls = lines(t, path)
	ls[1], ls[2] = ls[2], ls[1]
	writeLines(t, path, append(ls, ls[5]))
	mustBreak(t, dir, Reordered, "audit.log", 7)
}

func TestRotationPreservesChain(t *testing.T) {
	dir := t.TempDir()
	h := openT(t, dir, Tier1, 1024)
	writeAudit(t, h, 60, 0)
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) < 4 || rep.Files[0] != "audit.000001.log" || rep.Files[len(rep.Files)-1] != "audit.log" || rep.Last != 60 {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range rep.Files {
		st, _ := os.Stat(filepath.Join(dir, f))
		if st.Size() > 1024 {
			t.Errorf("%s is %d bytes, over the rotation size", f, st.Size())
		}
	}
	// The first line of a rotated-into file points at the previous file's last line.
	prevFile := lines(t, filepath.Join(dir, rep.Files[0]))
	next := lines(t, filepath.Join(dir, rep.Files[1]))
	if !strings.Contains(next[0], hashLine([]byte(prevFile[len(prevFile)-1]))) {
		t.Error("chain not carried across rotation")
	}

	// A rotated file compressed later (dream's log compression) still verifies.
	gzipFile(t, filepath.Join(dir, rep.Files[1]))
	if _, err := Verify(dir); err != nil {
		t.Fatalf("after gzip: %v", err)
	}

	// Deleting a whole rotated file in the middle is caught.
	if err := os.Remove(filepath.Join(dir, rep.Files[2])); err != nil {
		t.Fatal(err)
	}
	mustBreak(t, dir, Missing, rep.Files[3], 1)
}

func TestDeletingOldestFileIsCaught(t *testing.T) {
	dir := t.TempDir()
	writeAudit(t, openT(t, dir, Tier1, 1024), 30, 0)
	os.Remove(filepath.Join(dir, "audit.000001.log"))
	mustBreak(t, dir, Missing, "audit.000002.log", 1)
}

func gzipFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(path+".gz", buf.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
}

func TestChainContinuesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(dir, Tier1, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	writeAudit(t, h, 3, 0)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := slog.New(h).Handler().Handle(context.Background(), slog.Record{}); err == nil {
		t.Error("closed handler accepted a record")
	}
	h2 := openT(t, dir, Tier1, 0)
	if seq, _ := h2.Head(); seq != 3 {
		t.Fatalf("resumed at %d", seq)
	}
	writeAudit(t, h2, 3, 3)
	rep, err := Verify(dir)
	if err != nil || rep.Last != 6 {
		t.Fatalf("%+v %v", rep, err)
	}
	h2.Close()

	// Current file empty (say it was rotated away by hand): resume from the newest rotated file.
	if err := os.Rename(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.000001.log")); err != nil {
		t.Fatal(err)
	}
	h3 := openT(t, dir, Tier1, 0)
	writeAudit(t, h3, 2, 6)
	rep, err = Verify(dir)
	if err != nil || rep.Last != 8 || len(rep.Files) != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestCrashFragmentIsReported(t *testing.T) {
	dir := t.TempDir()
	h, _ := Open(dir, Tier1, Options{NoSync: true})
	writeAudit(t, h, 3, 0)
	h.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "audit.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":4,"prev":"ab`) // crash mid-write
	f.Close()
	h2 := openT(t, dir, Tier1, 0)
	writeAudit(t, h2, 1, 3)
	mustBreak(t, dir, Broken, "audit.log", 4)
	ls := lines(t, filepath.Join(dir, "audit.log"))
	if len(ls) != 5 {
		t.Fatalf("fragment must be terminated, not merged: %q", ls)
	}
}

func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, Tier1, 0)
	_, err := Open(dir, Tier1, Options{})
	if err == nil || !strings.Contains(err.Error(), "already open") {
		t.Fatalf("second writer: %v", err)
	}
	// Lock contention is IN_USE, not a permission problem.
	if !errors.Is(err, talos.ErrInUse) || errors.Is(err, talos.ErrDirPermissions) {
		t.Fatalf("second writer: code of %v", err)
	}
	if _, err := Open(dir, Tier(4), Options{}); err == nil {
		t.Fatal("tier 4 accepted")
	}
}

func TestConcurrentWritersKeepChain(t *testing.T) {
	dir := t.TempDir()
	h := openT(t, dir, Tier1, 4096)
	l := slog.New(h)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := WithCorrelationID(context.Background(), NewCorrelationID())
			for i := 0; i < 100; i++ {
				Audit(ctx, l.With("g", g), "concurrent", slog.Int("i", i))
			}
		}()
	}
	wg.Wait()
	rep, err := Verify(dir)
	if err != nil || rep.Last != 800 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestCorrelationIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewCorrelationID()
		if !ValidCorrelationID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdeg", `0123456789abcd"}`} {
		if ValidCorrelationID(bad) {
			t.Errorf("%q accepted", bad)
		}
		ctx := WithCorrelationID(context.Background(), bad)
		if got := CorrelationID(ctx); got == bad || !ValidCorrelationID(got) {
			t.Errorf("invalid id %q kept as %q", bad, got)
		}
	}
	ctx, id := EnsureCorrelationID(context.Background())
	if ctx2, id2 := EnsureCorrelationID(ctx); id2 != id || ctx2 != ctx {
		t.Error("EnsureCorrelationID replaced an existing id")
	}
	if CorrelationID(context.Background()) != "" {
		t.Error("empty context has an id")
	}

	// The wrapper adds it to any handler.
	var buf bytes.Buffer
	l := slog.New(WithCorrelation(slog.NewJSONHandler(&buf, nil)))
	l.InfoContext(ctx, "x")
	l.Info("no context id")
	out := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(out[0], `"correlation_id":"`+id+`"`) || strings.Contains(out[1], "correlation_id") {
		t.Errorf("%q", out)
	}

	// Every line of one request carries the same id, in each tier.
	dir := t.TempDir()
	h := openT(t, dir, Tier1, 0)
	Audit(ctx, slog.New(h), "a")
	Audit(ctx, slog.New(h).With("k", 1), "b")
	for _, ln := range lines(t, filepath.Join(dir, "audit.log")) {
		if !strings.Contains(ln, `"correlation_id":"`+id+`"`) {
			t.Errorf("line without id: %s", ln)
		}
	}
	if _, err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestSetRoutesByTier(t *testing.T) {
	root := t.TempDir()
	d := DirsUnder(root)
	if d.Tier2 != filepath.Join(root, "tier2") {
		t.Fatalf("DirsUnder: %+v", d)
	}
	s, err := OpenSet(d, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	l := s.Logger()
	l.Debug("debug only")
	l.Info("ops and debug")
	Audit(context.Background(), s.Audit, "security_thing")
	Audit(context.Background(), nil, "ignored") // no-op
	if s.Handler(Tier2).Dir() != d.Tier2 {
		t.Error("Handler(Tier2)")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	count := func(p string) int { return len(lines(t, p)) }
	if n := count(filepath.Join(d.Tier2, "ops.log")); n != 1 {
		t.Errorf("tier 2 has %d lines", n)
	}
	if n := count(filepath.Join(d.Tier3, "debug.log")); n != 2 {
		t.Errorf("tier 3 has %d lines", n)
	}
	if rep, err := Verify(d.Tier1); err != nil || rep.Last != 1 {
		t.Errorf("tier 1: %+v %v", rep, err)
	}
}

func TestVerifyEmptyAndMissing(t *testing.T) {
	if rep, err := Verify(t.TempDir()); err != nil || rep.Lines != 0 {
		t.Errorf("empty dir: %+v %v", rep, err)
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("missing dir passed")
	}
}

func TestVerifyCatchesCutTail(t *testing.T) {
	dir := t.TempDir()
	h, err := Open(dir, Tier1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeAudit(t, h, 5, 0)
	h.Close()
	path := filepath.Join(dir, "audit.log")
	ls := lines(t, path)

	// Last line deleted.
	writeLines(t, path, ls[:4])
	rep := mustBreak(t, dir, Missing, "audit.log", 4)
	if !strings.Contains(rep.Break.Detail, "seq 5-5 were cut off the end") {
		t.Errorf("%s", rep.Break)
	}
	// A restart after the cut keeps the gap visible.
	h2 := openT(t, dir, Tier1, 0)
	if seq, _ := h2.Head(); seq != 5 {
		t.Fatalf("resumed at %d, want the anchor's 5", seq)
	}
	writeAudit(t, h2, 1, 5)
	h2.Close()
	mustBreak(t, dir, Missing, "audit.log", 5)

	// Last line edited.
	writeLines(t, path, append(ls[:4:4], strings.Replace(ls[4], `"i":4`, `"i":8`, 1)))
	os.WriteFile(filepath.Join(dir, HeadFileName), encodeAnchor(5, hashLine([]byte(ls[4]))), 0o640)
	mustBreak(t, dir, Broken, "audit.log", 5)

	// Everything deleted.
	writeLines(t, path, nil)
	os.WriteFile(path, nil, 0o640)
	mustBreak(t, dir, Missing, "audit.log", 1)

	// A damaged anchor is reported.
	writeLines(t, path, ls)
	os.WriteFile(filepath.Join(dir, HeadFileName), []byte("junk"), 0o640)
	mustBreak(t, dir, Broken, HeadFileName, 1)
	// And the intact original passes, without warnings.
	os.WriteFile(filepath.Join(dir, HeadFileName), encodeAnchor(5, hashLine([]byte(ls[4]))), 0o640)
	if rep, err := Verify(dir); err != nil || len(rep.Warnings) != 0 {
		t.Fatal(rep.Warnings, err)
	}

	// The last line deleted together with the anchor: the chain is intact
	// as far as it goes, so no error, but a warning says the tail cannot be
	// checked.
	writeLines(t, path, ls[:4])
	if err := os.Remove(filepath.Join(dir, HeadFileName)); err != nil {
		t.Fatal(err)
	}
	rep, err = Verify(dir)
	if err != nil || rep.Break != nil {
		t.Fatalf("no anchor: %v %v", rep.Break, err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "4 tier-1 line(s) but no anchor file "+HeadFileName) {
		t.Fatalf("warnings %q", rep.Warnings)
	}
	// No lines and no anchor (a fresh directory): nothing to warn about.
	os.WriteFile(path, nil, 0o640)
	if rep, err := Verify(dir); err != nil || len(rep.Warnings) != 0 {
		t.Fatalf("empty log: %q %v", rep.Warnings, err)
	}
}

// TestTiersRedactURLCredentials pins that no tier writes the credentials of
// a URL, whether in the message, a string attribute or an error.
func TestTiersRedactURLCredentials(t *testing.T) {
	for _, tier := range []Tier{Tier1, Tier2, Tier3} {
		dir := t.TempDir()
		h := openT(t, dir, tier, 0)
		l := slog.New(h)
		l.Warn("redis at redis://u:s3cretA@h:1/0 failed", "url", "http://h/?token=s3cretB",
			"err", fmt.Errorf(`Get "http://h/x#access_token=s3cretC": EOF`))
		data, err := os.ReadFile(filepath.Join(dir, tier.Prefix()+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "s3cret") || !strings.Contains(string(data), "<redacted>") {
			t.Errorf("tier %d: %s", tier, data)
		}
	}
}

// TestTailCheckedAtOpen pins that opening a tier-1 directory checks its
// newest lines and anchor before writing, so tampering since the last run
// is reported at boot (an edit, a deletion, a cut tail), and that an
// intact chain — across a rotation too — passes.
func TestTailCheckedAtOpen(t *testing.T) {
	tamper := map[string]func(ls []string) []string{
		"edit":   func(ls []string) []string { ls[2] = strings.Replace(ls[2], `"i":2`, `"i":9`, 1); return ls },
		"delete": func(ls []string) []string { return append(append([]string{}, ls[:3]...), ls[4:]...) },
		"cut":    func(ls []string) []string { return ls[:len(ls)-2] },
		"garble": func(ls []string) []string { ls[4] = "not json"; return ls },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			h, err := Open(dir, Tier1, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			writeAudit(t, h, 6, 0)
			h.Close()
			path := filepath.Join(dir, "audit.log")
			writeLines(t, path, f(lines(t, path)))
			h2 := openT(t, dir, Tier1, 0)
			rep, err := h2.TailAtOpen()
			if !errors.Is(err, talos.ErrBadSignature) || rep.Break == nil {
				t.Fatalf("tampered tail not reported at open: %+v, %v", rep, err)
			}
		})
	}
	dir := t.TempDir()
	h, err := Open(dir, Tier1, Options{NoSync: true, MaxSize: 600})
	if err != nil {
		t.Fatal(err)
	}
	writeAudit(t, h, 12, 0) // rotates
	h.Close()
	h2 := openT(t, dir, Tier1, 600)
	if rep, err := h2.TailAtOpen(); err != nil || rep.Last != 12 || len(rep.Files) != 2 {
		t.Fatalf("intact rotated chain: %+v, %v", rep, err)
	}
	if _, err := openT(t, t.TempDir(), Tier2, 0).TailAtOpen(); err != nil {
		t.Fatal(err)
	}
}
