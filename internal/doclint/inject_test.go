package doclint

import (
	"go/ast"
	"go/token"
	"strings"
	"testing"
)

// TestConstructorsInjectOneWay keeps one way of giving a public type its
// dependencies: New(cfg Config, deps...) — settings and the logger
// (Config.Logger, nil discards) in the Config struct, collaborators as
// parameters after it. It fails, naming the constructor or field, when a
// public package
//
//   - has an exported New... function taking a *slog.Logger parameter
//     (the logger belongs in its Config);
//   - has an exported New... function taking a struct of collaborators
//     (a parameter whose type is named Deps);
//   - has a ...Config struct with a field whose type is an interface the
//     package declares (a collaborator hidden among the settings).
//
// injectionExceptions lists the constructors that deviate on purpose,
// with why; the test fails once a listed one follows the shape, so the
// entry is removed.
func TestConstructorsInjectOneWay(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var problems []string
	for _, pk := range publicPackages(t, root, fset) {
		problems = append(problems, injectionProblems(fset, root, pk)...)
	}
	for _, p := range problems {
		if why, ok := exceptionFor(p); ok {
			t.Logf("%s (exception: %s)", p, why)
			continue
		}
		t.Error(p)
	}
	for key := range injectionExceptions {
		found := false
		for _, p := range problems {
			if strings.Contains(p, ": "+key+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s follows the constructor shape now: remove it from injectionExceptions", key)
		}
	}
}

// injectionExceptions maps a constructor (package.Name as the problems name
// it) to why it deviates.
var injectionExceptions = map[string]string{
	"orchestrator.New": "eight collaborators of which six are optional (history, memory, VRAM, tools, tokens, budget): as parameters a caller would pass a row of nils that no reader can match to their roles, so they stay named fields of Deps; the two required ones are checked by New",
}

func exceptionFor(problem string) (string, bool) {
	for key, why := range injectionExceptions {
		if strings.Contains(problem, ": "+key+" ") {
			return why, true
		}
	}
	return "", false
}

func injectionProblems(fset *token.FileSet, root string, pk *pkg) []string {
	ifaces := map[string]bool{}
	for _, f := range pk.files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, s := range gd.Specs {
				if ts := s.(*ast.TypeSpec); ts != nil {
					if _, ok := ts.Type.(*ast.InterfaceType); ok {
						ifaces[ts.Name.Name] = true
					}
				}
			}
		}
	}
	var out []string
	at := func(pos token.Pos) string {
		p := fset.Position(pos)
		return relFile(root, p.Filename) + ":" + itoa(p.Line)
	}
	for _, fn := range pk.fileOrder {
		f := pk.files[fn]
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil || !d.Name.IsExported() || !strings.HasPrefix(d.Name.Name, "New") {
					continue
				}
				for _, field := range d.Type.Params.List {
					switch typ := exprString(field.Type); {
					case typ == "*slog.Logger":
						out = append(out, at(field.Pos())+": "+pk.dir+"."+d.Name.Name+" takes a *slog.Logger parameter: give its Config a Logger field (nil discards) instead")
					case typ == "Deps" || strings.HasSuffix(typ, ".Deps"):
						out = append(out, at(field.Pos())+": "+pk.dir+"."+d.Name.Name+" takes a Deps struct: pass each collaborator as a parameter after the Config")
					}
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, s := range d.Specs {
					ts := s.(*ast.TypeSpec)
					st, ok := ts.Type.(*ast.StructType)
					if !ok || !strings.HasSuffix(ts.Name.Name, "Config") {
						continue
					}
					for _, field := range st.Fields.List {
						if id, ok := field.Type.(*ast.Ident); ok && ifaces[id.Name] {
							for _, n := range field.Names {
								out = append(out, at(field.Pos())+": "+pk.dir+"."+ts.Name.Name+"."+n.Name+" is a collaborator ("+id.Name+") among the settings: take it as a parameter of the constructor after the Config")
							}
						}
					}
				}
			}
		}
	}
	return out
}

// exprString renders a parameter type such as *slog.Logger or Deps.
func exprString(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.StarExpr:
		return "*" + exprString(x.X)
	case *ast.SelectorExpr:
		return exprString(x.X) + "." + x.Sel.Name
	case *ast.Ellipsis:
		return "..." + exprString(x.Elt)
	}
	return ""
}
