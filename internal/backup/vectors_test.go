package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/backup"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// listAll returns every record of s, with embeddings, by id.
func listAll(t *testing.T, s rag.Store) map[string]rag.Record {
	t.Helper()
	recs, err := s.List(context.Background(), rag.ListOptions{Embeddings: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rag.Record{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

// sameVector compares embeddings to a float32 rounding: the export holds
// the stored values exactly, but the Chroma server normalises every
// vector it is given again in float32, which moves a component by up to
// an ulp on each write (measured: 0.056796186 in, 0.05679619 stored).
func sameVector(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := float64(a[i]) - float64(b[i]); d > 1e-7 || d < -1e-7 || (a[i] == 0) != (b[i] == 0) {
			return false
		}
	}
	return true
}

// retar rewrites archive entry by entry, passing each body through edit;
// the manifest is kept as it was.
func retar(t *testing.T, archive []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		body = edit(hdr.Name, body)
		hdr.Size = int64(len(body))
		tw.WriteHeader(hdr)
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

// A home whose memories are on the harness's Chroma server: the backup
// holds an export of the collection, listed in the manifest; after the
// records are deleted, a restore puts every one back with the same
// document, metadata (typed numbers included) and embedding. A dry run and
// a tampered export touch neither the home nor Chroma; without a Chroma
// store the export is restored into data/ and reported pending.
func TestChromaMemoriesBackupDeleteRestore(t *testing.T) {
	url := testenv.ChromaURL(t)
	ctx := context.Background()
	home, base := newHome(t, 0)
	cfg := *base
	cfg.ChromaURL = url
	coll := fmt.Sprintf("talos_backup_test_%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = chroma.DeleteCollection(context.Background(), url, coll) })
	open := func(ctx context.Context) (rag.Store, func() error, error) {
		m, err := host.OpenBackupMemory(ctx, &cfg, host.MemoryOptions{Collection: coll})
		if err != nil || m == nil {
			return nil, nil, err
		}
		return m.Store, m.Close, nil
	}
	store, closeStore, err := open(ctx)
	if err != nil || store == nil {
		t.Fatalf("OpenBackupMemory with TALOS_CHROMA_URL = %v, %v", store, err)
	}
	defer closeStore()
	emb, err := hashembed.New(hashembed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var recs []rag.Record
	var ids []string
	for i := range n {
		doc := fmt.Sprintf("memory %d: the nightly job on host-%d needs \"quotes\", ünïcode and a\nnewline", i, i%13)
		recs = append(recs, rag.Record{ID: fmt.Sprint("chroma-", i), Document: doc, Embedding: emb.Vector(doc), Metadata: rag.Metadata{
			rag.KeyPriority: string(rag.PriorityPermanent), rag.KeyCreatedAt: int64(1700000000000 + i), rag.KeyTrusted: i%2 == 0,
			rag.KeyFeedback: float64(i%3) / 2, // 0.0 and 1.0 stay floats
		}})
		ids = append(ids, fmt.Sprint("chroma-", i))
	}
	if err := store.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	before := listAll(t, store)
	if len(before) != n {
		t.Fatalf("%d records in Chroma, want %d", len(before), n)
	}

	var buf bytes.Buffer
	m, err := backup.Create(ctx, &buf, backup.Options{Home: home, Vectors: store})
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, f := range m.Files {
		listed = listed || (f.Path == backup.VectorExport && f.Size > 0 && len(f.SHA256) == 64)
	}
	if !listed || m.VectorRecords != n {
		t.Fatalf("manifest: %d records exported, files %+v; want %s listed with size and SHA-256", m.VectorRecords, m.Files, backup.VectorExport)
	}
	archive := buf.Bytes()

	wipe := func() {
		t.Helper()
		if err := store.Delete(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if c, _ := store.Count(ctx); c != 0 {
			t.Fatalf("%d records left after delete", c)
		}
	}
	wipe()

	// A dry run does not touch Chroma.
	if _, err := backup.Restore(ctx, bytes.NewReader(archive), backup.RestoreOptions{Home: home, DryRun: true, Vectors: open}); err != nil {
		t.Fatal(err)
	}
	if c, _ := store.Count(ctx); c != 0 {
		t.Fatalf("the dry run imported %d records", c)
	}

	// A tampered export (one document changed, the manifest as it was) is
	// refused before anything is written, into the home or Chroma.
	tampered := retar(t, archive, func(name string, body []byte) []byte {
		if name == backup.VectorExport {
			return bytes.Replace(body, []byte("memory 7:"), []byte("memory 8:"), 1)
		}
		return body
	})
	_, err = backup.Restore(ctx, bytes.NewReader(tampered), backup.RestoreOptions{Home: home, Parts: []string{backup.PartData}, Vectors: open})
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), backup.VectorExport+" does not match its SHA-256") {
		t.Fatalf("tampered export: %v", err)
	}
	if c, _ := store.Count(ctx); c != 0 {
		t.Fatalf("the tampered export imported %d records", c)
	}
	if _, err := os.Stat(filepath.Join(home, backup.VectorExport)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the tampered export was written into the home: %v", err)
	}

	// --partial=data restores the export and imports every record.
	plan, err := backup.Restore(ctx, bytes.NewReader(archive), backup.RestoreOptions{Home: home, Parts: []string{backup.PartData}, Vectors: open})
	if err != nil || plan.VectorsImported != n || plan.VectorsPending {
		t.Fatalf("restore: %+v, %v", plan, err)
	}
	after := listAll(t, store)
	if len(after) != n {
		t.Fatalf("%d records after restore, want %d", len(after), n)
	}
	for id, want := range before {
		got := after[id]
		if got.Document != want.Document || !reflect.DeepEqual(got.Metadata, want.Metadata) || !sameVector(got.Embedding, want.Embedding) {
			t.Fatalf("%s after restore:\n%#v\nbefore:\n%#v", id, got, want)
		}
	}

	// The export itself holds the stored values exactly.
	f, err := os.Open(filepath.Join(home, backup.VectorExport))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exported := 0
	if err := prune.ReadArchive(f, func(e prune.Entry) error {
		exported++
		if want := before[e.ID]; !reflect.DeepEqual(e.Embedding, want.Embedding) || !reflect.DeepEqual(rag.Metadata(e.Metadata), want.Metadata) {
			return fmt.Errorf("%s exported differs", e.ID)
		}
		return nil
	}); err != nil || exported != n {
		t.Fatalf("export: %d records, %v", exported, err)
	}

	// No Chroma on the target: the export is restored as a file and says
	// it is pending; nothing is dropped.
	wipe()
	plan, err = backup.Restore(ctx, bytes.NewReader(archive), backup.RestoreOptions{Home: home, Parts: []string{backup.PartData}})
	if err != nil || !plan.VectorsPending || plan.VectorsImported != 0 {
		t.Fatalf("restore without Chroma: %+v, %v", plan, err)
	}
	if st, err := os.Stat(filepath.Join(home, backup.VectorExport)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the export is not kept in the home: %v", err)
	}
	if c, _ := store.Count(ctx); c != 0 {
		t.Fatalf("imported %d records without a store", c)
	}
}

// A backup of a home whose memories live in data/ has no export, and an
// export left in data/ by a restore without Chroma is archived as a file.
func TestNoExportWithoutExternalMemory(t *testing.T) {
	ctx := context.Background()
	home, cfg := newHome(t, 3)
	if m, err := host.OpenBackupMemory(ctx, cfg, host.MemoryOptions{}); err != nil || m != nil {
		t.Fatalf("OpenBackupMemory without TALOS_CHROMA_URL = %v, %v; want nil", m, err)
	}
	os.WriteFile(filepath.Join(home, backup.VectorExport), []byte("{}\n"), 0o600)
	m, err := backup.Create(ctx, io.Discard, backup.Options{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range m.Files {
		found = found || f.Path == backup.VectorExport
	}
	if !found || m.VectorRecords != 0 {
		t.Fatalf("a pending export was not archived as a file: %+v", m)
	}
}

// A bad export names the line or the memory at fault.
func TestImportVectorsNamesBadInput(t *testing.T) {
	ctx := context.Background()
	good := `{"v":1,"run":"r","pruned_at":1,"reason":"backup","score":0,"id":"a","document":"x","embedding":[1,0,0,0],"metadata":{"created_at":5}}`
	cases := []struct{ name, body, want string }{
		{"not json", good + "\nnot json\n", "archive line 2"},
		{"unknown field", strings.Replace(good, `"score"`, `"sc0re"`, 1) + "\n", `unknown field "sc0re"`},
		{"no id", strings.Replace(good, `"id":"a"`, `"id":""`, 1) + "\n", "has no id"},
		{"dimension", strings.Replace(good, `[1,0,0,0]`, `[1,0]`, 1) + "\n", `memory "a" has a 2-dimensional embedding, the collection holds 4`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backup.ImportVectors(ctx, ragtest.NewMemoryStore(4), strings.NewReader(tc.body))
			if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want T010 naming %q", err, tc.want)
			}
		})
	}
	s := ragtest.NewMemoryStore(4)
	if n, err := backup.ImportVectors(ctx, s, strings.NewReader(good+"\n")); err != nil || n != 1 {
		t.Fatalf("good line: %d, %v", n, err)
	}
	if got, _ := s.Get(ctx, []string{"a"}); len(got) != 1 || got[0].Metadata[rag.KeyCreatedAt] != int64(5) {
		t.Fatalf("imported %+v", got)
	}
}
