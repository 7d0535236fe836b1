package sandbox

import (
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/sockproxy"
)

// Extra labels are checked (every problem at once) and never replace the
// sandbox's own.
func TestConfigLabels(t *testing.T) {
	if _, err := (Config{Labels: map[string]string{"talos.instance": "0123abcd"}}).withDefaults("/tmp"); err != nil {
		t.Fatalf("a good label: %v", err)
	}
	_, err := (Config{Labels: map[string]string{
		"Bad Key":       "x",
		LabelRun:        "x",
		"talos.note":    "line\nbreak",
		"talos.managed": "false",
	}}).withDefaults("/tmp")
	if err == nil {
		t.Fatal("bad labels accepted")
	}
	for _, want := range []string{`"Bad Key"`, `"talos.sandbox.run"`, `"talos.managed"`, `Labels[talos.note] is "line\x0abreak"`, "sets this label itself", "printable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s:\n%v", want, err)
		}
	}
	l := containerLabels(map[string]string{"talos.instance": "h1"}, "echo@1.0.0", "run1")
	if l["talos.instance"] != "h1" || l[sockproxy.LabelManaged] != sockproxy.LabelManagedValue || l[LabelSkill] != "echo@1.0.0" || l[LabelRun] != "run1" || len(l) != 4 {
		t.Errorf("labels %v", l)
	}
	if l := containerLabels(nil, "s", "r"); len(l) != 3 {
		t.Errorf("labels without extras %v", l)
	}
}
