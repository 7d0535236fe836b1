package doclint

import (
	"errors"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// pending lists packages (slash paths relative to the module root) that are
// still being written, as "dir": "why". Their violations are logged (go test
// -v shows them) instead of failing TestDocs. TestDocs fails once a pending
// package is clean, so an entry is removed as soon as it can be. Every
// package is finished today, so it is empty; never add a finished package.
var pending = map[string]string{}

// TestDocs is the documentation gate of the module: see the package comment
// (doc.go) for the rules.
func TestDocs(t *testing.T) {
	root := moduleRoot(t)
	res, err := lintTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) == 0 {
		t.Fatalf("found no Go package under %s: is the test run from inside the module?", root)
	}
	dirs := make([]string, 0, len(res))
	for dir := range res {
		dirs = append(dirs, dir)
	}
	sort.Strings(dirs)
	for _, dir := range dirs {
		vs := res[dir]
		t.Run(dir, func(t *testing.T) {
			if why, ok := pending[dir]; ok {
				if len(vs) == 0 {
					t.Errorf("%s is in the pending map (%s) but has no documentation problems left: delete its entry from pending in internal/doclint/doclint_test.go", dir, why)
					return
				}
				t.Logf("pending (%s), not failing; %d problem(s):\n%s", why, len(vs), format(vs))
				return
			}
			if len(vs) > 0 {
				t.Errorf("%d documentation problem(s) in %s:\n%s", len(vs), dir, format(vs))
			}
		})
	}
	for _, dir := range slices.Sorted(maps.Keys(pending)) {
		if _, ok := res[dir]; !ok {
			t.Errorf("pending lists %q, which is not a package directory of the module: delete the entry from internal/doclint/doclint_test.go", dir)
		}
	}
}

// TestLintFixture checks the checker itself on a small tree under testdata
// whose violations are known.
func TestLintFixture(t *testing.T) {
	// The fixture is copied so that the file that must not parse can be
	// created under its .go name: kept as broken.go.txt in the repository,
	// it does not trip gofmt -l or editors.
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "tree"))); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(root, "broken", "broken.go")
	if err := os.Rename(broken+".txt", broken); err != nil {
		t.Fatal(err)
	}
	res, err := lintTree(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for dir, vs := range res {
		got[dir] = []string{}
		for _, v := range vs {
			got[dir] = append(got[dir], v.String())
		}
	}
	want := map[string][]string{
		"good": {},
		"bad": {
			`bad: public package bad has no runnable example: add bad/example_test.go with a func ExampleXxx() that prints what it shows and ends with an "// Output:" comment`,
			`bad/bad.go:9: exported type Undocumented has no doc comment: add "// Undocumented ..." on the line above it`,
			`bad/bad.go:12: exported method Documented.Undocumented has no doc comment: add "// Undocumented ..." on the line above it`,
			`bad/bad.go:16: exported method (*Documented).Ptr has no doc comment: add "// Ptr ..." on the line above it`,
			`bad/bad.go:18: exported func Undocumented2 has no doc comment: add "// Undocumented2 ..." on the line above it`,
			`bad/bad.go:20: exported const Loose has no doc comment: add "// Loose ..." on the line above it`,
			`bad/bad.go:29: exported var C, D has no doc comment: add "// C ..." on the line above it, or a comment on the whole var ( ... ) block`,
			`bad/bad.go:33: exported type Grouped has no doc comment: add "// Grouped ..." on the line above it`,
			`bad/bad_test.go:7: ExampleDocumented has no "// Output:" comment, so go test never runs it: end it with "// Output:" followed by the lines it prints`,
			`bad/doc.go:1: package bad has a doc.go without a package comment: add "// Package bad ..." directly above its package clause`,
		},
		"nodoc": {
			`nodoc: package nodoc has no doc.go: add nodoc/doc.go with the package overview ("// Package nodoc ...", what it is for and how to start) above "package nodoc"`,
		},
		"internal/x":    {},
		"cmd/tool":      {},
		"examples/walk": {},
		"examples/bare": {
			`examples/bare: example has no README.md: add examples/bare/README.md saying what it shows and how to run it (go run ./examples/bare)`,
			`examples/bare: example is not run as a test: add examples/bare/main_test.go that calls run(ctx, w) and checks what it prints`,
		},
		"broken": {
			`broken/broken.go:3:1: does not parse: expected declaration, found '}'`,
		},
	}
	for dir, w := range want {
		g, ok := got[dir]
		if !ok {
			t.Errorf("%s: not linted; linted %v", dir, slices.Sorted(maps.Keys(got)))
			continue
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", dir, strings.Join(g, "\n  "), strings.Join(w, "\n  "))
		}
	}
	for dir := range got {
		if _, ok := want[dir]; !ok {
			t.Errorf("%s: linted but not expected (testdata and nested modules must be skipped)", dir)
		}
	}
}

