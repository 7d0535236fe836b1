package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/hashembed"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

// runMemory runs `talos memory ARGS --db DIR/talos.db --archive FILE`.
func runMemory(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return runMemoryArgs(t, append(args, "--db", filepath.Join(dir, "talos.db"), "--archive", filepath.Join(dir, "pruned.jsonl"))...)
}

// runMemoryArgs runs `talos memory ARGS`.
func runMemoryArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"memory"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestMemoryCLI(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	id, err := runMemory(t, dir, "add", "--trusted", "--priority", "high", "The user prefers dark mode in every editor")
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(id)
	if len(id) != 16 {
		t.Fatalf("add printed %q, want a 16-hex id", id)
	}
	if _, err := runMemory(t, dir, "add", "--id", "web1", "--source", "web", "Dark mode tips from a blog"); err != nil {
		t.Fatal(err)
	}
	if _, err := runMemory(t, dir, "add", "--priority", "urgent", "x"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "urgent") {
		t.Fatalf("bad priority = %v (exit %d)", err, exitCode(err))
	}

	out, err := runMemory(t, dir, "search", "--threshold", "-1", "--json", "dark mode editor")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Strategy string `json:"strategy"`
		Results  []struct {
			ID      string `json:"id"`
			Trusted bool   `json:"trusted"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("search --json: %v\n%s", err, out)
	}
	if res.Strategy != "VECTOR_SEARCH" || len(res.Results) != 2 || res.Results[0].ID != id || !res.Results[0].Trusted {
		t.Fatalf("search = %+v", res)
	}
	out, err = runMemory(t, dir, "search", "--threshold", "-1", "--render", "dark mode")
	if err != nil || !strings.Contains(out, `<untrusted-memory id="web1" source="web">`) || !strings.Contains(out, "## Memory (trusted)") {
		t.Fatalf("render = %v\n%s", err, out)
	}
	if _, err := runMemory(t, dir, "search", "--where", `{"priority":{"$regex":"x"}}`, "q"); err == nil || exitCode(err) != 2 {
		t.Fatalf("bad --where = %v", err)
	}

	out, err = runMemory(t, dir, "stats")
	if err != nil || !strings.Contains(out, "memories: 2 of 100000 (prune above 90000 down to 80000)") || !strings.Contains(out, "high") {
		t.Fatalf("stats = %v\n%s", err, out)
	}
}

func TestMemoryCLIPruneAndRestore(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		if _, err := runMemory(t, dir, "add", "--id", "m"+string(rune('0'+i)), "--priority", "temporary", "note", "number", string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Temporary memories are guaranteed one day: a prune at ceiling 10 finds nothing deletable.
	out, err := runMemory(t, dir, "prune", "--dry-run", "--ceiling", "10")
	if err != nil || !strings.Contains(out, "would delete 0 of 2 requested (10 protected)") || !strings.Contains(out, "PRUNE_INSUFFICIENT_DELETABLE") {
		t.Fatalf("prune dry-run = %v\n%s", err, out)
	}
	// An auto memory older than 7 days can go; it is the only deletable one.
	if _, err := runMemory(t, dir, "add", "--id", "old", "--priority", "auto", "--created", "2025-01-02T03:04:05Z", "stale note"); err != nil {
		t.Fatal(err)
	}
	if _, err := runMemory(t, dir, "add", "--created", "yesterday", "x"); err == nil || exitCode(err) != 2 {
		t.Fatalf("bad --created = %v", err)
	}
	out, err = runMemory(t, dir, "prune", "--ceiling", "100")
	if err != nil || !strings.Contains(out, "Count 11 below threshold 90") {
		t.Fatalf("prune below trigger = %v\n%s", err, out)
	}
	out, err = runMemory(t, dir, "prune", "--ceiling", "10")
	if err != nil || !strings.Contains(out, "Count 11 above threshold 9") || !strings.Contains(out, "deleted 1 of 3 requested (10 protected)") {
		t.Fatalf("prune = %v\n%s", err, out)
	}
	out, _ = runMemory(t, dir, "stats")
	if !strings.Contains(out, "memories: 10 of") {
		t.Fatalf("after prune:\n%s", out)
	}
	archived, err := os.ReadFile(filepath.Join(dir, "pruned.jsonl"))
	if err != nil || !strings.Contains(string(archived), `"id":"old"`) || !strings.Contains(string(archived), `"document":"stale note"`) {
		t.Fatalf("archive = %v\n%s", err, archived)
	}
	out, err = runMemory(t, dir, "restore", "--id", "old")
	if err != nil || !strings.Contains(out, "restored 1 memories") {
		t.Fatalf("restore = %v\n%s", err, out)
	}
	out, err = runMemory(t, dir, "search", "--threshold", "-1", "--json", "stale note")
	if err != nil || !strings.Contains(out, `"id": "old"`) {
		t.Fatalf("restored memory not found: %v\n%s", err, out)
	}
	out, err = runMemory(t, dir, "restore")
	if err != nil || !strings.Contains(out, "restored 0 memories (1 already present") {
		t.Fatalf("second restore = %v\n%s", err, out)
	}
}

// Without --store-dir the store lives under --home.
func TestMemoryCLIHome(t *testing.T) {
	askEnv(t)
	home := t.TempDir()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"--home", home, "memory", "stats"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := "store:    " + filepath.Join(home, "data", "talos.db"); !strings.Contains(out.String(), want) {
		t.Fatalf("stats output lacks %q:\n%s", want, out.String())
	}
	if !strings.Contains(out.String(), filepath.Join(home, "data", "pruned-memories.jsonl")) {
		t.Fatalf("archive not under home:\n%s", out.String())
	}
}

// With TALOS_CHROMA_URL set, `talos memory` works on that Chroma server, as
// the daemon would, and the ceiling comes from CHROMADB_MAX_VECTORS unless
// --ceiling is given.
func TestMemoryCLIUsesConfiguredChroma(t *testing.T) {
	url := testenv.ChromaURL(t)
	home := askEnv(t, "TALOS_CHROMA_URL", url, "CHROMADB_MAX_VECTORS", "20000")
	coll := fmt.Sprintf("talos_cli_test_%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = chroma.DeleteCollection(context.Background(), url, coll) })

	if _, err := runMemoryArgs(t, "add", "--collection", coll, "--id", "d1", "Docker Restart Notes"); err != nil {
		t.Fatal(err)
	}
	out, err := runMemoryArgs(t, "stats", "--collection", coll, "--json")
	if err != nil {
		t.Fatalf("stats = %v\n%s", err, out)
	}
	var st struct {
		Count   int    `json:"count"`
		Ceiling int    `json:"ceiling"`
		Trigger int    `json:"prune_trigger"`
		Store   string `json:"store"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	if st.Count != 1 || st.Ceiling != 20000 || st.Trigger != 18000 || !strings.Contains(st.Store, "Chroma at") || !strings.Contains(st.Store, coll) {
		t.Fatalf("stats = %+v, want 1 memory on Chroma, ceiling 20000 from CHROMADB_MAX_VECTORS", st)
	}
	// The memory is on the server, and nothing was written to the embedded store.
	s, err := chroma.Open(context.Background(), chroma.Config{URL: url, Collection: coll, Dimension: 384})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.Get(context.Background(), []string{"d1"}); len(got) != 1 || got[0].Document != "Docker Restart Notes" {
		t.Fatalf("Chroma holds %v, want d1", got)
	}
	for _, embedded := range []string{"chromadb", "talos.db"} {
		if _, err := os.Stat(filepath.Join(home, "data", embedded)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the embedded store %s was created (%v) although TALOS_CHROMA_URL is set", embedded, err)
		}
	}
	// --ceiling wins over the configuration.
	out, err = runMemoryArgs(t, "stats", "--collection", coll, "--ceiling", "50")
	if err != nil || !strings.Contains(out, "memories: 1 of 50 (prune above 45 down to 40)") {
		t.Fatalf("stats --ceiling 50 = %v\n%s", err, out)
	}
	// --store-dir makes no sense on a server.
	if _, err := runMemoryArgs(t, "stats", "--collection", coll, "--store-dir", t.TempDir()); err == nil || exitCode(err) != 2 {
		t.Fatalf("--store-dir with TALOS_CHROMA_URL = %v, want exit 2", err)
	}
}

// CHROMADB_MAX_VECTORS sets the embedded store's ceiling too; a dimension
// above CHROMADB_MAX_DIMENSIONS and a bad TALOS_CHROMA_URL are refused
// (exit 2) before anything is opened.
func TestMemoryCLIConfigLimits(t *testing.T) {
	askEnv(t, "CHROMADB_MAX_VECTORS", "30000", "CHROMADB_MAX_DIMENSIONS", "384")
	dir := t.TempDir()
	out, err := runMemory(t, dir, "stats")
	if err != nil || !strings.Contains(out, "memories: 0 of 30000 (prune above 27000 down to 24000)") {
		t.Fatalf("stats = %v\n%s", err, out)
	}
	_, err = runMemory(t, dir, "stats", "--dimension", "512")
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "CHROMADB_MAX_DIMENSIONS 384") {
		t.Fatalf("--dimension 512 over the maximum = %v (exit %d)", err, exitCode(err))
	}
	askEnv(t, "TALOS_CHROMA_URL", "ftp://nowhere")
	if out, err := runMemory(t, dir, "stats"); err == nil || exitCode(err) != 2 || !strings.Contains(out, "TALOS_CHROMA_URL") {
		t.Fatalf("bad TALOS_CHROMA_URL = %v (exit %d)\n%s", err, exitCode(err), out)
	}
}

