package quarantine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/talos-ironclad/talos"
)

// ManifestName is the file name of a skill's manifest, at the top of its
// folder.
const ManifestName = "skill.yaml"

// MaxManifestBytes is the largest skill.yaml ParseManifest reads.
const MaxManifestBytes = 64 << 10

// Limits on the lists of a manifest, so that a hostile manifest cannot make
// the scanner or the sandbox configuration arbitrarily large.
const (
	MaxNetworkHosts   = 32
	MaxFileGrants     = 64
	MaxDependencies   = 128
	MaxDescriptionLen = 500
)

// Language is the language a skill is written in.
type Language string

// The languages a manifest may name. Only LanguagePython runs: the sandbox
// image has no JavaScript runtime, so javascript and typescript are refused
// with an error that says so.
const (
	LanguagePython     Language = "python"
	LanguageJavaScript Language = "javascript"
	LanguageTypeScript Language = "typescript"
)

var (
	idPattern      = regexp.MustCompile(`^[a-z][a-z0-9_]{2,63}$`)
	versionPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$`)
	depNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$`)
	pinPattern     = regexp.MustCompile(`^==[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$`)
	sha256Pattern  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hostPattern    = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// Manifest is a parsed and validated skill.yaml.
//
//	id: weather_report          # ^[a-z][a-z0-9_]{2,63}$
//	version: 1.2.0              # MAJOR.MINOR.PATCH, no suffix
//	language: python            # only python runs
//	entry: main.py              # a .py file inside the folder
//	description: Daily weather summary
//	capabilities:
//	  network: [api.weather.gov, "example.org:8443"]
//	  files:
//	    read: [data/]
//	    write: [/tmp/out/]
//	  subprocess: false
//	dependencies:
//	  - name: requests
//	    version: "==2.32.3"
//	    sha256: 70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6
type Manifest struct {
	ID           string       `yaml:"id"`
	Version      string       `yaml:"version"`
	Language     Language     `yaml:"language"`
	Entry        string       `yaml:"entry"`
	Description  string       `yaml:"description,omitempty"`
	Capabilities Capabilities `yaml:"capabilities,omitempty"`
	Dependencies []Dependency `yaml:"dependencies,omitempty"`
}

// Capabilities is what a skill declares it needs beyond computing on its own
// files. Anything not declared is refused by the scanner and the sandbox.
type Capabilities struct {
	// Network lists the hosts ("name" or "name:port", or an IP address) the
	// skill may reach. Empty means no network at all.
	Network []string `yaml:"network,omitempty"`
	// Files lists paths the skill reads or writes besides its own files:
	// relative paths inside its folder, or absolute paths under /tmp (the
	// sandbox's scratch space).
	Files FileGrants `yaml:"files,omitempty"`
	// Subprocess is true when the skill starts other programs.
	Subprocess bool `yaml:"subprocess,omitempty"`
}

// FileGrants are the paths a skill declares it reads and writes.
type FileGrants struct {
	Read  []string `yaml:"read,omitempty"`
	Write []string `yaml:"write,omitempty"`
}

// Dependency is one third-party package a skill needs, pinned to one exact
// version and the SHA-256 of its distribution file (as pip's
// --require-hashes mode wants).
type Dependency struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"` // "==2.32.3"
	SHA256  string `yaml:"sha256"`  // 64 lower-case hex digits
}

// Requirement returns the dependency as a pip requirements line with its
// hash: "requests==2.32.3 --hash=sha256:…".
func (d Dependency) Requirement() string {
	return d.Name + d.Version + " --hash=sha256:" + d.SHA256
}

// ParseManifest parses and validates a skill.yaml. Unknown fields, a second
// YAML document, wrong types and every invalid value are reported together
// in one error (code T301), each naming the field, the value and what is
// allowed.
func ParseManifest(data []byte) (*Manifest, error) {
	const op = "quarantine.ParseManifest"
	if len(data) > MaxManifestBytes {
		return nil, talos.Errorf(talos.CodeSkillSyntax, op, "%s is %d bytes; at most %d are allowed", ManifestName, len(data), MaxManifestBytes)
	}
	var m Manifest
	var problems []string
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&m)
	var te *yaml.TypeError
	switch {
	case errors.Is(err, io.EOF):
		return nil, talos.Errorf(talos.CodeSkillSyntax, op, "%s is empty: it needs at least id, version, language and entry", ManifestName)
	case errors.As(err, &te):
		for _, e := range te.Errors {
			problems = append(problems, clip(e, 160))
		}
	case err != nil:
		return nil, talos.Errorf(talos.CodeSkillSyntax, op, "%s is not valid YAML: %s", ManifestName, clip(err.Error(), 200))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		problems = append(problems, "a second YAML document follows the first: a manifest is one document")
	}
	problems = append(problems, m.problems()...)
	if len(problems) > 0 {
		return nil, talos.Errorf(talos.CodeSkillSyntax, op, "%s has %d problem(s): %s", ManifestName, len(problems), strings.Join(problems, "; "))
	}
	return &m, nil
}

// Validate checks every field of m and reports every problem at once
// (code T301). ParseManifest calls it; call it on a Manifest built in code.
func (m *Manifest) Validate() error {
	if p := m.problems(); len(p) > 0 {
		return talos.Errorf(talos.CodeSkillSyntax, "quarantine.Manifest.Validate", "manifest has %d problem(s): %s", len(p), strings.Join(p, "; "))
	}
	return nil
}

