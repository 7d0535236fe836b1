package genesis

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

// Skill ids of the genesis skills built so far.
const (
	FileManager  = "file_manager"
	CodeExecutor = "code_executor"
	WebScraper   = "web_scraper"
)

// ReservedIDs are the ids of the built-in skills: no other skill may take
// them.
func ReservedIDs() []string {
	return []string{FileManager, CodeExecutor, WebScraper, DockerControl, BrowserAutomation}
}

// Limits of the skills' requests, checked before a container starts (the
// skills check them again inside).
const (
	MaxPathBytes    = 1024
	MaxWriteBytes   = 64 << 10 // file_manager write
	MaxSnippetBytes = 64 << 10 // code_executor
)

// Sandbox runs one skill; *sandbox.Sandbox is one.
type Sandbox interface {
	Run(ctx context.Context, req sandbox.Request) (sandbox.Result, error)
}

// Runner runs the active genesis skills in the sandbox, each call in a
// fresh container from the skill's active copy (whose hash the sandbox
// checks again).
type Runner struct {
	sb                   Sandbox
	workspace            string
	skills               map[string]Skill
	fetcher              *Fetcher
	webDir               string
	docker               *DockerEngine
	dockerDir            string
	browser              *Browser
	browserDir, shotsDir string
	sessionOf            func(context.Context) string
}

// WithDocker lets the Runner run docker_control (when it is active): d
// makes the engine calls through its socket proxy, and the engine's answer
// is handed to the skill read-only in a folder of its own made under dir
// (beneath the sandbox's WorkspaceDir) and removed after the call. It
// returns r.
func (r *Runner) WithDocker(d *DockerEngine, dir string) *Runner {
	r.docker, r.dockerDir = d, dir
	return r
}

// WithWeb lets the Runner run web_scraper (when it is active): f fetches
// the page, which is handed to the skill read-only in a folder of its own
// made under dir (beneath the sandbox's WorkspaceDir) and removed after
// the call. It returns r.
func (r *Runner) WithWeb(f *Fetcher, dir string) *Runner {
	r.fetcher, r.webDir = f, dir
	return r
}

// IsWeb reports whether the tool name returns text from the web (to be
// scanned as web content).
func IsWeb(name string) bool { return name == WebScraper || name == BrowserAutomation }

// NewRunner returns a Runner over the active skills of rep. workspace is
// the host folder file_manager works in (beneath the sandbox's
// WorkspaceDir); it may be empty when file_manager is not active.
func NewRunner(sb Sandbox, workspace string, rep Report) *Runner {
	r := &Runner{sb: sb, workspace: workspace, skills: map[string]Skill{}}
	for _, s := range rep.Active() {
		if s.ID == FileManager && workspace == "" {
			continue
		}
		r.skills[s.ID] = s
	}
	return r
}

// Names returns the ids of the skills the Runner runs, sorted.
func (r *Runner) Names() []string {
	out := make([]string, 0, len(r.skills))
	for id := range r.skills {
		if id == FileManager || id == CodeExecutor || id == WebScraper && r.fetcher != nil && r.webDir != "" ||
			id == DockerControl && r.docker != nil && r.dockerDir != "" ||
			id == BrowserAutomation && r.browser != nil && r.browserDir != "" {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// SkillDir returns the active folder the Runner runs skill id from, or ""
// when it is not active.
func (r *Runner) SkillDir(id string) string { return r.skills[id].Record.ActivePath }

func (r *Runner) skill(op, id string) (Skill, error) {
	s, ok := r.skills[id]
	if !ok {
		return Skill{}, talos.Errorf(talos.CodePolicyDenied, op, "the genesis skill %s is not active (TRUST_LEVEL, SKILL_AUTOLOAD_ENABLED or a refused admission)", id)
	}
	return s, nil
}

// CheckPath refuses a workspace path that is absolute, holds "..", a
// backslash, a control character or invalid UTF-8, or is longer than
// MaxPathBytes. "" and "." name the workspace itself.
func CheckPath(field, p string) error {
	const op = "genesis.CheckPath"
	bad := func(why string) error {
		return talos.Errorf(talos.CodeInputInvalid, op, "%s %q refused: %s", field, clipPath(p), why)
	}
	switch {
	case len(p) > MaxPathBytes:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathBytes))
	case !utf8.ValidString(p):
		return bad("not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute paths are not allowed; give a path relative to the workspace")
	case strings.ContainsRune(p, '\\'):
		return bad("use / between folders")
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return bad("control characters are not allowed")
		}
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return bad("'..' would leave the workspace")
		}
	}
	return nil
}

