package mcphost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	talos "github.com/talos-ironclad/talos"
)

// Step names one step of the invocation pipeline. Steps run in the order
// of the constants below; an error inside any step denies the call and
// names the step.
type Step string

// The pipeline's steps, in order.
const (
	StepLookup        Step = "lookup"         // the qualified name names a known, enabled server and tool
	StepAllowlist     Step = "allowlist"      // Config.Allow / Config.Deny
	StepCollision     Step = "collision"      // another server owns a tool of that name
	StepPin           Step = "pin"            // the server is not quarantined and the tool is pinned
	StepArgSecrets    Step = "arg-secrets"    // secrets in the arguments are redacted
	StepBeforeHook    Step = "before-hook"    // Hooks.BeforeCall
	StepCall          Step = "call"           // tools/call, within the server's timeout
	StepResultSize    Step = "result-size"    // the result is cut to MaxResultBytes
	StepResultSecrets Step = "result-secrets" // secrets in the result are redacted
	StepResultScan    Step = "result-scan"    // the ResultScanner (firewall)
	StepAfterHook     Step = "after-hook"     // Hooks.AfterCall
	StepAudit         Step = "audit"          // the Auditor recorded the call's shape
)

// StepError is the cause inside a denied call's *talos.Error: the step
// that denied it and why.
type StepError struct {
	// Step is where the call was stopped.
	Step Step
	// Err is the reason.
	Err error
}

// Error returns "step NAME: reason".
func (e *StepError) Error() string { return "step " + string(e.Step) + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *StepError) Unwrap() error { return e.Err }

// StepOf returns the step that stopped the call err came from, or "".
func StepOf(err error) Step {
	var se *StepError
	if errors.As(err, &se) {
		return se.Step
	}
	return ""
}

// Hooks are Go users' own checks around every call. A non-nil error from
// either denies the call.
type Hooks struct {
	// BeforeCall sees the call after the policy steps and argument
	// redaction, before it reaches the server.
	BeforeCall func(ctx context.Context, call *CallRequest) error
	// AfterCall sees the finished result before it is returned.
	AfterCall func(ctx context.Context, call *CallRequest, res *Result) error
}

// CallRequest is one tool call as it moves through the pipeline.
type CallRequest struct {
	// Server and Tool name the tool.
	Server, Tool string
	// Args are the arguments after secret redaction.
	Args map[string]any
}

// ScanAction is a ResultScanner's decision.
type ScanAction int

// Scan actions, in increasing severity.
const (
	// ScanAllow returns the result unchanged.
	ScanAllow ScanAction = iota
	// ScanFlag returns the result marked Flagged, with the reason.
	ScanFlag
	// ScanBlock withholds the result: the call fails with T401.
	ScanBlock
)

// String returns "allow", "flag" or "block".
func (a ScanAction) String() string {
	switch a {
	case ScanAllow:
		return "allow"
	case ScanFlag:
		return "flag"
	case ScanBlock:
		return "block"
	}
	return fmt.Sprintf("ScanAction(%d)", int(a))
}

// ScanInput is a result to scan.
type ScanInput struct {
	// Server and Tool name the tool that produced the result.
	Server, Tool string
	// Text is the result's text, already cut to size and redacted.
	Text string
}

// ScanVerdict is a ResultScanner's answer.
type ScanVerdict struct {
	// Action says what to do with the result.
	Action ScanAction
	// Reason says why, in words safe to log (no result text).
	Reason string
}

// ResultScanner inspects tool results before the model sees them. The
// firewall plugs in here and scans them as Source: tool. An error denies
// the call (fail closed).
type ResultScanner interface {
	ScanResult(ctx context.Context, in ScanInput) (ScanVerdict, error)
}

// ArgShape describes one argument without its value.
type ArgShape struct {
	// Name is the argument's name.
	Name string
	// Bytes is the size of its JSON encoding.
	Bytes int
}

// maxReasonBytes caps AuditRecord.Reason (a server's error message can be
// long).
const maxReasonBytes = 300

// AuditRecord is the shape of one call: never an argument or result value.
type AuditRecord struct {
	// Time is when the call entered the pipeline.
	Time time.Time
	// Server and Tool name the tool (as asked, clipped when unknown).
	Server, Tool string
	// Args are the arguments' names and sizes, sorted by name.
	Args []ArgShape
	// Allowed is true when the result was returned.
	Allowed bool
	// Step is the step that stopped the call ("" when allowed).
	Step Step
	// Code is the error code of a stopped call.
	Code talos.Code
	// Reason says why the call was stopped (at most 300 bytes, secrets
	// redacted; a server's own error message is quoted in it).
	Reason string
	// ArgRedactions and ResultRedactions count the secrets replaced.
	ArgRedactions, ResultRedactions []Redaction
	// Scan is the ResultScanner's action (ScanAllow when none ran).
	Scan ScanAction
	// ScanReason is the scanner's reason.
	ScanReason string
	// ResultBytes is the result's size before truncation; Truncated is
	// true when it was cut to MaxResultBytes.
	ResultBytes int
	Truncated   bool
	// IsError is the server's own isError flag.
	IsError bool
	// Duration is the time spent in the pipeline.
	Duration time.Duration
}