// moduleRoot walks up from the working directory (the package directory
// under go test) to the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the working directory; run the test with go test inside the module")
		}
		dir = parent
	}
}

// violation is one documentation problem: where (file:line relative to the
// tree's root, or a package directory) and what to do about it.
type violation struct {
	pos string
	msg string
}

func (v violation) String() string { return v.pos + ": " + v.msg }

func format(vs []violation) string {
	var b strings.Builder
	for _, v := range vs {
		b.WriteString("\t")
		b.WriteString(v.String())
		b.WriteString("\n")
	}
	return b.String()
}

// pkg is one directory's package: its non-test files by base name and its
// _test.go files (internal and external test packages alike).
type pkg struct {
	dir       string // slash path relative to the root, "." for the root
	name      string
	files     map[string]*ast.File
	fileOrder []string
	tests     []*ast.File
	testNames []string
	problems  []violation // parse errors and the like
}

// lintTree lints every package under root and returns the violations of each
// package directory (an empty slice for a clean package). Main packages are
// returned too, with no violations: they are linted for parse errors only.
func lintTree(root string) (map[string][]violation, error) {
	fset := token.NewFileSet()
	var pkgs []*pkg
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if p != root {
			name := d.Name()
			if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module is linted on its own
			}
		}
		pk, err := parseDir(fset, root, p)
		if err != nil {
			return err
		}
		if pk != nil {
			pkgs = append(pkgs, pk)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string][]violation, len(pkgs))
	for _, pk := range pkgs {
		vs := pk.problems
		if len(vs) == 0 {
			// The rules are checked only on packages that parse: on a
			// partial syntax tree they would report noise.
			vs = check(fset, root, pk)
		}
		sort.SliceStable(vs, func(i, j int) bool { return lessPos(vs[i].pos, vs[j].pos) })
		if vs == nil {
			vs = []violation{}
		}
		out[pk.dir] = vs
	}
	return out, nil
}

// lessPos orders "file:line" positions by file, then numerically by line.
func lessPos(a, b string) bool {
	fa, la := splitPos(a)
	fb, lb := splitPos(b)
	if fa != fb {
		return fa < fb
	}
	return la < lb
}

func splitPos(p string) (string, int) {
	file, rest, ok := strings.Cut(p, ".go:")
	if !ok {
		return p, 0
	}
	n := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return file + ".go", n
}

// parseDir parses the .go files of one directory; it returns nil when the
// directory holds no non-test Go file (so no package).
func parseDir(fset *token.FileSet, root, dir string) (*pkg, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return nil, err
	}
	pk := &pkg{dir: filepath.ToSlash(rel), files: map[string]*ast.File{}}
	names := map[string]int{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		file := filepath.Join(dir, e.Name())
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			pk.problems = append(pk.problems, parseProblem(root, file, err))
			if f == nil || f.Name == nil {
				continue
			}
		}
		if ignored(f) {
			continue
		}
		if strings.HasSuffix(e.Name(), "_test.go") {
			pk.tests = append(pk.tests, f)
			pk.testNames = append(pk.testNames, e.Name())
			continue
		}
		pk.files[e.Name()] = f
		pk.fileOrder = append(pk.fileOrder, e.Name())
		names[f.Name.Name]++
	}
	if len(pk.files) == 0 {
		if len(pk.problems) > 0 {
			return pk, nil
		}
		return nil, nil
	}
	for n, c := range names {
		if c > names[pk.name] || (c == names[pk.name] && n < pk.name) {
			pk.name = n
		}
	}
	for _, fn := range pk.fileOrder {
		if f := pk.files[fn]; f.Name.Name != pk.name {
			pk.problems = append(pk.problems, violation{
				pos: path.Join(pk.dir, fn) + ":1",
				msg: fmt.Sprintf("declares package %s but the other files of %s declare package %s: one directory holds one package", f.Name.Name, pk.dir, pk.name),
			})
		}
	}
	return pk, nil
}

