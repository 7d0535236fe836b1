// Command mkcorpus builds the realistic benign tool-output corpus that the
// firewall's classifier is trained and calibrated on: texts of the kinds a
// tool returns to an agent, taken from what a Debian machine already has and
// composed where no such text is installed.
//
//	go run ./firewall/cmd/mkcorpus -out firewall/cmd/train/testdata/benign-tool.jsonl.gz
//
// Sources, each a dataset of its own in the output:
//   - debian-changelog, debian-readme, debian-copyright: the documentation of
//     the installed Debian packages under /usr/share/doc (changelogs, README and
//     NEWS files, copyright and licence texts);
//   - man: manual pages rendered to text by man(1);
//   - npm-readme: README files of the npm packages in the node_modules
//     folders given by -node;
//   - source-go, source-js: source code of the Go distribution and of those
//     npm packages;
//   - licence: the licence texts of /usr/share/common-licenses, all but
//     GPL-3, which the firewall's tests keep unseen to check that a licence
//     the classifier was not trained on passes;
//   - email, json-api, search, ci-log, syslog, recipe, git-help: composed from
//     parts (see compose.go), including the everyday uses of attack
//     vocabulary ("if you did not request this, ignore this email", "disregard
//     the previous error", "without warranty").
//
// Every source is read in sorted order and sampled by a hash of the sample's
// id, and the composed kinds use a seeded generator, so the same machine and
// flags give the same bytes. Each line is a JSON object {id, dataset, text};
// -sources writes the Debian and npm package names used, with their licences.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkcorpus:", err)
		os.Exit(1)
	}
}

// sample is one benign text of the corpus.
type sample struct {
	ID      string `json:"id"`
	Dataset string `json:"dataset"`
	Text    string `json:"text"`
}

// corpus collects samples and the packages they came from.
type corpus struct {
	samples  []sample
	seen     map[string]bool
	packages map[string]string // "debian:NAME" / "npm:NAME" → licence
}

// maxChunk bounds one sample; longer texts are cut at paragraph breaks.
const maxChunk = 1800

func (c *corpus) add(id, dataset, text string, maxParts int) int {
	text = cleanText(text)
	n := 0
	for i, part := range chunks(text, maxChunk) {
		if i >= maxParts {
			break
		}
		if len(part) < 120 || c.seen[part] {
			continue
		}
		c.seen[part] = true
		c.samples = append(c.samples, sample{ID: fmt.Sprintf("%s:%s#%d", dataset, id, i), Dataset: dataset, Text: part})
		n++
	}
	return n
}

// keep reports whether id falls in the sampled fraction (per mille).
func keep(id string, perMille uint64) bool {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()%1000 < perMille
}