// Auditor records the shape of every call. An error while recording an
// allowed call withholds its result (fail closed).
type Auditor interface {
	AuditCall(ctx context.Context, rec AuditRecord) error
}

// Result is a tool's answer after the pipeline.
type Result struct {
	// Server and Tool name the tool.
	Server, Tool string
	// Text is the text parts of the result joined by "\n", redacted and
	// within MaxResultBytes.
	Text string
	// Content is the result's content, redacted and cut like Text.
	Content []mcp.Content
	// IsError is the server's own isError flag: the tool ran and reported
	// a failure.
	IsError bool
	// Truncated is true when the result was cut to MaxResultBytes.
	Truncated bool
	// Redactions counts the secrets replaced in the result.
	Redactions []Redaction
	// Flagged is true when the ResultScanner flagged the result;
	// FlagReason says why.
	Flagged    bool
	FlagReason string
}

// Call invokes the tool qualified "server.tool" with args through every
// step of the pipeline. It fails closed: a denial or an error in any step
// returns a *talos.Error whose cause is a *StepError naming the step
// (T406 for policy, T401 for a blocked result, T013 for a server failure).
func (h *Host) Call(ctx context.Context, qualified string, args map[string]any) (*Result, error) {
	start := time.Now()
	server, tool, _ := strings.Cut(qualified, ".")
	rec := AuditRecord{Time: start, Server: server, Tool: tool}
	res, err := h.pipeline(ctx, server, tool, args, &rec)
	rec.Duration = time.Since(start)
	if err != nil {
		rec.Allowed = false
		rec.Code = talos.CodeOf(err)
		rec.Step = StepOf(err)
		if rec.Step == "" {
			rec.Step = StepAudit
		}
		var se *StepError
		if errors.As(err, &se) {
			rec.Reason = h.secrets.Redact(cutUTF8(se.Err.Error(), maxReasonBytes), map[string]int{})
		}
	} else {
		rec.Allowed = true
	}
	if len(rec.Server) > 64 {
		rec.Server = rec.Server[:64]
	}
	if len(rec.Tool) > 128 {
		rec.Tool = rec.Tool[:128]
	}
	if h.audit != nil {
		if aerr := safeAudit(ctx, h.audit, rec); aerr != nil {
			h.log.Error("mcphost: audit failed", "server", rec.Server, "tool", rec.Tool, "err", aerr)
			if err == nil {
				res, err = nil, deny(talos.CodePolicyDenied, StepAudit, qualified, fmt.Errorf("recording the call failed, so its result is withheld: %w", aerr))
				rec.Allowed, rec.Step = false, StepAudit
			}
		}
	}
	h.stats.call(rec, res != nil && res.Flagged)
	return res, err
}

func safeAudit(ctx context.Context, a Auditor, rec AuditRecord) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("auditor panicked: %v", r)
		}
	}()
	return a.AuditCall(ctx, rec)
}

// deny builds the error of a call stopped at step.
func deny(code talos.Code, step Step, qualified string, why error) error {
	return talos.E(code, "mcphost.Call", fmt.Sprintf("call to %s stopped at step %s: %v", clip(qualified), step, why), &StepError{Step: step, Err: why})
}

// guard runs one policy step, turning a panic into a denial of that step.
func guard(step Step, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &StepError{Step: step, Err: fmt.Errorf("the %s step panicked: %v", step, r)}
		}
	}()
	return f()
}

