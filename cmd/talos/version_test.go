package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	old := version
	version = "4.0.1-test"
	defer func() { version = old }()
	out, _, err := talosCmd(context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"talos 4.0.1-test", "commit ", runtime.Version()} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = talosCmd(context.Background(), "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	if b.Version != "4.0.1-test" || b.GoVersion != runtime.Version() || b.Commit == "" {
		t.Fatalf("%+v", b)
	}
}