func clipPath(p string) string {
	if len(p) > 120 {
		p = p[:120] + "…"
	}
	return strings.ToValidUTF8(p, "?")
}

// FileRequest is one file_manager operation.
type FileRequest struct {
	Op      string // "list", "read", "write" or "move"
	Path    string // relative to the workspace
	To      string // move's destination
	Content string // write's content (UTF-8)
}

// Entry is one entry of a listed folder.
type Entry struct {
	Name string
	Type string // "f" file, "d" folder, "l" link, "o" other
	Size int64
}

// FileResult is what a file_manager operation returned.
type FileResult struct {
	Entries   []Entry // list
	More      int     // list: entries left out
	Data      []byte  // read
	Truncated bool    // read: the file is longer than Data
	Written   int     // write: bytes written
}

// Files runs one file_manager operation in a fresh container with the
// workspace mounted (read-write only when the skill is Writable). A bad
// request is refused before the container starts (code T015); what the
// skill refuses inside (a symbolic link on the way, a missing file) comes
// back as code T406 with its reason.
func (r *Runner) Files(ctx context.Context, req FileRequest) (FileResult, error) {
	const op = "genesis.Runner.Files"
	s, err := r.skill(op, FileManager)
	if err != nil {
		return FileResult{}, err
	}
	var problems []error
	args := []string{req.Op, b64(req.Path)}
	switch req.Op {
	case "list", "read":
	case "write":
		if !s.Writable {
			return FileResult{}, talos.Errorf(talos.CodePolicyDenied, op, "file_manager may only list and read at TRUST_LEVEL below %d", TrustWrite)
		}
		if len(req.Content) > MaxWriteBytes || !utf8.ValidString(req.Content) {
			problems = append(problems, fmt.Errorf("content: %d bytes; want valid UTF-8 of at most %d bytes", len(req.Content), MaxWriteBytes))
		}
		args = append(args, b64(req.Content))
	case "move":
		if !s.Writable {
			return FileResult{}, talos.Errorf(talos.CodePolicyDenied, op, "file_manager may only list and read at TRUST_LEVEL below %d", TrustWrite)
		}
		if err := CheckPath("to", req.To); err != nil {
			problems = append(problems, err)
		}
		args = append(args, b64(req.To))
	default:
		problems = append(problems, fmt.Errorf("op %q: want list, read, write or move", clipPath(req.Op)))
	}
	if err := CheckPath("path", req.Path); err != nil {
		problems = append(problems, err)
	}
	if len(problems) > 0 {
		return FileResult{}, talos.E(talos.CodeInputInvalid, op, "file_manager request refused", joinErrs(problems))
	}
	res, err := r.sb.Run(ctx, sandbox.Request{Dir: s.Record.ActivePath, Hash: s.Record.Hash, Args: args,
		Workspace: r.workspace, WorkspaceWritable: s.Writable})
	if err != nil {
		return FileResult{}, err
	}
	if !res.Verdict.Passed() {
		return FileResult{}, talos.Errorf(talos.CodeSkillSandbox, op, "file_manager failed: %s", res.Verdict.Reason)
	}
	return parseFileOutput(op, res.Stdout)
}

