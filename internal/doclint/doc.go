// Package doclint holds a test that keeps the module's documentation
// complete. It has no API: run it with
//
//	go test ./internal/doclint/
//
// The test parses every package of the module (go/parser and go/ast over the
// source tree; directories named testdata, vendor, or starting with "." or
// "_" are skipped, and so are nested modules) and fails, listing each
// violation as file:line with what to add, when
//
//   - a package that is neither a test nor a main package has no doc.go, or
//     its doc.go carries no package comment ("// Package name ...");
//   - an exported identifier has no doc comment: a type, a function, a method
//     of an exported type, or a const or var (in a parenthesised const or var
//     block a comment on the whole block counts, and so does a comment at the
//     end of the identifier's line);
//   - a public package (not under internal/, cmd/ or examples/) has no
//     runnable example: a func Example... in a _test.go file that ends with
//     an "// Output:" comment, so that go test runs it and go doc shows it;
//   - a walkthrough under examples/ (a main package) has no README.md or is
//     not run as a test (no _test.go file);
//   - a comment cites a document that does not ship with the module (design
//     notes, spec digests, section signs, line numbers of the original
//     specification, the issue tracker): checked in what `go doc` shows of a
//     public package, and in every comment of every file under internal/
//     and cmd/, tests included. The comment must state the fact itself.
//
// Other main packages (cmd/...) are only checked to parse.
//
// Packages still being written may be listed in the test's pending map; their
// violations are logged instead of failing the test, and the test fails once
// a pending package is clean so that its entry gets removed.
package doclint
