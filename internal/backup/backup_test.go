package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/backup"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/strikes"
)

// newHome makes a home with a configuration, keys, a database holding
// memories, a skill and a strike, audit logs and a skill in quarantine.
func newHome(t *testing.T, memories int) (string, *config.Config) { return newHomeDim(t, memories, 8) }

// newHomeDim is newHome with embeddings of dim dimensions.
func newHomeDim(t *testing.T, memories, dim int) (string, *config.Config) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "talos")
	l, err := layout.New(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte("trust_level: 1\n"), 0o644)
	os.WriteFile(filepath.Join(home, "config", "talos.env"), []byte("BASIC_AUTH_PASS=Str0ng!Passw0rd#2026\n"), 0o600)
	cfg, err := config.Load(config.LoadOptions{Home: home, SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		if k == "BASIC_AUTH_PASS" {
			return "Str0ng!Passw0rd#2026", true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sk, err := host.OpenSkills(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "hello")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: hello_world\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.py"), []byte("print('hi')\n"), 0o644)
	rec, err := sk.Quarantine.Add(ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "test"}, "user:test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sk.Strikes.Record(ctx, strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash},
		strikes.Failure{Type: strikes.Timeout, ExceptionType: "Timeout", Message: "slow"}); err != nil {
		t.Fatal(err)
	}
	mem, err := sqlstore.Open(ctx, sk.DB, sqlstore.Config{Dimension: dim})
	if err != nil {
		t.Fatal(err)
	}
	emb, err := hashembed.New(hashembed.Config{Dimension: dim})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < memories; i += 500 {
		var recs []rag.Record
		for j := i; j < min(i+500, memories); j++ {
			doc := fmt.Sprintf("memory %d: the operator noted something worth keeping about service %d", j, j%97)
			recs = append(recs, rag.Record{ID: fmt.Sprint("m", j), Document: doc, Embedding: emb.Vector(doc),
				Metadata: rag.Metadata{"priority": "permanent"}})
		}
		if err := mem.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	sk.Close()
	tiers, err := tlog.OpenSet(tlog.DirsUnder(filepath.Join(home, "logs")), tlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		tlog.Audit(ctx, tiers.Audit, "test_event", slog.Int("i", i))
	}
	tiers.Close()
	return home, cfg
}

func snapshotTree(t *testing.T, home string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(home, p)
		if strings.HasPrefix(rel, "data/talos.db") || strings.HasPrefix(rel, "tmp") || strings.HasSuffix(rel, ".lock") {
			return nil
		}
		b, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		sum := sha256.Sum256(b)
		out[rel] = fmt.Sprintf("%v %x", st.Mode().Perm(), sum[:8])
		return nil
	})
	return out
}

func TestBackupWipeRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	home, cfg := newHome(t, 10000)
	before := snapshotTree(t, home)
	var buf bytes.Buffer
	m, err := backup.Create(ctx, &buf, backup.Options{Home: home, TalosVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Database != "sqlite" || len(m.Files) < 8 {
		t.Fatalf("manifest %+v", m)
	}
	if err := os.RemoveAll(home); err != nil {
		t.Fatal(err)
	}
	// A dry run writes nothing into the home.
	plan, err := backup.Restore(ctx, bytes.NewReader(buf.Bytes()), backup.RestoreOptions{Home: home, DryRun: true})
	if err != nil || len(plan.Files) != len(m.Files) || plan.Replaced != 0 {
		t.Fatalf("dry run: %+v, %v", plan, err)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 0 {
		t.Fatalf("the dry run wrote %v", ents)
	}
	if _, err := backup.Restore(ctx, bytes.NewReader(buf.Bytes()), backup.RestoreOptions{Home: home}); err != nil {
		t.Fatal(err)
	}
	after := snapshotTree(t, home)
	for p, want := range before {
		if strings.HasPrefix(p, "keys/") {
			want = "-rw------- " + strings.SplitN(want, " ", 2)[1]
		}
		if after[p] != want {
			t.Errorf("%s: %q after restore, %q before", p, after[p], want)
		}
	}
	// The restored database holds everything, and the chains verify.
	sk, err := host.OpenSkills(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	mem, err := sqlstore.Open(ctx, sk.DB, sqlstore.Config{Dimension: 8})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := mem.Count(ctx); n != 10000 {
		t.Errorf("%d memories after restore, want 10000", n)
	}
	if r, err := sk.Strikes.Verify(ctx); err != nil || r.Strikes != 1 {
		t.Errorf("strikes after restore: %+v, %v", r, err)
	}
	if h, err := sk.Quarantine.Verify(ctx); err != nil || h.Entries == 0 {
		t.Errorf("quarantine chain after restore: %+v, %v", h, err)
	}
	if rep, err := tlog.Verify(filepath.Join(home, "logs", "tier1")); err != nil || len(rep.Warnings) != 0 {
		t.Errorf("logs verify after restore: %+v, %v", rep, err)
	}
	if st, _ := os.Stat(filepath.Join(home, "keys")); st.Mode().Perm() != 0o700 {
		t.Errorf("keys folder mode %v", st.Mode().Perm())
	}
}

func TestPartialRestoreTouchesOnlyItsParts(t *testing.T) {
	ctx := context.Background()
	home, _ := newHome(t, 10)
	var buf bytes.Buffer
	if _, err := backup.Create(ctx, &buf, backup.Options{Home: home}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte("trust_level: 3\n"), 0o644)
	os.WriteFile(filepath.Join(home, "skills", "note.txt"), []byte("mine"), 0o644)
	if _, err := backup.Restore(ctx, bytes.NewReader(buf.Bytes()), backup.RestoreOptions{Home: home, Parts: []string{"config"}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(home, "config", "config.yaml")); string(b) != "trust_level: 1\n" {
		t.Errorf("config not restored: %q", b)
	}
	if _, err := os.Stat(filepath.Join(home, "skills", "note.txt")); err != nil {
		t.Error("a partial restore of config touched skills")
	}
	_, err := backup.Restore(ctx, bytes.NewReader(buf.Bytes()), backup.RestoreOptions{Home: home, Parts: []string{"config", "secrets"}})
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), `"secrets"`) {
		t.Errorf("unknown part: %v", err)
	}
}

type entry struct {
	name string
	typ  byte
	body string
	link string
}

// craft writes an archive of entries and a manifest listing manifestFiles
// (nil: every regular entry, correctly).
func craft(t *testing.T, entries []entry, edit func(*backup.Manifest)) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	m := backup.Manifest{Format: backup.Format, Parts: backup.Parts()}
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
			sum := sha256.Sum256([]byte(e.body))
			m.Files = append(m.Files, backup.File{Path: e.name, Size: int64(len(e.body)), Mode: 0o644, SHA256: hex.EncodeToString(sum[:])})
		}
	}
	if edit != nil {
		edit(&m)
	}
	mb, _ := json.Marshal(m)
	tw.WriteHeader(&tar.Header{Name: backup.ManifestName, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(mb))})
	tw.Write(mb)
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestRestoreRefusesBadArchivesBeforeWriting(t *testing.T) {
	ok := entry{name: "config/config.yaml", body: "trust_level: 1\n"}
	good := craft(t, []entry{ok}, nil)
	cases := []struct {
		name    string
		archive []byte
		want    string
	}{
		{"tampered file", craft(t, []entry{ok}, func(m *backup.Manifest) { m.Files[0].SHA256 = strings.Repeat("0", 64) }), "does not match its SHA-256"},
		{"missing listed file", craft(t, []entry{ok}, func(m *backup.Manifest) {
			m.Files = append(m.Files, backup.File{Path: "keys/audit.key", Size: 32, SHA256: strings.Repeat("a", 64)})
		}), "keys/audit.key is listed but missing"},
		{"unlisted file", craft(t, []entry{ok, {name: "skills/extra.py", body: "x"}}, func(m *backup.Manifest) { m.Files = m.Files[:1] }), "not in the manifest"},
		{"dot-dot entry", craft(t, []entry{{name: "config/../../etc/cron.d/x", body: "x"}}, nil), "path is not clean"},
		{"leading dot-dot", craft(t, []entry{{name: "../outside", body: "x"}}, nil), "leaves the home"},
		{"absolute entry", craft(t, []entry{{name: "/etc/passwd", body: "x"}}, nil), "absolute"},
		{"escaping symlink", craft(t, []entry{{name: "skills/link", typ: tar.TypeSymlink, link: "/etc"}}, nil), "symbolic link"},
		{"hard link", craft(t, []entry{{name: "skills/hl", typ: tar.TypeLink, link: "config/config.yaml"}}, nil), "hard link"},
		{"outside the parts", craft(t, []entry{{name: "bin/talos", body: "x"}}, nil), "not under config"},
		{"truncated", good[:len(good)-30], "truncated"},
		{"not gzip", []byte("hello"), "not a gzip stream"},
		{"newer format", craft(t, []entry{ok}, func(m *backup.Manifest) { m.Format = backup.Format + 1 }), "is newer than this Talos reads"},
		{"no manifest", func() []byte {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			tw := tar.NewWriter(zw)
			tw.WriteHeader(&tar.Header{Name: ok.name, Typeflag: tar.TypeReg, Size: int64(len(ok.body)), Mode: 0o644})
			tw.Write([]byte(ok.body))
			tw.Close()
			zw.Close()
			return b.Bytes()
		}(), "no MANIFEST.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			os.MkdirAll(filepath.Join(home, "config"), 0o755)
			os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte("mine\n"), 0o644)
			_, err := backup.Restore(context.Background(), bytes.NewReader(tc.archive), backup.RestoreOptions{Home: home})
			if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant T010 containing %q", err, tc.want)
			}
			if b, _ := os.ReadFile(filepath.Join(home, "config", "config.yaml")); string(b) != "mine\n" {
				t.Error("the home changed")
			}
			ents, _ := os.ReadDir(home)
			if len(ents) != 1 {
				t.Errorf("left behind: %v", ents)
			}
		})
	}
	if _, err := backup.Restore(context.Background(), bytes.NewReader(good), backup.RestoreOptions{Home: t.TempDir()}); err != nil {
		t.Errorf("the good archive: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte("not an archive"))
	var good bytes.Buffer
	zw := gzip.NewWriter(&good)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "config/a", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	tw.Write([]byte("a"))
	tw.Close()
	zw.Close()
	f.Add(good.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		staging := t.TempDir()
		m, err := backup.Read(bytes.NewReader(data), staging)
		if err == nil && m == nil {
			t.Fatal("no manifest and no error")
		}
		// Whatever it read, nothing escaped staging.
		filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeSymlink != 0 {
				t.Fatalf("a link was written: %s", p)
			}
			return err
		})
	})
}
