//go:build !race

package mcphost_test

// hugeResult is the size of the hostile server's huge result (see
// race_on_test.go for the race build's smaller one).
const hugeResult = 50 << 20