func parseFileOutput(op string, out []byte) (FileResult, error) {
	var fr FileResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "ok" && len(f) == 1:
			return fr, nil
		case f[0] == "error" && len(f) == 2:
			msg, _ := base64.StdEncoding.DecodeString(f[1])
			return FileResult{}, talos.Errorf(talos.CodePolicyDenied, op, "file_manager refused: %s", strings.ToValidUTF8(string(msg), "?"))
		case f[0] == "entry" && len(f) == 4:
			name, err := base64.StdEncoding.DecodeString(f[1])
			size, serr := strconv.ParseInt(f[3], 10, 64)
			if err != nil || serr != nil {
				return FileResult{}, talos.Errorf(talos.CodeSkillSandbox, op, "file_manager printed a malformed entry line")
			}
			fr.Entries = append(fr.Entries, Entry{Name: strings.ToValidUTF8(string(name), "?"), Type: f[2], Size: size})
		case f[0] == "more" && len(f) == 2:
			fr.More, _ = strconv.Atoi(f[1])
		case f[0] == "data" && len(f) == 2:
			d, err := base64.StdEncoding.DecodeString(f[1])
			if err != nil {
				return FileResult{}, talos.Errorf(talos.CodeSkillSandbox, op, "file_manager printed malformed data")
			}
			fr.Data = d
		case f[0] == "data" && len(f) == 1:
			fr.Data = []byte{}
		case f[0] == "truncated" && len(f) == 2:
			fr.Truncated = f[1] == "1"
		case f[0] == "written" && len(f) == 2:
			fr.Written, _ = strconv.Atoi(f[1])
		}
	}
	return FileResult{}, talos.Errorf(talos.CodeSkillSandbox, op, "file_manager ended without its closing line")
}

// CodeResult is what a snippet did.
type CodeResult struct {
	Stdout   string
	Stderr   string
	ExitCode int
	TimedOut bool
	// Outcome is the sandbox's verdict: clean, exit (a non-zero status or
	// an exception), timeout, security (the snippet tried something
	// forbidden, such as the network), memory, pids, output, …
	Outcome sandbox.Outcome
	// Reason says what happened in one line.
	Reason string
}

// Code runs snippet with code_executor in a fresh container: no network,
// no workspace, the sandbox's limits and timeout. Whatever the snippet did
// is a CodeResult; an error means it could not run (a refused request,
// the engine unreachable).
func (r *Runner) Code(ctx context.Context, snippet string) (CodeResult, error) {
	const op = "genesis.Runner.Code"
	s, err := r.skill(op, CodeExecutor)
	if err != nil {
		return CodeResult{}, err
	}
	if snippet == "" || len(snippet) > MaxSnippetBytes || !utf8.ValidString(snippet) {
		return CodeResult{}, talos.Errorf(talos.CodeInputInvalid, op, "code: %d bytes; want valid UTF-8 of 1 to %d bytes", len(snippet), MaxSnippetBytes)
	}
	res, err := r.sb.Run(ctx, sandbox.Request{Dir: s.Record.ActivePath, Hash: s.Record.Hash, Args: []string{b64(snippet)}})
	if err != nil {
		return CodeResult{}, err
	}
	return CodeResult{Stdout: string(res.Stdout), Stderr: string(res.Stderr), ExitCode: res.Observation.ExitCode,
		TimedOut: res.Observation.TimedOut, Outcome: res.Verdict.Outcome, Reason: res.Verdict.Reason}, nil
}

// WebResult is what web_scraper made of a page.
type WebResult struct {
	URL       string // after redirects
	Status    int
	Text      string
	Truncated bool // the page was longer than the fetch limit
}

