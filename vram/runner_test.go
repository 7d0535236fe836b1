package vram

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                      nil,
		"\x00":                                  nil,
		"ollama\x00runner\x00--model\x00/b\x00": {"ollama", "runner", "--model", "/b"},
		"sleep\x0010":                           {"sleep", "10"},
		"a\x00\x00b\x00":                        {"a", "", "b"},
	} {
		if got := ParseCmdline([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("ParseCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindProcesses(t *testing.T) {
	self := os.Getpid()
	pids, err := FindProcesses(func(argv []string) bool { return len(argv) > 0 && argv[0] == os.Args[0] })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, self) {
		t.Fatalf("FindProcesses did not find this test binary (pid %d) in %v", self, pids)
	}
	// A real runner, found by its command line.
	pid := startRunner(t, "ignore-term")
	isHelper := func(argv []string) bool { return len(argv) > 0 && argv[0] == os.Args[0] }
	pids, _ = FindProcesses(isHelper)
	if !slices.Contains(pids, pid) {
		t.Fatalf("helper pid %d not in %v", pid, pids)
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add([]byte("ollama\x00runner\x00"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		argv := ParseCmdline(data)
		if len(data) > 0 && len(strings.TrimRight(string(data), "\x00")) > 0 && len(argv) == 0 {
			t.Fatalf("non-empty cmdline %q parsed to nothing", data)
		}
		if strings.Join(argv, "\x00") != strings.TrimRight(string(data), "\x00") {
			t.Fatalf("round trip of %q failed: %q", data, argv)
		}
	})
}
