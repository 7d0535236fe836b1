// Package x is internal: it needs a doc.go and doc comments, but no example.
package x

// Fn is documented.
func Fn() {}
