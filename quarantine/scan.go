package quarantine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Severity ranks a scan finding. Critical and high findings fail a scan.
type Severity string

// Severities, most severe first.
const (
	SeverityCritical Severity = "critical"
	SeverityHigh     Severity = "high"
	SeverityMedium   Severity = "medium"
	SeverityLow      Severity = "low"
	SeverityInfo     Severity = "info"
)

// Fails reports whether a finding of severity s fails the scan.
func (s Severity) Fails() bool { return s == SeverityCritical || s == SeverityHigh }

func (s Severity) rank() int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityHigh:
		return 1
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 3
	}
	return 4
}

// Finding is one thing the scanner noticed.
type Finding struct {
	Severity Severity `json:"severity"`
	Rule     string   `json:"rule"` // such as "NET-001"
	File     string   `json:"file"` // relative to the skill folder
	Line     int      `json:"line"` // 1-based; 0 for the whole file
	Message  string   `json:"message"`
	Snippet  string   `json:"snippet,omitempty"` // the line, clipped and escaped
}

// String formats the finding as "high NET-001 main.py:3: message".
func (f Finding) String() string {
	return fmt.Sprintf("%s %s %s:%d: %s", f.Severity, f.Rule, f.File, f.Line, f.Message)
}

// Report is the outcome of a static scan.
type Report struct {
	Findings []Finding `json:"findings"` // most severe first, then by file and line
	Hash     string    `json:"hash"`     // content hash of the files scanned
}

// Passed reports whether no finding is critical or high.
func (r Report) Passed() bool {
	for _, f := range r.Findings {
		if f.Severity.Fails() {
			return false
		}
	}
	return true
}

// Blocking returns the critical and high findings.
func (r Report) Blocking() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity.Fails() {
			out = append(out, f)
		}
	}
	return out
}

