package doclint

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOverviewsMatchTheTree keeps the two overviews honest: README's
// package table has one row per internal package (svcchecktest-style
// helper packages excepted), and the root doc.go's list of pieces names
// only directories that exist (planned packages belong in its "Planned"
// paragraph).
func TestOverviewsMatchTheTree(t *testing.T) {
	root := moduleRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(internal/[a-z/]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		rows[m[1]] = true
	}
	err = filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" || strings.HasSuffix(d.Name(), "test") && d.Name() != "internal" {
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil // test helpers (svcchecktest) are described with their parent
		}
		gos, _ := filepath.Glob(filepath.Join(p, "*.go"))
		if len(gos) == 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if !rows[filepath.ToSlash(rel)] {
			t.Errorf("README.md's package table has no row for %s", filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	doc, err := os.ReadFile(filepath.Join(root, "doc.go"))
	if err != nil {
		t.Fatal(err)
	}
	pieces, _, _ := strings.Cut(string(doc), "// # Errors")
	for _, m := range regexp.MustCompile(`(?m)^//   - ([a-z, ]+(?: and [a-z]+)?):`).FindAllStringSubmatch(pieces, -1) {
		for _, name := range regexp.MustCompile(`[a-z]+`).FindAllString(m[1], -1) {
			if name == "and" {
				continue
			}
			if st, err := os.Stat(filepath.Join(root, name)); err != nil || !st.IsDir() {
				t.Errorf("doc.go lists %q among the pieces, but there is no %s/ in the module; move it to the planned paragraph", name, name)
			}
		}
	}
}
