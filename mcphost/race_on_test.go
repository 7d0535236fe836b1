//go:build race

package mcphost_test

// hugeResult is the size of the hostile server's huge result. Under the
// race detector 50 MB takes half a minute to encode and decode, so the
// race build uses 5 MB (still 80 times the cap); the normal build uses the
// 50 MB of the threat list.
const hugeResult = 5 << 20