func (h *Host) pipeline(ctx context.Context, server, tool string, args map[string]any, rec *AuditRecord) (*Result, error) {
	q := server + "." + tool
	var (
		s   *srv
		def ToolDef
	)
	fail := func(code talos.Code, step Step, err error) (*Result, error) {
		var se *StepError
		if errors.As(err, &se) && se.Step == step { // a panic inside guard
			err = se.Err
		}
		return nil, deny(code, step, q, err)
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return fail(talos.CodeMCPServer, StepLookup, errors.New("the host is closed"))
	}

	s = h.byName[server]
	if s != nil {
		s.mu.Lock()
		never := s.live == nil
		s.mu.Unlock()
		if never {
			// Discovery failed at Start (or the server was never reached):
			// try again now, with the server's backoff, before looking up.
			if err := h.discover(ctx, s); err != nil {
				return fail(talos.CodeMCPServer, StepCall, fmt.Errorf("server %s has no discovered tools and discovering them failed: %w", server, err))
			}
		}
	}
	if err := guard(StepLookup, func() error {
		if s == nil {
			return fmt.Errorf("no enabled server is named %s", clip(server))
		}
		s.mu.Lock()
		live, known := s.live[tool]
		s.mu.Unlock()
		if !known {
			return fmt.Errorf("server %s offers no tool named %s", server, clip(tool))
		}
		def = live
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepLookup, err)
	}

	for _, a := range sortedKeys(args) {
		b, err := json.Marshal(args[a])
		if err != nil {
			return fail(talos.CodePolicyDenied, StepLookup, fmt.Errorf("argument %s cannot be encoded as JSON", clip(a)))
		}
		rec.Args = append(rec.Args, ArgShape{Name: a, Bytes: len(b)})
	}

	if err := guard(StepAllowlist, func() error { return h.allowed(server, tool) }); err != nil {
		return fail(talos.CodePolicyDenied, StepAllowlist, err)
	}
	if err := guard(StepCollision, func() error {
		h.mu.Lock()
		owner, ok := h.owners[strings.ToLower(tool)]
		h.mu.Unlock()
		if ok && owner != server {
			return fmt.Errorf("server %s already offers a tool named %s; a second server's tool of that name is refused", owner, clip(tool))
		}
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepCollision, err)
	}
	if err := guard(StepPin, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.quarantine != nil {
			return fmt.Errorf("server %s is quarantined (%s); review Host.Pending and approve with Host.Approve", server, s.quarReason)
		}
		if a, ok := s.approved[tool]; !ok || a.Hash != def.Hash {
			return fmt.Errorf("tool %s is not pinned", q)
		}
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepPin, err)
	}

	call := &CallRequest{Server: server, Tool: tool}
	if err := guard(StepArgSecrets, func() error {
		counts := map[string]int{}
		b, err := json.Marshal(args)
		if err != nil {
			return err
		}
		var copied map[string]any // a deep copy: the caller's map is never changed
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // integers above 2^53 keep their digits
		if err := dec.Decode(&copied); err != nil {
			return err
		}
		if copied == nil {
			copied = map[string]any{}
		}
		h.secrets.redactValue(copied, counts)
		call.Args = copied
		rec.ArgRedactions = redactions(counts)
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepArgSecrets, err)
	}
	if h.hooks.BeforeCall != nil {
		if err := guard(StepBeforeHook, func() error { return h.hooks.BeforeCall(ctx, call) }); err != nil {
			return fail(talos.CodePolicyDenied, StepBeforeHook, err)
		}
	}

	raw, err := h.invoke(ctx, s, call)
	if err != nil {
		return fail(talos.CodeMCPServer, StepCall, err)
	}
	res := &Result{Server: server, Tool: tool, IsError: raw.IsError}
	rec.IsError = raw.IsError

	if err := guard(StepResultSize, func() error {
		res.Content, rec.ResultBytes, res.Truncated = capContent(raw.Content, h.maxRes)
		rec.Truncated = res.Truncated
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepResultSize, err)
	}
	if err := guard(StepResultSecrets, func() error {
		counts := map[string]int{}
		res.Content = redactContent(h.secrets, res.Content, counts)
		res.Redactions = redactions(counts)
		rec.ResultRedactions = res.Redactions
		res.Text = joinText(res.Content)
		return nil
	}); err != nil {
		return fail(talos.CodePolicyDenied, StepResultSecrets, err)
	}
	if h.scanner != nil {
		var v ScanVerdict
		if err := guard(StepResultScan, func() error {
			var err error
			v, err = h.scanner.ScanResult(ctx, ScanInput{Server: server, Tool: tool, Text: res.Text})
			return err
		}); err != nil {
			return fail(talos.CodePolicyDenied, StepResultScan, fmt.Errorf("the result scanner failed, so the result is withheld: %w", err))
		}
		rec.Scan, rec.ScanReason = v.Action, v.Reason
		switch v.Action {
		case ScanAllow:
		case ScanFlag:
			res.Flagged, res.FlagReason = true, v.Reason
		case ScanBlock:
			return fail(talos.CodePromptInjection, StepResultScan, fmt.Errorf("the result scanner blocked the result: %s", v.Reason))
		default:
			return fail(talos.CodePolicyDenied, StepResultScan, fmt.Errorf("the result scanner answered an unknown action %d", int(v.Action)))
		}
	}
	if h.hooks.AfterCall != nil {
		if err := guard(StepAfterHook, func() error { return h.hooks.AfterCall(ctx, call, res) }); err != nil {
			return fail(talos.CodePolicyDenied, StepAfterHook, err)
		}
	}
	return res, nil
}