// The scanner's Python rules: patterns matched line by line, with comments
// removed, over every .py file. They are deliberately broad: a scan that
// fails wrongly costs a person a look; one that passes wrongly lets code run.
var (
	reNetImport   = regexp.MustCompile(`^\s*(?:import|from)\s+(socket|ssl|urllib|urllib2|urllib3|requests|httpx|aiohttp|http|ftplib|smtplib|poplib|imaplib|telnetlib|paramiko|websocket|websockets|xmlrpc|socketserver|dns|pycurl)\b`)
	reNetCall     = regexp.MustCompile(`\b(?:socket\.(?:socket|create_connection|getaddrinfo|gethostbyname)|asyncio\.open_connection|urlopen)\s*\(`)
	reURL         = regexp.MustCompile(`\b(?:https?|ftp|wss?)://([^/\s'"?#]+)`)
	reProcImport  = regexp.MustCompile(`^\s*(?:import|from)\s+(subprocess|pty|multiprocessing|pexpect|sh)\b`)
	reProcCall    = regexp.MustCompile(`\bos\.(?:system|popen|exec[lv]p?e?|spawn[lv]p?e?|fork|forkpty|posix_spawnp?|kill|killpg|setsid|daemon)\s*\(`)
	reEval        = regexp.MustCompile(`(?:^|[^\w.])(eval|exec|compile|execfile|__import__)\s*\(`)
	reDynImport   = regexp.MustCompile(`\bimportlib\b|\b__builtins__\b|\bbuiltins\b|\bglobals\s*\(\s*\)\s*\[|\bgetattr\s*\(\s*(?:__builtins__|builtins|os|sys|subprocess)\b`)
	reDeserialize = regexp.MustCompile(`\b(?:marshal|pickle|cPickle|dill|shelve)\.loads?\s*\(|\bimport\s+(?:marshal|pickle|dill)\b`)
	reNative      = regexp.MustCompile(`^\s*(?:import|from)\s+(ctypes|cffi|_ctypes)\b`)
	reDecode      = regexp.MustCompile(`\b(?:b64decode|b32decode|b85decode|a85decode|decodebytes|fromhex|unhexlify|decompress|rot13|rot_13)\b|codecs\.decode\s*\(`)
	reBlob        = regexp.MustCompile(`[A-Za-z0-9+/]{200,}={0,2}|(?:\\x[0-9a-fA-F]{2}){50,}|[0-9a-fA-F]{256,}`)
	reWriteCall   = regexp.MustCompile(`\bopen\s*\([^,)]+,\s*(?:mode\s*=\s*)?['"][rbt]*[wax+][rwabxt+]*['"]|\.(?:write_text|write_bytes|mkdir|touch|unlink|rmdir|chmod|rename|symlink_to)\s*\(|\b(?:os\.(?:remove|unlink|rmdir|removedirs|makedirs|mkdir|rename|replace|chmod|chown|symlink|link|truncate)|shutil\.(?:rmtree|move|copy|copy2|copyfile|copytree|chown))\s*\(`)
	rePathLit     = regexp.MustCompile(`['"]((?:/|~|\.\./)[^'"]*)['"]`)
	reDockerSock  = regexp.MustCompile(`docker\.sock|/var/run/docker|DOCKER_HOST`)
	reHostSecrets = regexp.MustCompile(`/etc/(?:shadow|gshadow|sudoers|passwd)|/root\b|\.ssh/|/proc/(?:1|self)/(?:root|environ|mem)|/sys/|/dev/(?:mem|kmem|sd|nvme)|/var/lib/docker|/home/`)
	reReqLine     = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([0-9][0-9A-Za-z.]*)\s+(?:\\\s*)?--hash=sha256:([0-9a-f]{64})\s*$`)
)

// compiledExt are extensions of files that cannot be reviewed as text.
var compiledExt = map[string]bool{".pyc": true, ".pyo": true, ".so": true, ".pyd": true, ".dll": true, ".dylib": true, ".exe": true, ".whl": true, ".egg": true, ".zip": true, ".tar": true, ".gz": true, ".xz": true, ".bz2": true, ".7z": true, ".jar": true}

// otherCodeExt are extensions of code in languages the sandbox does not
// check.
var otherCodeExt = map[string]bool{".sh": true, ".bash": true, ".zsh": true, ".js": true, ".mjs": true, ".ts": true, ".rb": true, ".pl": true, ".php": true, ".lua": true}

// ScanDir statically scans the skill folder dir against its manifest m,
// before anything runs: network, subprocess, eval/exec, native code and
// deserialisation not declared in the manifest; writes outside the folder;
// references to the Docker socket and host secrets; long encoded blobs,
// and critical when a file that holds one also decodes and executes;
// compiled or foreign-language files; and requirements files whose lines
// are not pinned with == and a sha256 hash or that name a package the
// manifest does not. It reads dir as HashDir does (refusing links and
// special files) and returns the content hash it scanned.
func ScanDir(dir string, m *Manifest) (Report, error) {
	var findings []Finding
	var rep Report
	c, err := walkSkill("quarantine.ScanDir", dir, func(rel string, r io.Reader) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		findings = append(findings, scanFile(rel, data, m)...)
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Hash = c.Hash
	entryFound := false
	for _, f := range c.Files {
		if f.Path == m.Entry {
			entryFound = true
		}
	}
	if !entryFound {
		findings = append(findings, Finding{Severity: SeverityHigh, Rule: "MAN-001", File: ManifestName, Message: fmt.Sprintf("entry point %q is not a file in the skill's folder", clip(m.Entry, 80))})
	}
	sort.SliceStable(findings, func(i, j int) bool {
		a, b := findings[i], findings[j]
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Rule < b.Rule
	})
	rep.Findings = findings
	return rep, nil
}

func scanFile(rel string, data []byte, m *Manifest) []Finding {
	ext := strings.ToLower(path.Ext(rel))
	base := strings.ToLower(path.Base(rel))
	var out []Finding
	add := func(sev Severity, rule string, line int, snippet, format string, args ...any) {
		out = append(out, Finding{Severity: sev, Rule: rule, File: rel, Line: line, Message: fmt.Sprintf(format, args...), Snippet: clip(strings.TrimSpace(snippet), 120)})
	}
	switch {
	case rel == ManifestName:
		return nil
	case compiledExt[ext] || bytes.HasPrefix(data, []byte("\x7fELF")) || bytes.HasPrefix(data, []byte("MZ")):
		add(SeverityHigh, "BIN-001", 0, "", "compiled code or an archive cannot be reviewed: ship Python source only")
		return out
	case otherCodeExt[ext] || bytes.HasPrefix(data, []byte("#!")) && ext != ".py":
		add(SeverityHigh, "LANG-001", 0, "", "code in a language other than Python (%s) is not allowed in a python skill", ext)
		return out
	case strings.HasPrefix(base, "requirements") && ext == ".txt":
		return scanRequirements(rel, data, m)
	case base == "setup.py" || base == "pyproject.toml" || base == "setup.cfg":
		add(SeverityHigh, "DEP-003", 0, "", "package build files run code at install time: declare dependencies in skill.yaml instead")
		return out
	case ext != ".py":
		// Data files: only look for payloads.
		if loc := reBlob.FindIndex(data); loc != nil {
			add(SeverityMedium, "OBF-001", lineOf(data, loc[0]), "", "long encoded blob in a data file")
		}
		return out
	}

	var hasBlob, hasDecode, hasExec bool
	blobLine := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxSkillBytes+1)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := stripComment(raw)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if reNetImport.MatchString(line) || reNetCall.MatchString(line) {
			if len(m.Capabilities.Network) == 0 {
				add(SeverityHigh, "NET-001", n, raw, "network use, but the manifest declares no network hosts (capabilities.network)")
			} else {
				add(SeverityInfo, "NET-001", n, raw, "network use; the sandbox allows only the declared hosts")
			}
		}
		for _, mm := range reURL.FindAllStringSubmatch(line, -1) {
			if !hostDeclared(mm[1], m.Capabilities.Network) {
				add(SeverityHigh, "NET-002", n, raw, "address of host %q, which capabilities.network does not declare", clip(mm[1], 60))
			}
		}
		if reProcImport.MatchString(line) || reProcCall.MatchString(line) {
			if m.Capabilities.Subprocess {
				add(SeverityLow, "PROC-001", n, raw, "starts processes (declared in capabilities.subprocess)")
			} else {
				add(SeverityHigh, "PROC-001", n, raw, "starts or signals processes, but capabilities.subprocess is not declared")
			}
		}
		if mm := reEval.FindStringSubmatch(line); mm != nil {
			hasExec = true
			add(SeverityHigh, "EXEC-001", n, raw, "%s() runs code built at run time, which cannot be reviewed", mm[1])
		}
		if reDynImport.MatchString(line) {
			hasExec = true
			add(SeverityHigh, "EXEC-002", n, raw, "dynamic import or access to builtins hides which code runs")
		}
		if reDeserialize.MatchString(line) {
			hasExec = true
			add(SeverityHigh, "EXEC-003", n, raw, "marshal/pickle deserialisation can run arbitrary code")
		}
		if reNative.MatchString(line) {
			add(SeverityHigh, "NATIVE-001", n, raw, "native code through ctypes/cffi escapes every Python-level check")
		}
		if reDockerSock.MatchString(line) {
			add(SeverityCritical, "ESC-001", n, raw, "refers to the Docker socket: a way out of the sandbox")
		}
		if reHostSecrets.MatchString(line) {
			add(SeverityHigh, "FS-002", n, raw, "refers to host system files or other users' files")
		}
		if reWriteCall.MatchString(line) {
			for _, mm := range rePathLit.FindAllStringSubmatch(line, -1) {
				if !writeDeclared(mm[1], m.Capabilities.Files.Write) {
					add(SeverityHigh, "FS-001", n, raw, "writes to %q, outside the skill's folder and not declared in capabilities.files.write", clip(mm[1], 60))
				}
			}
		}
		if reDecode.MatchString(line) {
			hasDecode = true
		}
		if loc := reBlob.FindStringIndex(line); loc != nil {
			hasBlob = true
			if blobLine == 0 {
				blobLine = n
			}
		}
	}
	if sc.Err() != nil {
		add(SeverityHigh, "OBF-003", 0, "", "a line too long to scan: %v", sc.Err())
	}
	switch {
	case hasBlob && hasDecode && hasExec:
		add(SeverityCritical, "OBF-002", blobLine, "", "long encoded blob in a file that also decodes and executes code: an obfuscated payload")
	case hasBlob:
		add(SeverityMedium, "OBF-001", blobLine, "", "long encoded blob; data belongs in a data file")
	}
	return out
}

func scanRequirements(rel string, data []byte, m *Manifest) []Finding {
	var out []Finding
	declared := map[string]Dependency{}
	for _, d := range m.Dependencies {
		declared[normName(d.Name)] = d
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxSkillBytes+1)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(stripComment(raw))
		if line == "" {
			continue
		}
		mm := reReqLine.FindStringSubmatch(line)
		if mm == nil {
			out = append(out, Finding{Severity: SeverityHigh, Rule: "DEP-001", File: rel, Line: n, Snippet: clip(line, 120),
				Message: "requirement not pinned as name==version --hash=sha256:<64 hex> (options, URLs and ranges are refused)"})
			continue
		}
		d, ok := declared[normName(mm[1])]
		if !ok || d.Version != "=="+mm[2] || d.SHA256 != mm[3] {
			out = append(out, Finding{Severity: SeverityHigh, Rule: "DEP-002", File: rel, Line: n, Snippet: clip(line, 120),
				Message: fmt.Sprintf("requirement %s does not match a dependency in skill.yaml (same name, version and sha256)", clip(mm[1], 60))})
		}
	}
	return out
}

func normName(s string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(s))
}

// stripComment drops a '#' comment that is not inside a string literal on
// the line.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case quote == 0 && c == '#':
			return line[:i]
		}
	}
	return line
}

func lineOf(data []byte, off int) int { return bytes.Count(data[:off], []byte("\n")) + 1 }

func hostDeclared(hostport string, declared []string) bool {
	h := strings.ToLower(hostport)
	if i := strings.LastIndex(h, "@"); i >= 0 {
		h = h[i+1:]
	}
	host := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		host = hh
	}
	for _, d := range declared {
		dh := d
		if x, _, err := net.SplitHostPort(d); err == nil {
			dh = x
		}
		if d == h || dh == host {
			return true
		}
	}
	return false
}

func writeDeclared(p string, grants []string) bool {
	if strings.HasPrefix(p, "~") || strings.Contains(p, "..") {
		return false
	}
	for _, g := range grants {
		if strings.HasPrefix(g, "/") && (p == strings.TrimSuffix(g, "/") || strings.HasPrefix(p, strings.TrimSuffix(g, "/")+"/")) {
			return true
		}
	}
	return false
}
