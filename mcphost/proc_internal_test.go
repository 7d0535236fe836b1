package mcphost

import (
	"io"
	"strings"
	"testing"
)

func TestLineLimitEndsTheStreamAtAnOverlongLine(t *testing.T) {
	l := &lineLimit{r: strings.NewReader("short\n" + strings.Repeat("x", 20) + "\nnever read\n"), max: 10}
	b, err := io.ReadAll(l)
	if err != nil || !l.exceeded.Load() {
		t.Fatalf("err %v, exceeded %v", err, l.exceeded.Load())
	}
	if strings.Contains(string(b), "never read") || strings.Contains(string(b), strings.Repeat("x", 11)) {
		t.Errorf("read past the overlong line: %q", b)
	}
	ok := &lineLimit{r: strings.NewReader(strings.Repeat(strings.Repeat("y", 10)+"\n", 100)), max: 10}
	if b, _ := io.ReadAll(ok); len(b) != 1100 || ok.exceeded.Load() {
		t.Errorf("lines at the limit were cut: %d bytes", len(b))
	}
}