func run(args []string) error {
	fl := flag.NewFlagSet("mkcorpus", flag.ContinueOnError)
	out := fl.String("out", "firewall/cmd/train/testdata/benign-tool.jsonl.gz", "gzip-compressed JSON lines to write")
	sources := fl.String("sources", "firewall/cmd/train/testdata/benign-tool-sources.txt", "list of the packages used and their licences")
	docDir := fl.String("doc", "/usr/share/doc", "Debian package documentation")
	manDir := fl.String("man", "/usr/share/man", "manual pages (rendered with man -P cat)")
	node := fl.String("node", "/tmp/talos-services/tools/mcp/node_modules,/tmp/talos-services/tools/chroma/node_modules,/usr/lib/node_modules", "comma-separated node_modules folders")
	licDir := fl.String("licences", "/usr/share/common-licenses", "licence texts (every file but GPL-3 and symbolic links)")
	goroot := fl.String("goroot", "", "Go distribution for source-go (default: runtime GOROOT via `go env GOROOT`)")
	seed := fl.Uint64("seed", 1, "seed of the composed kinds")
	composed := fl.Int("composed", 300, "samples of each composed kind")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *goroot == "" {
		b, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %w (give -goroot)", err)
		}
		*goroot = strings.TrimSpace(string(b))
	}
	c := &corpus{seen: map[string]bool{}, packages: map[string]string{}}
	debian, err := debianArchivePackages()
	if err != nil {
		return err
	}
	if err := c.debianDocs(*docDir, debian); err != nil {
		return err
	}
	if err := c.manPages(*manDir, debian); err != nil {
		return err
	}
	var dirs []string
	for d := range strings.SplitSeq(*node, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	if err := c.npm(dirs); err != nil {
		return err
	}
	if err := c.goSource(*goroot); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(*seed, 0xc0de))
	c.compose(rng, *composed)
	if err := c.licences(*licDir); err != nil {
		return err
	}

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	counts := map[string]int{}
	for _, s := range c.samples {
		if err := enc.Encode(s); err != nil {
			return err
		}
		counts[s.Dataset]++
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	var names []string
	for k := range c.packages {
		names = append(names, k)
	}
	slices.Sort(names)
	var sb strings.Builder
	sb.WriteString("# Packages whose installed files were sampled by firewall/cmd/mkcorpus, with the licence each declares.\n")
	for _, k := range names {
		fmt.Fprintf(&sb, "%s\t%s\n", k, c.packages[k])
	}
	if err := os.WriteFile(*sources, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	var kinds []string
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	fmt.Printf("wrote %s (%d samples, %d bytes compressed)\n", *out, len(c.samples), buf.Len())
	for _, k := range kinds {
		fmt.Printf("  %-18s %5d\n", k, counts[k])
	}
	return nil
}

// readMaybeGzip reads a file, uncompressing it when its name ends in .gz.
func readMaybeGzip(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return "", err
		}
		defer zr.Close()
		r = zr
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%s is not UTF-8", path)
	}
	return string(b), nil
}

var spdxLicense = regexp.MustCompile(`(?m)^License:\s*(\S.*)$`)

// freeFormLicences name the licence of a free-form copyright file by a phrase
// of its text, in order.
var freeFormLicences = []struct{ phrase, name string }{
	{"GNU Lesser General Public License", "LGPL (free-form copyright file)"},
	{"GNU Library General Public License", "LGPL (free-form copyright file)"},
	{"GNU General Public License", "GPL (free-form copyright file)"},
	{"Artistic License", "Artistic (free-form copyright file)"},
	{"Apache License", "Apache (free-form copyright file)"},
	{"Permission is hereby granted, free of charge", "MIT/Expat (free-form copyright file)"},
	{"Redistribution and use in source and binary forms", "BSD (free-form copyright file)"},
	{"public domain", "public domain (free-form copyright file)"},
}

// debianLicence is the first License: field of a machine-readable copyright
// file, or the licence a free-form one names.
func debianLicence(copyright string) string {
	if m := spdxLicense.FindStringSubmatch(copyright); m != nil {
		return strings.TrimSpace(m[1])
	}
	for _, l := range freeFormLicences {
		if strings.Contains(copyright, l.phrase) {
			return l.name
		}
	}
	return "other (see the package's copyright file)"
}

