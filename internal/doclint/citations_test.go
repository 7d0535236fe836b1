package doclint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// citationRE finds references to documents that do not ship with the
// module: the design notes, the spec digests and their requirement ids,
// section signs, appendices, the issue tracker, the protocol's operating
// manual. It also finds line numbers of the original specification (an "L"
// followed by three or four digits, as a word of its own: "L2 cache" or
// "MiniLM-L6" do not match) and the digests' bracketed exclamation mark,
// which flagged a flaw of the specification. A reader cannot follow any of
// them; the comment must state the fact itself.
var citationRE = regexp.MustCompile(`[Dd]igest [A-D]\b|DESIGN(\.md)?\b|RECIPES|\b[Ii]ssue \d+|\bspec §|\bR-\d+\.\d+|§\s?\d|\bAppendix [A-Z]\b|\brunbook|\bL\d{3,4}\b|\[!\]`)

// rfcRE matches a section of a published RFC, which every reader can find.
var rfcRE = regexp.MustCompile(`RFC \d+ §[\d.]+`)

// cites reports whether a line of a comment cites an outside document.
func cites(line string) bool {
	return citationRE.MatchString(rfcRE.ReplaceAllString(line, ""))
}

// commentTrees are the folders below the module root whose every comment is
// checked, in every file, tests included: the packages no `go doc` reader
// sees, whose comments are read in the source.
var commentTrees = []string{"internal", "cmd"}

// citationsPending lists package directories whose comments still cite
// outside documents, with why they wait. The test fails once a listed
// package is clean, so the entry is removed.
var citationsPending = map[string]string{}

// TestDocsCiteNoOutsideDocuments keeps the documentation of every public
// package (what `go doc -all` shows: package, exported declarations, their
// fields and methods) and every comment under internal/ and cmd/ (tests
// included) free of references to documents outside the module.
func TestDocsCiteNoOutsideDocuments(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	found := map[string][]string{}
	for _, pk := range publicPackages(t, root, fset) {
		for _, fn := range pk.fileOrder {
			f := pk.files[fn]
			for _, cg := range docComments(f) {
				for i, line := range strings.Split(cg.Text(), "\n") {
					if cites(line) {
						pos := fset.Position(cg.Pos())
						found[pk.dir] = append(found[pk.dir], relFile(root, pos.Filename)+":"+itoa(pos.Line+i)+": "+strings.TrimSpace(line))
					}
				}
			}
		}
	}
	for _, f := range commentFiles(t, root, fset, commentTrees) {
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				for i, line := range strings.Split(c.Text, "\n") {
					if cites(line) {
						pos := fset.Position(c.Pos())
						rel := relFile(root, pos.Filename)
						dir := path.Dir(rel)
						found[dir] = append(found[dir], rel+":"+itoa(pos.Line+i)+": "+strings.TrimSpace(line))
					}
				}
			}
		}
	}
	dirs := make([]string, 0, len(found))
	for d := range found {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if why, ok := citationsPending[d]; ok {
			t.Logf("%s cites outside documents (pending: %s):\n  %s", d, why, strings.Join(found[d], "\n  "))
			continue
		}
		t.Errorf("%s: comments cite documents that do not ship with the module; state the fact instead:\n  %s", d, strings.Join(found[d], "\n  "))
	}
	for d := range citationsPending {
		if _, ok := found[d]; !ok {
			t.Errorf("%s is in citationsPending but cites nothing any more: remove its entry", d)
		}
	}
}

// commentFiles parses every .go file below root/tree for each tree, tests
// included, skipping what the documentation check skips (directories named
// testdata or vendor, hidden ones, those starting with "_", nested modules).
// A file that does not parse fails the test.
func commentFiles(t *testing.T, root string, fset *token.FileSet, trees []string) []*ast.File {
	t.Helper()
	var out []*ast.File
	for _, tree := range trees {
		top := filepath.Join(root, filepath.FromSlash(tree))
		if _, err := os.Stat(top); err != nil {
			t.Fatalf("%s: %v (commentTrees names a folder the module does not have)", tree, err)
		}
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				name := d.Name()
				if p != top && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(p, ".go") {
				return nil
			}
			f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
			if err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// docComments returns the comments `go doc -all` shows for f: the package
// comment and the doc and line comments of exported declarations, their
// struct fields and interface methods.
func docComments(f *ast.File) []*ast.CommentGroup {
	var out []*ast.CommentGroup
	add := func(cgs ...*ast.CommentGroup) {
		for _, cg := range cgs {
			if cg != nil {
				out = append(out, cg)
			}
		}
	}
	add(f.Doc)
	fields := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, fd := range fl.List {
			exported := len(fd.Names) == 0 // embedded
			for _, n := range fd.Names {
				exported = exported || n.IsExported()
			}
			if exported {
				add(fd.Doc, fd.Comment)
			}
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Name.IsExported() {
				if d.Recv != nil && len(d.Recv.List) > 0 {
					if name, ok := receiver(d.Recv); ok && !ast.IsExported(name) {
						continue
					}
				}
				add(d.Doc)
			}
		case *ast.GenDecl:
			any := false
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					any = true
					add(s.Doc, s.Comment)
					switch tt := s.Type.(type) {
					case *ast.StructType:
						fields(tt.Fields)
					case *ast.InterfaceType:
						fields(tt.Methods)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							any = true
							add(s.Doc, s.Comment)
							break
						}
					}
				}
			}
			if any {
				add(d.Doc)
			}
		}
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// publicPackages parses every public package of the module below root
// (directories named testdata or vendor, hidden ones, those starting with
// "_" and nested modules are skipped), in walk order.
func publicPackages(t *testing.T, root string, fset *token.FileSet) []*pkg {
	t.Helper()
	var out []*pkg
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if p != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		if p != root {
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		pk, err := parseDir(fset, root, p)
		if err != nil || pk == nil || !public(pk.dir) {
			return err
		}
		out = append(out, pk)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