// Web fetches rawURL through the Runner's Fetcher (allowed hosts only, no
// special addresses, size and time caps) and has web_scraper turn it into
// text in a fresh container without network.
func (r *Runner) Web(ctx context.Context, rawURL string) (WebResult, error) {
	const op = "genesis.Runner.Web"
	s, err := r.skill(op, WebScraper)
	if err != nil {
		return WebResult{}, err
	}
	if r.fetcher == nil || r.webDir == "" {
		return WebResult{}, talos.Errorf(talos.CodePolicyDenied, op, "web_scraper has no allowlist of web hosts: the operator must approve hosts first")
	}
	page, err := r.fetcher.Fetch(ctx, rawURL)
	if err != nil {
		return WebResult{}, err
	}
	dir, err := handOver(op, r.webDir, "page-", "page", page.Body)
	if err != nil {
		return WebResult{}, err
	}
	defer os.RemoveAll(dir)
	mode := "html"
	if ct := strings.ToLower(page.ContentType); ct != "" && !strings.Contains(ct, "html") && !strings.Contains(ct, "xml") {
		mode = "text"
	}
	res, err := r.sb.Run(ctx, sandbox.Request{Dir: s.Record.ActivePath, Hash: s.Record.Hash, Args: []string{mode}, Workspace: dir})
	if err != nil {
		return WebResult{}, err
	}
	if !res.Verdict.Passed() {
		return WebResult{}, talos.Errorf(talos.CodeSkillSandbox, op, "web_scraper failed: %s", res.Verdict.Reason)
	}
	return WebResult{URL: page.URL, Status: page.Status, Text: strings.TrimRight(string(res.Stdout), "\n"), Truncated: page.Truncated}, nil
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%s", strings.Join(msgs, "; "))
}

// Tools returns the tool definitions of the skills the Runner runs.
func (r *Runner) Tools() []llm.Tool {
	var out []llm.Tool
	for _, id := range r.Names() {
		switch id {
		case FileManager:
			ops := []any{"list", "read"}
			desc := "List folders and read files in the user's workspace folder (paths relative to it; '..', absolute paths and symbolic links are refused)."
			if r.skills[id].Writable {
				ops = append(ops, "write", "move")
				desc = "List, read, write and move files in the user's workspace folder (paths relative to it; '..', absolute paths and symbolic links are refused; move never overwrites)."
			}
			out = append(out, llm.Tool{Name: FileManager, Description: desc, Parameters: map[string]any{
				"type": "object",
				"properties": map[string]any{
					"op":      map[string]any{"type": "string", "enum": ops},
					"path":    map[string]any{"type": "string", "description": "relative to the workspace; \"\" is the workspace itself"},
					"to":      map[string]any{"type": "string", "description": "move: the new path"},
					"content": map[string]any{"type": "string", "description": "write: the file's new text"},
				},
				"required": []any{"op", "path"},
			}})
		case WebScraper:
			out = append(out, llm.Tool{Name: WebScraper, Description: "Fetch a web page from a host the operator approved and return its readable text.",
				Parameters: map[string]any{
					"type":       "object",
					"properties": map[string]any{"url": map[string]any{"type": "string", "description": "http or https URL"}},
					"required":   []any{"url"},
				}})
		case BrowserAutomation:
			out = append(out, llm.Tool{Name: BrowserAutomation, Description: "Drive a headless browser (one per conversation): open a page from an approved host, read its text, screenshot, click, fill a field.",
				Parameters: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"action":   map[string]any{"type": "string", "enum": []any{BrowserNavigate, BrowserReadText, BrowserScreenshot, BrowserClick, BrowserFill}},
						"url":      map[string]any{"type": "string", "description": "navigate: http or https URL"},
						"selector": map[string]any{"type": "string", "description": "click, fill: a CSS selector"},
						"value":    map[string]any{"type": "string", "description": "fill: the text to put in the field"},
					},
					"required": []any{"action"},
				}})
		case DockerControl:
			out = append(out, llm.Tool{Name: DockerControl, Description: "List, inspect, start and stop the containers Talos manages (labelled talos.managed=true); no other container is visible.",
				Parameters: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"action":    map[string]any{"type": "string", "enum": []any{DockerList, DockerInspect, DockerStart, DockerStop}},
						"container": map[string]any{"type": "string", "description": "inspect, start, stop: the container's name or ID"},
					},
					"required": []any{"action"},
				}})
		case CodeExecutor:
			out = append(out, llm.Tool{Name: CodeExecutor, Description: "Run a Python 3 snippet in a fresh sandbox without network (standard library only, /tmp writable); returns stdout, stderr and the exit code.",
				Parameters: map[string]any{
					"type":       "object",
					"properties": map[string]any{"code": map[string]any{"type": "string", "description": "the Python source"}},
					"required":   []any{"code"},
				}})
		}
	}
	return out
}