func parseProblem(root, file string, err error) violation {
	var list interface{ Unwrap() []error }
	if errors.As(err, &list) && len(list.Unwrap()) > 0 {
		err = list.Unwrap()[0]
	}
	msg := err.Error()
	pos := relFile(root, file)
	if prefix := file + ":"; strings.HasPrefix(msg, prefix) {
		// "file:line:col: message" → position relative to the root.
		rest := strings.TrimPrefix(msg, prefix)
		if i := strings.Index(rest, ": "); i >= 0 {
			pos += ":" + rest[:i]
			msg = rest[i+2:]
		}
	}
	return violation{pos: pos, msg: "does not parse: " + msg}
}

// ignored reports whether a file is excluded from every build by a
// "//go:build ignore" line (generators and the like).
func ignored(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() > f.Package {
			break
		}
		for _, c := range cg.List {
			if strings.TrimSpace(c.Text) == "//go:build ignore" {
				return true
			}
		}
	}
	return false
}

func relFile(root, file string) string {
	rel, err := filepath.Rel(root, file)
	if err != nil {
		return filepath.ToSlash(file)
	}
	return filepath.ToSlash(rel)
}

// public reports whether a package directory is part of the SDK's public
// surface, which must show a runnable example.
func public(dir string) bool {
	if dir == "." {
		return true
	}
	parts := strings.Split(dir, "/")
	if parts[0] == "cmd" || parts[0] == "examples" {
		return false
	}
	return !slices.Contains(parts, "internal")
}

func hasText(cg *ast.CommentGroup) bool {
	return cg != nil && strings.TrimSpace(cg.Text()) != ""
}

// check applies the rules of the package comment to one package.
func check(fset *token.FileSet, root string, pk *pkg) []violation {
	if pk.name == "main" && strings.HasPrefix(pk.dir, "examples/") {
		return checkWalkthrough(root, pk)
	}
	if pk.name == "main" || pk.name == "" {
		return nil
	}
	var vs []violation
	docFile, ok := pk.files["doc.go"]
	switch {
	case !ok:
		vs = append(vs, violation{
			pos: pk.dir,
			msg: fmt.Sprintf("package %s has no doc.go: add %s with the package overview (\"// Package %s ...\", what it is for and how to start) above \"package %s\"",
				pk.name, path.Join(pk.dir, "doc.go"), pk.name, pk.name),
		})
	case !hasText(docFile.Doc) || !strings.HasPrefix(docFile.Doc.Text(), "Package "+pk.name):
		vs = append(vs, violation{
			pos: path.Join(pk.dir, "doc.go") + ":1",
			msg: fmt.Sprintf("package %s has a doc.go without a package comment: add \"// Package %s ...\" directly above its package clause", pk.name, pk.name),
		})
	}
	for _, fn := range pk.fileOrder {
		vs = append(vs, checkFile(fset, root, pk.files[fn])...)
	}
	if public(pk.dir) {
		vs = append(vs, checkExamples(fset, root, pk)...)
	}
	return vs
}

func missing(fset *token.FileSet, root string, at token.Pos, what, name, alt string) violation {
	p := fset.Position(at)
	msg := fmt.Sprintf("exported %s has no doc comment: add \"// %s ...\" on the line above it", what, name)
	if alt != "" {
		msg += ", or " + alt
	}
	return violation{pos: fmt.Sprintf("%s:%d", relFile(root, p.Filename), p.Line), msg: msg}
}