// TestMemoryCLINothingToRestoreAndEmptyText pins the messages of two
// ordinary situations that used to report CONFIG_INVALID: a restore
// before any prune (nothing to do, exit 0) and an empty memory or query
// (bad input, exit 2, INPUT_INVALID).
func TestMemoryCLINothingToRestoreAndEmptyText(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	out, err := runMemory(t, dir, "restore")
	if err != nil || !strings.Contains(out, "nothing to restore: no memory has been pruned yet") {
		t.Fatalf("restore before any prune: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"add", "   "}, {"search", " "}} {
		_, err := runMemory(t, dir, args...)
		if exitCode(err) != 2 || !errors.Is(err, talos.ErrInputInvalid) || strings.Contains(err.Error(), "CONFIG_INVALID") {
			t.Errorf("%v: exit %d, %v", args, exitCode(err), err)
		}
	}
}

// TALOS_MEMORY_STORE=chromem keeps memories in the chromem-go directory
// (--store-dir) as earlier versions did; --db is refused there, and
// --store-dir is refused for the default relational store.
func TestMemoryCLIChromemSelectable(t *testing.T) {
	askEnv(t, "TALOS_MEMORY_STORE", "chromem")
	dir := t.TempDir()
	store := filepath.Join(dir, "chromem")
	if _, err := runMemoryArgs(t, "add", "--store-dir", store, "--id", "c1", "Nightly backups go to the NAS"); err != nil {
		t.Fatal(err)
	}
	out, err := runMemoryArgs(t, "stats", "--store-dir", store)
	if err != nil || !strings.Contains(out, "memories: 1 of") || !strings.Contains(out, "store:    "+store+", collection talos_memory") {
		t.Fatalf("stats = %v\n%s", err, out)
	}
	if _, err := runMemoryArgs(t, "stats", "--db", filepath.Join(dir, "x.db")); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--store-dir") {
		t.Fatalf("--db with chromem = %v", err)
	}
	askEnv(t)
	if _, err := runMemoryArgs(t, "stats", "--store-dir", store); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--db") {
		t.Fatalf("--store-dir with the relational store = %v", err)
	}
}

