package vram

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoThirdPartyImports keeps vram free of dependencies outside the
// standard library and this module (its Prometheus collector lives in
// vram/vramprom, the Ollama runner locator in llm/ollama), so importing it
// pulls in nothing else.
func TestNoThirdPartyImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !strings.HasPrefix(path, "github.com/talos-ironclad/talos") {
				t.Errorf("%s imports %s: vram must depend only on the standard library and this module", file, path)
			}
		}
	}
}
