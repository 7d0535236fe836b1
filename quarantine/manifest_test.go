package quarantine

import (
	"errors"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
)

const goodManifest = `id: weather_report
version: 1.2.0
language: python
entry: main.py
description: Daily weather summary
capabilities:
  network: [api.weather.gov, "example.org:8443", 10.0.0.1]
  files:
    read: [data/]
    write: [/tmp/out/]
  subprocess: false
dependencies:
  - name: requests
    version: "==2.32.3"
    sha256: 70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6
`

func TestParseManifestAcceptsAFullManifest(t *testing.T) {
	m, err := ParseManifest([]byte(goodManifest))
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "weather_report" || m.Version != "1.2.0" || m.Language != LanguagePython || m.Entry != "main.py" {
		t.Fatalf("parsed %+v", m)
	}
	if got := m.Dependencies[0].Requirement(); got != "requests==2.32.3 --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6" {
		t.Fatalf("Requirement() = %q", got)
	}
	if len(m.Capabilities.Network) != 3 || m.Capabilities.Files.Write[0] != "/tmp/out/" {
		t.Fatalf("capabilities %+v", m.Capabilities)
	}
}

func manifestWith(field, value string) string {
	lines := strings.Split("id: abc\nversion: 1.0.0\nlanguage: python\nentry: main.py", "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, field+":") {
			lines[i] = field + ": " + value
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestManifestIDAndVersion(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		ok           bool
	}{
		{"id", "abc", true},
		{"id", strings.Repeat("a", 64), true},
		{"id", "a_1", true},
		{"id", "ab", false},
		{"id", "Abc", false},
		{"id", "1abc", false},
		{"id", strings.Repeat("a", 65), false},
		{"id", "ab-c", false},
		{"version", "1.2.3", true},
		{"version", "0.0.0", true},
		{"version", "1.2", false},
		{"version", "1.2.3-rc1", false},
		{"version", "1.2.3+b", false},
		{"version", "01.2.3", false},
		{"version", "v1.2.3", false},
		{"language", "python", true},
		{"language", "javascript", false},
		{"language", "typescript", false},
		{"language", "ruby", false},
		{"entry", "main.py", true},
		{"entry", "src/main.py", true},
		{"entry", "../main.py", false},
		{"entry", "/main.py", false},
		{"entry", "a/../../main.py", false},
		{"entry", "main.sh", false},
	} {
		_, err := ParseManifest([]byte(manifestWith(tc.field, tc.value)))
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: err = %v, want ok=%v", tc.field, tc.value, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s %q: error does not name the field: %v", tc.field, tc.value, err)
		}
		if err != nil && !errors.Is(err, talos.ErrSkillSyntax) {
			t.Errorf("%s %q: error is not T301: %v", tc.field, tc.value, err)
		}
	}
}

func TestManifestJavaScriptIsRefusedClearly(t *testing.T) {
	_, err := ParseManifest([]byte(manifestWith("language", "javascript")))
	if err == nil || !strings.Contains(err.Error(), "only python skills can run") {
		t.Fatalf("err = %v, want a clear refusal of javascript", err)
	}
}

func TestParseManifestReportsEveryProblemAtOnce(t *testing.T) {
	in := `id: X
version: "1.2"
language: cobol
entry: ../evil.py
surprise: 1
capabilities:
  network: ["http://evil.example/x", "*.example.org", "host:0"]
  files:
    write: [/etc/passwd, ../up]
dependencies:
  - name: requests
    version: ">=2.0"
  - name: "bad name"
    version: "==1.0"
    sha256: ABC
`
	_, err := ParseManifest([]byte(in))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`id "X"`, `version "1.2"`, `language "cobol"`, `entry "../evil.py"`, "surprise",
		`capabilities.network[0] "http://evil.example/x"`, `capabilities.network[1]`, `capabilities.network[2] "host:0"`,
		`capabilities.files.write[0] "/etc/passwd"`, `capabilities.files.write[1] "../up"`,
		`dependencies[0].version ">=2.0"`, "dependencies[0].sha256 is missing",
		`dependencies[1].name "bad name"`, `dependencies[1].sha256 "ABC"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %s:\n%s", want, msg)
		}
	}
}

func TestParseManifestRefusesOddDocuments(t *testing.T) {
	for name, in := range map[string]string{
		"empty":         "",
		"not yaml":      "id: [",
		"two documents": manifestWith("id", "abc") + "---\nid: other\n",
		"list":          "- a\n- b\n",
		"huge":          "description: " + strings.Repeat("x", MaxManifestBytes) + "\n",
		"wrong type":    manifestWith("id", "abc") + "capabilities:\n  subprocess: maybe\n",
		"duplicate dep": manifestWith("id", "abc") + "dependencies:\n- {name: Foo_Bar, version: '==1', sha256: " + strings.Repeat("a", 64) + "}\n- {name: foo-bar, version: '==1', sha256: " + strings.Repeat("a", 64) + "}\n",
		"control chars": manifestWith("id", "abc") + "description: \"a\\x1b[2Jb\"\n",
	} {
		if _, err := ParseManifest([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range []string{goodManifest, manifestWith("id", "abc"), "", "id: [", "a: &a [*a, *a]\n", "id: abc\nversion: 1.0.0\n---\n", "capabilities: {network: [\"::1\"]}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest and error both returned")
			}
			if !errors.Is(err, talos.ErrSkillSyntax) {
				t.Fatalf("error without code T301: %v", err)
			}
			return
		}
		if !idPattern.MatchString(m.ID) || !versionPattern.MatchString(m.Version) || m.Language != LanguagePython || !relInside(m.Entry) {
			t.Fatalf("accepted an invalid manifest: %+v", m)
		}
		for _, d := range m.Dependencies {
			if !strings.HasPrefix(d.Version, "==") || len(d.SHA256) != 64 {
				t.Fatalf("accepted an unpinned dependency: %+v", d)
			}
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest does not validate: %v", err)
		}
	})
}