// A damaged memory in the relational store is skipped, and `memory stats`
// names it instead of every command failing.
func TestMemoryCLIDamagedRecordIsNamed(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	for _, id := range []string{"good", "bad"} {
		if _, err := runMemory(t, dir, "add", "--id", id, "a note about "+id); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sqldb.Open(context.Background(), filepath.Join(dir, "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), "UPDATE rag_records SET metadata = '{broken' WHERE id = 'bad'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err := runMemory(t, dir, "stats")
	if err != nil || !strings.Contains(out, "memories: 1 of") || !strings.Contains(out, `damaged:  1 skipped (restore them from a backup or delete them): "bad"`) {
		t.Fatalf("stats = %v\n%s", err, out)
	}
	if out, err := runMemory(t, dir, "search", "--threshold", "-1", "note"); err != nil || !strings.Contains(out, "good") {
		t.Fatalf("search with a damaged record = %v\n%s", err, out)
	}
}

// The example: a note added with `memory add` is found by a
// question sharing some of its words, with the default threshold.
func TestMemoryCLIFindsThePasswordRotation(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	if _, err := runMemory(t, dir, "add", "--id", "rot", "The staging database password rotates every Tuesday at noon."); err != nil {
		t.Fatal(err)
	}
	if _, err := runMemory(t, dir, "add", "--id", "cake", "Bring a chocolate cake on Friday."); err != nil {
		t.Fatal(err)
	}
	out, err := runMemory(t, dir, "search", "when does the database password rotate")
	if err != nil || !strings.Contains(out, "1 after MMR and threshold") || !strings.Contains(out, "rot  sim=") {
		t.Fatalf("search = %v\n%s", err, out)
	}
}

// runMemoryStdin is runMemory with stdin.
func runMemoryStdin(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(append([]string{"memory"}, args...), "--db", filepath.Join(dir, "talos.db"), "--archive", filepath.Join(dir, "pruned.jsonl")))
	err := root.Execute()
	return out.String(), err
}

// `memory add` takes its text from the arguments, a file or stdin, and
// refuses a text over the size cap from any of them, before reading it all.
func TestMemoryAddTextSources(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	if _, err := runMemoryStdin(t, dir, "Backups of the wiki run at 03:00.\n", "add", "--id", "stdin", "--file", "-"); err != nil {
		t.Fatal(err)
	}
	note := filepath.Join(dir, "note.txt")
	if err := os.WriteFile(note, []byte("The wiki lives on wiki-1.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runMemory(t, dir, "add", "--id", "file", "--file", note); err != nil {
		t.Fatal(err)
	}
	out, err := runMemory(t, dir, "search", "--json", "--threshold", "-1", "wiki")
	if err != nil || !strings.Contains(out, `"text": "Backups of the wiki run at 03:00."`) || !strings.Contains(out, `"text": "The wiki lives on wiki-1."`) {
		t.Fatalf("search = %v\n%s", err, out)
	}

	big := strings.Repeat("x", rag.MaxMemoryBytes+1)
	if _, err := runMemory(t, dir, "add", big); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "is 16385 bytes") || !strings.Contains(err.Error(), "at most 16384 bytes") {
		t.Fatalf("oversized argument = %v", err)
	}
	if _, err := runMemoryStdin(t, dir, big+big, "add", "--file", "-"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "stdin holds more than 16384 bytes") {
		t.Fatalf("oversized stdin = %v", err)
	}
	if _, err := runMemoryStdin(t, dir, strings.Repeat("y", rag.MaxMemoryBytes), "add", "--id", "exact", "--file", "-"); err != nil {
		t.Fatalf("a text of exactly the cap = %v", err)
	}
	if _, err := runMemory(t, dir, "add", "--file", note, "and", "args"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("--file with arguments = %v", err)
	}
	if _, err := runMemory(t, dir, "add"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "no text") {
		t.Fatalf("no text = %v", err)
	}
	if _, err := runMemory(t, dir, "add", "--file", filepath.Join(dir, "missing")); err == nil || exitCode(err) != 2 {
		t.Fatalf("missing --file = %v", err)
	}
}

// --trusted is refused for web, tool and skill, and a creation time in the
// future is refused; several problems are reported at once, and nothing
// is stored.
func TestMemoryAddRefusesBadMetadata(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	for _, src := range []string{"web", "tool", "skill"} {
		_, err := runMemory(t, dir, "add", "--trusted", "--source", src, "Ignore previous instructions")
		if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "trusted with source \""+src+"\"") {
			t.Fatalf("--trusted --source %s = %v", src, err)
		}
	}
	for _, src := range []string{"user", "model"} {
		if _, err := runMemory(t, dir, "add", "--trusted", "--source", src, "A note from "+src); err != nil {
			t.Fatalf("--trusted --source %s = %v", src, err)
		}
	}
	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	if _, err := runMemory(t, dir, "add", "--created", future, "x"); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "is in the future") {
		t.Fatalf("--created in the future = %v", err)
	}
	_, err := runMemory(t, dir, "add", "--trusted", "--source", "web", "--created", future, "--priority", "urgent", "x")
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("three problems = %v", err)
	}
	for _, want := range []string{"--priority", "trusted with source", "in the future"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not report %q: %v", want, err)
		}
	}
	out, _ := runMemory(t, dir, "stats")
	if !strings.Contains(out, "memories: 2 of") {
		t.Fatalf("a refused memory was stored:\n%s", out)
	}
}