func (m *Manifest) problems() []string {
	var p []string
	bad := func(field, value, allowed string) {
		p = append(p, fmt.Sprintf("%s \"%s\": %s", field, clip(value, 80), allowed))
	}
	switch {
	case m.ID == "":
		p = append(p, "id is missing: want 3–64 characters, lower-case letters, digits and '_', starting with a letter")
	case !idPattern.MatchString(m.ID):
		bad("id", m.ID, "want 3–64 characters, lower-case letters, digits and '_', starting with a letter")
	}
	switch {
	case m.Version == "":
		p = append(p, "version is missing: want MAJOR.MINOR.PATCH such as 1.0.0")
	case !versionPattern.MatchString(m.Version):
		bad("version", m.Version, "want MAJOR.MINOR.PATCH such as 1.0.0: numbers without leading zeros, no pre-release or build suffix")
	}
	switch m.Language {
	case LanguagePython:
	case LanguageJavaScript, LanguageTypeScript:
		bad("language", string(m.Language), "not supported: only python skills can run (the sandbox image has no JavaScript runtime)")
	case "":
		p = append(p, "language is missing: want python")
	default:
		bad("language", string(m.Language), "want python (javascript and typescript are not supported yet)")
	}
	switch {
	case m.Entry == "":
		p = append(p, "entry is missing: want the relative path of the .py file to run, such as main.py")
	case !relInside(m.Entry) || strings.HasSuffix(m.Entry, "/"):
		bad("entry", m.Entry, "want a relative file path inside the skill's folder (no '..', no leading '/')")
	case m.Language == LanguagePython && !strings.HasSuffix(m.Entry, ".py"):
		bad("entry", m.Entry, "a python skill's entry point must be a .py file")
	}
	if len(m.Description) > MaxDescriptionLen {
		p = append(p, fmt.Sprintf("description is %d bytes: at most %d", len(m.Description), MaxDescriptionLen))
	} else if hasControl(m.Description, true) {
		bad("description", m.Description, "no control characters except newline and tab")
	}
	c := m.Capabilities
	if len(c.Network) > MaxNetworkHosts {
		p = append(p, fmt.Sprintf("capabilities.network has %d hosts: at most %d", len(c.Network), MaxNetworkHosts))
	}
	for i, h := range c.Network {
		if !validHost(h) {
			bad(fmt.Sprintf("capabilities.network[%d]", i), h, "want a host name, IP address or host:port (1–65535), lower case, no scheme, path or wildcard")
		}
	}
	if n := len(c.Files.Read) + len(c.Files.Write); n > MaxFileGrants {
		p = append(p, fmt.Sprintf("capabilities.files has %d paths: at most %d", n, MaxFileGrants))
	}
	for _, g := range []struct {
		field string
		list  []string
	}{{"capabilities.files.read", c.Files.Read}, {"capabilities.files.write", c.Files.Write}} {
		for i, f := range g.list {
			if !validGrant(f) {
				bad(fmt.Sprintf("%s[%d]", g.field, i), f, "want a relative path inside the skill's folder or an absolute path under /tmp/ (no '..')")
			}
		}
	}
	if len(m.Dependencies) > MaxDependencies {
		p = append(p, fmt.Sprintf("dependencies has %d entries: at most %d", len(m.Dependencies), MaxDependencies))
	}
	seen := map[string]int{}
	for i, d := range m.Dependencies {
		f := fmt.Sprintf("dependencies[%d]", i)
		switch {
		case d.Name == "":
			p = append(p, f+".name is missing: want a PyPI package name")
		case !depNamePattern.MatchString(d.Name):
			bad(f+".name", d.Name, "want a PyPI package name: letters, digits, '.', '_', '-'")
		default:
			norm := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(d.Name))
			if j, dup := seen[norm]; dup {
				bad(f+".name", d.Name, fmt.Sprintf("listed twice (also dependencies[%d])", j))
			}
			seen[norm] = i
		}
		switch {
		case d.Version == "":
			p = append(p, f+".version is missing: want an exact pin such as \"==2.32.3\"")
		case !pinPattern.MatchString(d.Version):
			bad(f+".version", d.Version, "want an exact pin such as \"==2.32.3\" (no ranges, no wildcards)")
		}
		switch {
		case d.SHA256 == "":
			p = append(p, f+".sha256 is missing: want the SHA-256 of the distribution file, 64 lower-case hex digits")
		case !sha256Pattern.MatchString(d.SHA256):
			bad(f+".sha256", d.SHA256, "want 64 lower-case hex digits")
		}
	}
	return p
}

// relInside reports whether p is a clean relative slash path that stays
// inside its folder.
func relInside(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || hasControl(p, false) {
		return false
	}
	c := path.Clean(p)
	if c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == ".." {
			return false
		}
	}
	return true
}

func validGrant(p string) bool {
	if strings.HasPrefix(p, "/tmp/") {
		return relInside(strings.TrimPrefix(p, "/tmp/"))
	}
	return relInside(p)
}

func validHost(h string) bool {
	host := h
	if hh, port, err := net.SplitHostPort(h); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
		host = hh
	}
	if net.ParseIP(host) != nil {
		return true
	}
	return len(host) <= 253 && hostPattern.MatchString(host)
}

func hasControl(s string, allowNewline bool) bool {
	for _, r := range s {
		if allowNewline && (r == '\n' || r == '\t') {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// clip shortens s to max bytes and escapes control characters, for messages.
func clip(s string, max int) string {
	if len(s) > max {
		s = s[:max] + "…"
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