// debianArchivePackages names the installed packages whose installed version
// comes from a Debian archive (apt-cache policy lists an http source for
// it), which leaves out packages from other vendors' repositories.
func debianArchivePackages() (map[string]bool, error) {
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}\n").Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query: %w", err)
	}
	names := strings.Fields(string(out))
	pol, err := exec.Command("apt-cache", append([]string{"policy"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache policy: %w", err)
	}
	ok := map[string]bool{}
	pkg, installed := "", false
	for l := range strings.SplitSeq(string(pol), "\n") {
		switch {
		case len(l) > 0 && l[0] != ' ' && strings.HasSuffix(l, ":"):
			pkg, installed = strings.TrimSuffix(l, ":"), false
		case strings.HasPrefix(l, " *** "):
			installed = true
		case strings.HasPrefix(l, "     ") && !strings.HasPrefix(l, "        "):
			installed = false // the next version of the table
		case installed && strings.Contains(l, "://deb.debian.org/"):
			ok[strings.SplitN(pkg, ":", 2)[0]] = true
		}
	}
	return ok, nil
}

func (c *corpus) debianDocs(root string, debian map[string]bool) error {
	pkgs, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, p := range pkgs {
		if !p.IsDir() || !debian[p.Name()] {
			continue
		}
		name := p.Name()
		dir := filepath.Join(root, name)
		copyright, cerr := readMaybeGzip(filepath.Join(dir, "copyright"))
		used := 0
		if cerr == nil && keep("copyright:"+name, 450) {
			used += c.add(name, "debian-copyright", copyright, 2)
		}
		for _, f := range []string{"changelog.Debian.gz", "changelog.gz", "NEWS.Debian.gz", "NEWS.gz"} {
			if !keep("changelog:"+name+"/"+f, 500) {
				continue
			}
			text, err := readMaybeGzip(filepath.Join(dir, f))
			if err != nil {
				continue
			}
			used += c.add(name+"/"+f, "debian-changelog", text, 1)
			break
		}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			fn := f.Name()
			if f.IsDir() || !strings.HasPrefix(strings.ToUpper(fn), "README") || !keep("readme:"+name+"/"+fn, 600) {
				continue
			}
			text, err := readMaybeGzip(filepath.Join(dir, fn))
			if err != nil {
				continue
			}
			used += c.add(name+"/"+fn, "debian-readme", text, 2)
		}
		if used > 0 {
			lic := "see copyright"
			if cerr == nil {
				lic = debianLicence(copyright)
			}
			c.packages["debian:"+name] = lic
		}
	}
	return nil
}

// heldOutLicence is the licence text the corpus leaves out: the firewall's
// tests scan it as a licence the classifier has never seen.
const heldOutLicence = "GPL-3"

// licences adds every chunk of the licence texts in dir, but
// heldOutLicence's, skipping symbolic links (GPL → GPL-3 and the like).
func (c *corpus) licences(dir string) error {
	files, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if !f.Type().IsRegular() || f.Name() == heldOutLicence {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			return err
		}
		c.add(f.Name(), "licence", string(b), 1000)
	}
	return nil
}

var manPage = regexp.MustCompile(`^([^/]+)\.(\d[a-z]*)(\.gz)?$`)

func (c *corpus) manPages(root string, debian map[string]bool) error {
	// the manual pages of sections 1, 5 and 8 that Debian packages install,
	// from dpkg's file lists
	owner := map[string]string{}
	lists, _ := filepath.Glob("/var/lib/dpkg/info/*.list")
	slices.Sort(lists)
	for _, l := range lists {
		pkg := strings.SplitN(strings.TrimSuffix(filepath.Base(l), ".list"), ":", 2)[0]
		if !debian[pkg] {
			continue
		}
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for p := range strings.SplitSeq(string(b), "\n") {
			if dir, file := filepath.Split(p); manPage.MatchString(file) && slices.Contains([]string{"man1/", "man5/", "man8/"}, strings.TrimPrefix(dir, root+"/")) {
				owner[p] = pkg
			}
		}
	}
	var pages []string
	for p := range owner {
		rel, _ := filepath.Rel(root, p)
		if keep("man:"+rel, 120) {
			pages = append(pages, p)
		}
	}
	slices.Sort(pages)
	for _, p := range pages {
		pkg := owner[p]
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if _, ok := c.packages["debian:"+pkg]; !ok {
			c.packages["debian:"+pkg] = "see /usr/share/doc/" + pkg + "/copyright"
			if cr, err := readMaybeGzip(filepath.Join("/usr/share/doc", pkg, "copyright")); err == nil {
				c.packages["debian:"+pkg] = debianLicence(cr)
			}
		}
		cmd := exec.Command("man", "-P", "cat", "-l", p)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8", "MAN_KEEP_FORMATTING=0")
		b, err := cmd.Output()
		if err != nil || !utf8.Valid(b) {
			continue
		}
		c.add(filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p), "man", string(b), 2)
	}
	return nil
}