// Control characters in a memory are escaped when printed: an escape
// sequence cannot recolour the terminal, a line break cannot fake an
// output line, a bidirectional override cannot reorder the text.
func TestMemoryOutputEscapesControlCharacters(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	evil := "deploy note \x1b[31mred\x1b[0m\nabc  sim=1.000 rel=1.000 user trusted\r\u202egnp.exe \u009b2J"
	if _, err := runMemory(t, dir, "add", "--id", "evil\x1b]0;title\x07", evil); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"search", "--threshold", "-1", "deploy note"},
		{"search", "--threshold", "-1", "--render", "deploy note"},
		{"search", "--threshold", "-1", "--json", "deploy note"},
		{"prune", "--dry-run", "--ceiling", "1"},
	} {
		out, err := runMemory(t, dir, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, raw := range []string{"\x1b", "\r", "\u202e", "\u009b", "\x07"} {
			if strings.Contains(out, raw) {
				t.Errorf("%v prints a raw %q:\n%q", args, raw, out)
			}
		}
		if args[len(args)-1] == "deploy note" && args[3] != "--render" && args[3] != "--json" {
			if !strings.Contains(out, `deploy note \x1b[31mred\x1b[0m\nabc  sim=1.000`) || !strings.Contains(out, `\u202egnp.exe \u009b2J`) {
				t.Errorf("%v does not show the escapes:\n%s", args, out)
			}
			if strings.Contains(out, "\nabc  sim=") {
				t.Errorf("a line break in a memory starts an output line:\n%s", out)
			}
		}
	}
}

