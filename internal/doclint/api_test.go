package doclint

import (
	"flag"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateAPI = flag.Bool("update-api", false, "rewrite testdata/api/*.txt from the current source")

// apiPinned lists the public packages whose exported API is pinned in
// testdata/api/<name>.txt (one identifier a line, as go doc names them:
// Func, Type, Type.Method, Type.Field is not listed). A change to their API
// must change the file too, so that plumbing does not leak into the API
// unnoticed. Run `go test ./internal/doclint -run TestAPISurface -update-api`
// after an intended change and review the diff.
var apiPinned = []string{"rag", "firewall", "proc"}

// TestAPISurface compares the exported identifiers of each pinned package
// (what go/doc shows: constants, variables, functions, types, their
// constructors and methods) with the pinned list.
func TestAPISurface(t *testing.T) {
	root := moduleRoot(t)
	for _, dir := range apiPinned {
		t.Run(dir, func(t *testing.T) {
			got, err := exportedAPI(filepath.Join(root, filepath.FromSlash(dir)))
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join("testdata", "api", strings.ReplaceAll(dir, "/", "_")+".txt")
			if *updateAPI {
				if err := os.WriteFile(file, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (create it with -update-api)", err)
			}
			want := strings.Fields(string(data))
			for _, id := range got {
				if !slices.Contains(want, id) {
					t.Errorf("%s exports %s, which %s does not list: unexport it or move it under %s/internal (adapter plumbing), or pin it", dir, id, file, dir)
				}
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					t.Errorf("%s no longer exports %s, which %s lists", dir, id, file)
				}
			}
		})
	}
}

// exportedAPI returns the sorted exported identifiers of the package in dir,
// from its non-test Go files.
func exportedAPI(dir string) ([]string, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	path := ""
	for name, p := range pkgs {
		if strings.HasSuffix(name, "_test") {
			continue
		}
		path = name
		for _, f := range p.Files {
			files = append(files, f)
		}
	}
	d, err := doc.NewFromFiles(fset, files, path)
	if err != nil {
		return nil, err
	}
	var out []string
	values := func(vs []*doc.Value) {
		for _, v := range vs {
			out = append(out, v.Names...)
		}
	}
	values(d.Consts)
	values(d.Vars)
	for _, f := range d.Funcs {
		out = append(out, f.Name)
	}
	for _, ty := range d.Types {
		out = append(out, ty.Name)
		values(ty.Consts)
		values(ty.Vars)
		for _, f := range ty.Funcs {
			out = append(out, f.Name)
		}
		for _, m := range ty.Methods {
			out = append(out, ty.Name+"."+m.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