func (c *corpus) npm(dirs []string) error {
	for _, nm := range dirs {
		var pkgDirs []string
		entries, err := os.ReadDir(nm)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			if strings.HasPrefix(e.Name(), "@") {
				sub, _ := os.ReadDir(filepath.Join(nm, e.Name()))
				for _, s := range sub {
					if s.IsDir() {
						pkgDirs = append(pkgDirs, filepath.Join(nm, e.Name(), s.Name()))
					}
				}
				continue
			}
			pkgDirs = append(pkgDirs, filepath.Join(nm, e.Name()))
		}
		for _, d := range pkgDirs {
			var meta struct {
				Name    string `json:"name"`
				License any    `json:"license"`
			}
			b, err := os.ReadFile(filepath.Join(d, "package.json"))
			if err != nil || json.Unmarshal(b, &meta) != nil || meta.Name == "" {
				continue
			}
			if _, done := c.packages["npm:"+meta.Name]; done {
				continue
			}
			lic := fmt.Sprint(meta.License)
			if s, ok := meta.License.(string); ok {
				lic = s
			}
			used := 0
			files, _ := os.ReadDir(d)
			for _, f := range files {
				if strings.EqualFold(f.Name(), "README.md") || strings.EqualFold(f.Name(), "readme") {
					text, err := readMaybeGzip(filepath.Join(d, f.Name()))
					if err == nil {
						used += c.add(meta.Name, "npm-readme", text, 4)
					}
				}
			}
			// one source file of the package, when sampled
			if keep("js:"+meta.Name, 400) {
				var js []string
				filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
					if err != nil || (e.IsDir() && e.Name() == "node_modules") {
						return filepath.SkipDir
					}
					if !e.IsDir() && strings.HasSuffix(p, ".js") && !strings.HasSuffix(p, ".min.js") {
						js = append(js, p)
					}
					return nil
				})
				if len(js) > 0 {
					p := js[len(js)/2]
					if text, err := readMaybeGzip(p); err == nil && !strings.Contains(text[:min(len(text), 2000)], "sourceMappingURL=data") {
						rel, _ := filepath.Rel(nm, p)
						used += c.add(rel, "source-js", text, 2)
					}
				}
			}
			if used > 0 {
				c.packages["npm:"+meta.Name] = lic
			}
		}
	}
	return nil
}

func (c *corpus) goSource(goroot string) error {
	src := filepath.Join(goroot, "src")
	n := 0
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == "testdata" || e.Name() == "vendor") {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(goroot, p)
		if e.IsDir() || !strings.HasSuffix(p, ".go") || !keep("go:"+rel, 25) {
			return nil
		}
		text, err := readMaybeGzip(p)
		if err != nil {
			return nil
		}
		// skip the licence header; a tool that reads a file shows its body
		if i := strings.Index(text, "\npackage "); i >= 0 {
			text = text[i+1:]
		}
		n += c.add(rel, "source-go", text, 2)
		return nil
	})
	if n > 0 {
		c.packages["go:distribution"] = "BSD-3-Clause (GOROOT/LICENSE)"
	}
	return err
}

// cleanText drops backspace overstrikes, carriage returns and trailing
// spaces, and collapses runs of blank lines.
func cleanText(s string) string {
	if strings.ContainsRune(s, '\b') {
		var rs []rune
		for _, r := range s {
			if r == '\b' {
				if len(rs) > 0 {
					rs = rs[:len(rs)-1]
				}
				continue
			}
			rs = append(rs, r)
		}
		s = string(rs)
	}
	s = strings.ReplaceAll(s, "\r", "")
	var out []string
	blank := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), " \t")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// chunks cuts text at blank lines into pieces of at most n bytes (a longer
// paragraph is cut at a line break, or hard).
func chunks(text string, n int) []string {
	var out []string
	var buf strings.Builder
	flush := func() {
		if s := strings.TrimSpace(buf.String()); s != "" {
			out = append(out, s)
		}
		buf.Reset()
	}
	for p := range strings.SplitSeq(text, "\n\n") {
		for len(p) > n {
			cut := strings.LastIndexByte(p[:n], '\n')
			if cut < n/4 {
				cut = n
				for cut > 0 && !utf8.RuneStart(p[cut]) {
					cut--
				}
			}
			flush()
			out = append(out, strings.TrimSpace(p[:cut]))
			p = p[cut:]
		}
		if buf.Len()+len(p) > n {
			flush()
		}
		buf.WriteString(p)
		buf.WriteString("\n\n")
	}
	flush()
	return out
}