// Call runs one tool call by name with the model's arguments and returns
// the text for the model.
func (r *Runner) Call(ctx context.Context, name string, args map[string]any) (string, error) {
	const op = "genesis.Runner.Call"
	str := func(k string) (string, error) {
		v, ok := args[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", talos.Errorf(talos.CodeInputInvalid, op, "%s.%s must be a string", name, k)
		}
		return s, nil
	}
	switch name {
	case FileManager:
		var req FileRequest
		var errs []error
		for k, dst := range map[string]*string{"op": &req.Op, "path": &req.Path, "to": &req.To, "content": &req.Content} {
			v, err := str(k)
			if err != nil {
				errs = append(errs, err)
			}
			*dst = v
		}
		if len(errs) > 0 {
			return "", talos.E(talos.CodeInputInvalid, op, "file_manager arguments refused", joinErrs(errs))
		}
		fr, err := r.Files(ctx, req)
		if err != nil {
			return "", err
		}
		return formatFiles(req, fr), nil
	case WebScraper:
		u, err := str("url")
		if err != nil {
			return "", err
		}
		wr, err := r.Web(ctx, u)
		if err != nil {
			return "", err
		}
		out := fmt.Sprintf("%s (HTTP %d)\n%s", wr.URL, wr.Status, wr.Text)
		if wr.Truncated {
			out += "\n[page truncated]"
		}
		return out, nil
	case BrowserAutomation:
		var req BrowserRequest
		var errs []error
		for k, dst := range map[string]*string{"action": &req.Action, "url": &req.URL, "selector": &req.Selector, "value": &req.Value} {
			v, err := str(k)
			if err != nil {
				errs = append(errs, err)
			}
			*dst = v
		}
		if len(errs) > 0 {
			return "", talos.E(talos.CodeInputInvalid, op, "browser_automation arguments refused", joinErrs(errs))
		}
		return r.BrowserCall(ctx, req)
	case DockerControl:
		action, err := str("action")
		if err != nil {
			return "", err
		}
		ref, err := str("container")
		if err != nil {
			return "", err
		}
		return r.Docker(ctx, action, ref)
	case CodeExecutor:
		code, err := str("code")
		if err != nil {
			return "", err
		}
		cr, err := r.Code(ctx, code)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("exit code: %d (%s)\nstdout:\n%s\nstderr:\n%s", cr.ExitCode, cr.Reason, cr.Stdout, cr.Stderr), nil
	}
	return "", talos.Errorf(talos.CodePolicyDenied, op, "no active genesis skill is called %q", clipPath(name))
}

func formatFiles(req FileRequest, fr FileResult) string {
	var b strings.Builder
	switch req.Op {
	case "list":
		fmt.Fprintf(&b, "%d entries in %q:\n", len(fr.Entries), req.Path)
		for _, e := range fr.Entries {
			fmt.Fprintf(&b, "%s %s %d\n", e.Type, e.Name, e.Size)
		}
		if fr.More > 0 {
			fmt.Fprintf(&b, "… and %d more\n", fr.More)
		}
	case "read":
		b.WriteString(strings.ToValidUTF8(string(fr.Data), "\uFFFD"))
		if fr.Truncated {
			b.WriteString("\n[truncated]")
		}
	case "write":
		fmt.Fprintf(&b, "wrote %d bytes to %q", fr.Written, req.Path)
	case "move":
		fmt.Fprintf(&b, "moved %q to %q", req.Path, req.To)
	}
	return b.String()
}