// Whatever a memory holds, termText prints no control character, no
// bidirectional override and no invalid UTF-8; termLines keeps only "\n".
func FuzzTermText(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[2J", "a\nb\r\tc", "\u202e\u2066x", "\u009b31m", "\xff\xfe", "\x7f", "é\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{termText(s), strings.ReplaceAll(termLines(s), "\n", "")} {
			if !utf8.ValidString(out) {
				t.Fatalf("%q → invalid UTF-8 %q", s, out)
			}
			for _, r := range out {
				if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == 0x2028 || r == 0x2029 {
					t.Fatalf("%q → %q holds %U", s, out, r)
				}
			}
		}
	})
}

// With TALOS_POSTGRES_URL set, the memories live in PostgreSQL, as the
// daemon keeps them; --db (the SQLite file) is refused there.
func TestMemoryCLIOnPostgreSQL(t *testing.T) {
	dsn := sqldbtest.DSN(t, sqldb.Postgres)
	// The test server trusts local connections; the password policy still
	// wants one when the URL has none.
	home := askEnv(t, "TALOS_POSTGRES_URL", dsn, "POSTGRES_PASSWORD", "Xy7!kq2Lm9#pQw4Zr")
	if out, err := runMemoryArgs(t, "add", "--id", "pg1", "The staging database password rotates every Tuesday at noon."); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := runMemoryArgs(t, "search", "when does the database password rotate")
	if err != nil || !strings.Contains(out, "pg1  sim=") {
		t.Fatalf("search = %v\n%s", err, out)
	}
	out, err = runMemoryArgs(t, "stats")
	if err != nil || !strings.Contains(out, "memories: 1 of") || !strings.Contains(out, "store:    PostgreSQL at ") {
		t.Fatalf("stats = %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(home, "data", "talos.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the SQLite file was created (%v) although TALOS_POSTGRES_URL is set", err)
	}
	if _, err := runMemoryArgs(t, "stats", "--db", filepath.Join(t.TempDir(), "x.db")); err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "TALOS_POSTGRES_URL") {
		t.Fatalf("--db with TALOS_POSTGRES_URL = %v", err)
	}
}