// checkFile reports the exported identifiers of one file that lack a doc
// comment.
func checkFile(fset *token.FileSet, root string, f *ast.File) []violation {
	var vs []violation
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || hasText(d.Doc) {
				continue
			}
			if d.Recv == nil {
				vs = append(vs, missing(fset, root, d.Pos(), "func "+d.Name.Name, d.Name.Name, ""))
				continue
			}
			recv, ptr := receiver(d.Recv)
			if !ast.IsExported(recv) {
				continue // methods of unexported types are not API
			}
			if ptr {
				recv = "(*" + recv + ")"
			}
			vs = append(vs, missing(fset, root, d.Pos(), "method "+recv+"."+d.Name.Name, d.Name.Name, ""))
		case *ast.GenDecl:
			grouped := d.Lparen.IsValid()
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() || hasText(s.Doc) {
						continue
					}
					if (!grouped || len(d.Specs) == 1) && hasText(d.Doc) {
						continue
					}
					vs = append(vs, missing(fset, root, s.Pos(), "type "+s.Name.Name, s.Name.Name, ""))
				case *ast.ValueSpec:
					var exported []string
					for _, n := range s.Names {
						if n.IsExported() {
							exported = append(exported, n.Name)
						}
					}
					if len(exported) == 0 || hasText(s.Doc) || hasText(s.Comment) || hasText(d.Doc) {
						continue
					}
					kind := d.Tok.String()
					alt := ""
					if grouped {
						alt = fmt.Sprintf("a comment on the whole %s ( ... ) block", kind)
					}
					vs = append(vs, missing(fset, root, s.Pos(), kind+" "+strings.Join(exported, ", "), exported[0], alt))
				}
			}
		}
	}
	return vs
}

// receiver returns the base type name of a method's receiver and whether it
// is a pointer receiver.
func receiver(fl *ast.FieldList) (string, bool) {
	if fl == nil || len(fl.List) == 0 {
		return "", false
	}
	expr := fl.List[0].Type
	ptr := false
	if st, ok := expr.(*ast.StarExpr); ok {
		expr, ptr = st.X, true
	}
	switch e := expr.(type) {
	case *ast.IndexExpr:
		expr = e.X
	case *ast.IndexListExpr:
		expr = e.X
	}
	if id, ok := expr.(*ast.Ident); ok {
		return id.Name, ptr
	}
	return "", ptr
}

// checkExamples requires at least one example that go test runs (one with an
// "// Output:" comment) and names the examples that go test silently skips.
func checkExamples(fset *token.FileSet, root string, pk *pkg) []violation {
	var vs []violation
	runnable := 0
	for _, f := range pk.tests {
		for _, ex := range doc.Examples(f) {
			if ex.Output != "" || ex.EmptyOutput {
				runnable++
				continue
			}
			name := "Example" + ex.Name
			p := fset.Position(exampleFunc(f, name))
			vs = append(vs, violation{
				pos: fmt.Sprintf("%s:%d", relFile(root, p.Filename), p.Line),
				msg: fmt.Sprintf("%s has no \"// Output:\" comment, so go test never runs it: end it with \"// Output:\" followed by the lines it prints", name),
			})
		}
	}
	if runnable == 0 {
		vs = append(vs, violation{
			pos: pk.dir,
			msg: fmt.Sprintf("public package %s has no runnable example: add %s with a func ExampleXxx() that prints what it shows and ends with an \"// Output:\" comment",
				pk.name, path.Join(pk.dir, "example_test.go")),
		})
	}
	return vs
}

// exampleFunc finds the declaration of an example function by name.
func exampleFunc(f *ast.File, name string) token.Pos {
	for _, decl := range f.Decls {
		if fd, ok := decl.(*ast.FuncDecl); ok && fd.Name.Name == name {
			return fd.Pos()
		}
	}
	return f.Package
}

// checkWalkthrough holds an examples/<name> program to the walkthrough
// rule: each walkthrough has a README.md and is also run as a test.
func checkWalkthrough(root string, pk *pkg) []violation {
	var vs []violation
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(pk.dir), "README.md")); err != nil {
		vs = append(vs, violation{
			pos: pk.dir,
			msg: fmt.Sprintf("example has no README.md: add %s saying what it shows and how to run it (go run ./%s)", path.Join(pk.dir, "README.md"), pk.dir),
		})
	}
	if len(pk.tests) == 0 {
		vs = append(vs, violation{
			pos: pk.dir,
			msg: fmt.Sprintf("example is not run as a test: add %s that calls run(ctx, w) and checks what it prints", path.Join(pk.dir, "main_test.go")),
		})
	}
	return vs
}
