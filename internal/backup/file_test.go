package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/atomicfile"
)

func TestArchiveNamesAndRotate(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 1, 0, time.FixedZone("CET", 3600))
	if got := ArchiveName(at); got != "talos-20261207T030001Z.tar.gz" || !isArchiveName(got) {
		t.Errorf("ArchiveName = %s", got)
	}
	dir := t.TempDir()
	names := []string{ArchiveName(at), ArchiveName(at.Add(24 * time.Hour)), ArchiveName(at.Add(48 * time.Hour)),
		"talos-manual.tar.gz", "notes.txt", ".backup-1.tmp"}
	// Temporary files of archives a killed backup left: the day-old one
	// goes, the fresh one (a backup still running) stays.
	stale := atomicfile.TempPrefix(ArchiveName(at.Add(-72*time.Hour))) + "123"
	fresh := atomicfile.TempPrefix(ArchiveName(at.Add(72*time.Hour))) + "456"
	for _, n := range append(slices.Clone(names), stale, fresh) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(filepath.Join(dir, stale), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Rotate(dir, 0); err == nil {
		t.Error("keep 0 accepted")
	}
	removed, err := Rotate(dir, 2)
	if err != nil || !slices.Equal(removed, names[:1]) {
		t.Fatalf("Rotate = %v, %v", removed, err)
	}
	if removed, err := Rotate(dir, 2); err != nil || len(removed) != 0 {
		t.Errorf("second Rotate = %v, %v", removed, err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{".backup-1.tmp", fresh, "notes.txt", "talos-20261208T030001Z.tar.gz", "talos-20261209T030001Z.tar.gz", "talos-manual.tar.gz"}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
