package doclint

import (
	"go/token"
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
	for _, pk := range publicPackages(t, root, fset) {
		for _, fn := range pk.fileOrder {
			n++
			for _, im := range pk.files[fn].Imports {
				path, _ := strconv.Unquote(im.Path.Value)
				if path == internal || strings.HasPrefix(path, internal+"/") {
					t.Errorf("%s/%s imports %s: a public package must not depend on internal/ (move what it needs into a public package or the root)", pk.dir, fn, path)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no public Go file found: is the test run from inside the module?")
	}
}