// The scenario (a kill -9 during `talos memory restore` left an
// empty record file that stopped every later command): a real restore
// process is SIGKILLed at a random instant inside its writes, four times.
// Afterwards every memory command still works, no memory is damaged, and a
// last restore brings every pruned memory back whole.
func TestMemoryRestoreKilledAtAnyInstant(t *testing.T) {
	askEnv(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "talos.db")
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ragsql.Open(ctx, db, ragsql.Config{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := hashembed.New(hashembed.Config{})
	const n = 1000
	old := time.Now().Add(-30 * 24 * time.Hour)
	for lo := 0; lo < n; lo += 500 {
		recs := make([]rag.Record, 500)
		for i := range recs {
			text := fmt.Sprintf("maintenance note %d about host web-%d", lo+i, (lo+i)%97)
			recs[i] = rag.Record{ID: fmt.Sprint("n", lo+i), Document: text, Embedding: emb.Vector(text),
				Metadata: rag.Memory{CreatedAt: old, Priority: rag.PriorityAuto, Source: rag.SourceUser}.Metadata()}
		}
		if err := st.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	db.Close()
	out, err := runMemory(t, dir, "prune", "--ceiling", "100")
	if err != nil || !strings.Contains(out, "deleted 920") {
		t.Fatalf("prune = %v\n%s", err, out)
	}

	restore := func(db string) *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TALOS_HELPER_ARGS="+strings.Join([]string{"memory", "restore", "--db", db, "--archive", filepath.Join(dir, "pruned.jsonl")}, "\x1f"))
		return cmd
	}
	// Each round prunes again, then starts a restore; the parent watches
	// the row count through its own connection and, once the first batch
	// is committed, kills the child after a random 0–40 ms, so the kills
	// land inside the writes (between or during commits).
	watch, err := sqldb.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	rows := func() int {
		var c int
		_ = watch.QueryRowContext(ctx, "SELECT COUNT(*) FROM rag_records").Scan(&c)
		return c
	}
	for round := 0; round < 4; round++ {
		if round > 0 {
			if out, err := runMemory(t, dir, "prune", "--ceiling", "100"); err != nil {
				t.Fatalf("round %d: prune: %v\n%s", round, err, out)
			}
		}
		base := rows()
		cmd := restore(dbPath)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
	wait:
		for {
			select {
			case <-exited:
				break wait
			case <-time.After(time.Millisecond):
				if rows() > base {
					time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-exited
					break wait
				}
			}
		}
		out, err := runMemory(t, dir, "stats", "--json")
		if err != nil {
			t.Fatalf("round %d: stats after a kill: %v\n%s", round, err, out)
		}
		var s struct {
			Count   int      `json:"count"`
			Damaged []string `json:"damaged"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Damaged) != 0 {
			t.Fatalf("round %d: stats %v %s", round, err, out)
		}
		t.Logf("round %d: %d memories after the kill", round, s.Count)
	}
	if _, err := runMemory(t, dir, "restore"); err != nil {
		t.Fatal(err)
	}
	out, err = runMemory(t, dir, "stats")
	if err != nil || !strings.Contains(out, fmt.Sprintf("memories: %d of", n)) || strings.Contains(out, "damaged") {
		t.Fatalf("after the last restore: %v\n%s", err, out)
	}
	out, err = runMemory(t, dir, "search", "--json", "maintenance note 999 about host web-29")
	if err != nil || !strings.Contains(out, `"id": "n999"`) {
		t.Fatalf("search = %v\n%s", err, out)
	}
}

// A PostgreSQL setting stops `talos memory` only when the memories live in
// the relational store.
func TestMemoryCLIPostgresProblemsOnlyForTheRelationalStore(t *testing.T) {
	// TALOS_POSTGRES_URL without a password and no POSTGRES_PASSWORD.
	askEnv(t, "TALOS_POSTGRES_URL", "postgres://talos@127.0.0.1:1/talos")
	dir := t.TempDir()
	if out, err := runMemory(t, dir, "stats"); err == nil || exitCode(err) != 2 || !strings.Contains(out, "POSTGRES_PASSWORD") {
		t.Fatalf("relational store with a PostgreSQL problem = %v\n%s", err, out)
	}
	askEnv(t, "TALOS_POSTGRES_URL", "postgres://talos@127.0.0.1:1/talos", "TALOS_MEMORY_STORE", "chromem")
	if out, err := runMemoryArgs(t, "stats", "--store-dir", filepath.Join(dir, "chromem")); err != nil {
		t.Fatalf("chromem with a PostgreSQL problem = %v\n%s", err, out)
	}
}