// allowed applies Config.Allow and Config.Deny: "server.*" matches every
// tool of server, "server.tool" that tool only.
func (h *Host) allowed(server, tool string) error {
	q := server + "." + tool
	match := func(p string) bool {
		if srvName, ok := strings.CutSuffix(p, ".*"); ok {
			return srvName == server
		}
		return p == q
	}
	for _, p := range h.cfg.Deny {
		if match(p) {
			return fmt.Errorf("%s is denied by the pattern %s", clip(q), p)
		}
	}
	if len(h.cfg.Allow) == 0 {
		return nil
	}
	for _, p := range h.cfg.Allow {
		if match(p) {
			return nil
		}
	}
	return fmt.Errorf("%s matches no Allow pattern", clip(q))
}

// invoke sends tools/call to s within its timeout, starting s if needed. A
// crash or timeout counts as a failure of the server (it is restarted, with
// backoff, at its next use).
func (h *Host) invoke(ctx context.Context, s *srv, call *CallRequest) (*mcp.CallToolResult, error) {
	c, err := h.conn(ctx, s)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.r.timeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = call.Tool
	req.Params.Arguments = call.Args
	res, err := c.CallTool(cctx, req)
	switch {
	case err == nil && res == nil:
		err = errors.New("the server answered with an empty result")
	case err == nil:
		s.succeeded()
		return res, nil
	}
	switch {
	case ctx.Err() != nil:
		return nil, ctx.Err() // the caller gave up: not the server's fault
	case cctx.Err() != nil:
		h.failed(s, c, errors.New("timeout"))
		return nil, fmt.Errorf("server %s did not answer within %s; it is restarted at its next use", s.name, s.r.timeout)
	case errors.Is(err, transport.ErrTransportClosed):
		h.failed(s, c, err)
		return nil, fmt.Errorf("server %s stopped during the call; it is restarted at its next use: %w", s.name, err)
	}
	// The server's own message may echo arguments or leak secrets: it is
	// redacted before it reaches the model or the audit.
	return nil, fmt.Errorf("server %s answered with an error: %s", s.name, h.secrets.Redact(err.Error(), map[string]int{}))
}

// capContent cuts content to max bytes (text is cut at a character
// boundary, parts past the budget are dropped, a marker says the real
// size) and returns the original size.
func capContent(in []mcp.Content, max int) ([]mcp.Content, int, bool) {
	size := 0
	for _, c := range in {
		size += contentSize(c)
	}
	if size <= max {
		return in, size, false
	}
	budget := max
	var out []mcp.Content
	for _, c := range in {
		n := contentSize(c)
		if n <= budget {
			out = append(out, c)
			budget -= n
			continue
		}
		if t, ok := c.(mcp.TextContent); ok && budget > 0 {
			t.Text = cutUTF8(t.Text, budget)
			out = append(out, t)
		}
		break
	}
	out = append(out, mcp.NewTextContent(fmt.Sprintf("[truncated: result was %d bytes, limit %d]", size, max)))
	return out, size, true
}

func contentSize(c mcp.Content) int {
	switch x := c.(type) {
	case mcp.TextContent:
		return len(x.Text)
	case mcp.ImageContent:
		return len(x.Data)
	case mcp.AudioContent:
		return len(x.Data)
	case mcp.EmbeddedResource:
		switch r := x.Resource.(type) {
		case mcp.TextResourceContents:
			return len(r.Text)
		case mcp.BlobResourceContents:
			return len(r.Blob)
		}
	}
	b, _ := json.Marshal(c)
	return len(b)
}

// cutUTF8 returns at most n bytes of s, not splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// redactContent redacts the text of every text part and text resource.
func redactContent(sc *SecretScanner, in []mcp.Content, counts map[string]int) []mcp.Content {
	out := make([]mcp.Content, len(in))
	for i, c := range in {
		switch x := c.(type) {
		case mcp.TextContent:
			x.Text = sc.Redact(x.Text, counts)
			out[i] = x
		case mcp.EmbeddedResource:
			if r, ok := x.Resource.(mcp.TextResourceContents); ok {
				r.Text = sc.Redact(r.Text, counts)
				x.Resource = r
			}
			out[i] = x
		default:
			out[i] = c
		}
	}
	return out
}

// joinText joins the text parts with "\n" (only parts of type "text").
func joinText(cs []mcp.Content) string {
	var parts []string
	for _, c := range cs {
		switch x := c.(type) {
		case mcp.TextContent:
			parts = append(parts, x.Text)
		case mcp.EmbeddedResource:
			if r, ok := x.Resource.(mcp.TextResourceContents); ok {
				parts = append(parts, r.Text)
			}
		}
	}
	return strings.Join(parts, "\n")
}
