package doclint

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPublicPackagesImportNoInternal keeps the SDK's public packages free
// of the module's internal/ packages: an SDK user must be able to read,
// vendor and reason about a public package without the daemon's plumbing
// (test files may use internal helpers such as testenv).
func TestPublicPackagesImportNoInternal(t *testing.T) {
	root := moduleRoot(t)
	const internal = "github.com/talos-ironclad/talos/internal"
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if p != root {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(relFile(root, p)))
		if !public(dir) {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		n++
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			if path == internal || strings.HasPrefix(path, internal+"/") {
				t.Errorf("%s imports %s: a public package must not depend on internal/ (move what it needs into a public package or the root)", relFile(root, p), path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no public Go file found: is the test run from inside the module?")
	}
}
