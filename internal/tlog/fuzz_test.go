package tlog

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary bytes as a tier-1 file: Verify must never
// panic, and must only pass content that really is an intact chain.
func FuzzVerify(f *testing.F) {
	l1 := `{"seq":1,"prev":"` + GenesisPrev + `","msg":"a"}`
	l2 := `{"seq":2,"prev":"` + hashLine([]byte(l1)) + `","msg":"b"}`
	for _, s := range []string{l1 + "\n" + l2 + "\n", l2 + "\n" + l1 + "\n", "", "\n\n", "{", `{"seq":1}`, l1} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "audit.log"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir)
		if err != nil {
			if rep.Break == nil || rep.Break.Line < 1 {
				t.Fatalf("error without a located break: %v", err)
			}
			return
		}
		// Intact: re-check independently that every line links to the one before.
		prev := GenesisPrev
		for i, ln := range splitLines(data) {
			h, ok := parseHead(ln)
			if !ok || h.Seq != uint64(i+1) || h.Prev != prev {
				t.Fatalf("Verify passed a bad line %d: %q", i+1, ln)
			}
			prev = hashLine(ln)
		}
	})
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == '\n' {
			out = append(out, data[start:i])
			start = i + 1
		}
	}
	if start < len(data) {
		out = append(out, data[start:])
	}
	return out
}
