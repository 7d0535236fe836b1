package mcphost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Limits of the text form for models without tool calling.
const (
	// TextCallTag opens a call in a model's answer.
	TextCallTag = "[USE_MCP:"
	// DefaultMaxTextCalls is how many calls of one answer are run when
	// ParseTextCalls is given max 0; the rest are reported as dropped.
	DefaultMaxTextCalls = 4
	// MaxTextCallArgsBytes caps the JSON arguments of one call.
	MaxTextCallArgsBytes = 16 << 10
	// MaxTextCallCandidates is how many "[USE_MCP:" tags of one answer are
	// examined at most, valid or not, so a hostile answer full of broken
	// tags costs bounded work.
	MaxTextCallCandidates = 64
	// DefaultTextResultChars caps a result put back into the prompt when
	// FormatTextResult is given max 0 (about 500 tokens).
	DefaultTextResultChars = 2000
)

// TextCall is one `[USE_MCP: server.tool {json}]` found in a model's answer.
type TextCall struct {
	// Server and Tool name the tool; Name is "server.tool".
	Server, Tool, Name string
	// Args are the decoded arguments ({} when the call has none).
	Args map[string]any
	// Start and End are the byte offsets of the call in the answer.
	Start, End int
	// Err is set when the call is malformed (its arguments are not one
	// JSON object, or too large); such a call must not be run.
	Err error
}

// ParseTextCalls finds the calls in a model's answer, in order, keeping at
// most max (0 means DefaultMaxTextCalls) and returning how many more were
// dropped. Unlike the spec's regular expression it accepts hyphens and dots
// in names and JSON arguments containing "}]", because the arguments are
// read by a JSON decoder rather than up to the first "}]".
func ParseTextCalls(answer string, max int) (calls []TextCall, dropped int) {
	if max <= 0 {
		max = DefaultMaxTextCalls
	}
	pos := 0
	for examined := 0; ; examined++ {
		i := strings.Index(answer[pos:], TextCallTag)
		if i < 0 || examined >= MaxTextCallCandidates {
			return calls, dropped
		}
		start := pos + i
		c, end, ok := parseOne(answer, start)
		if !ok {
			pos = start + len(TextCallTag)
			continue
		}
		pos = end
		if len(calls) >= max {
			dropped++
			continue
		}
		calls = append(calls, c)
	}
}

// parseOne parses the call starting at answer[start:] (which begins with
// TextCallTag). ok is false when it is not a call at all (no valid name or
// no closing bracket); a call with bad arguments is returned with Err set.
func parseOne(answer string, start int) (c TextCall, end int, ok bool) {
	p := start + len(TextCallTag)
	p = skipSpace(answer, p)
	nameStart := p
	for p < len(answer) && nameByte(answer[p]) {
		p++
	}
	name := answer[nameStart:p]
	server, tool, found := strings.Cut(name, ".")
	if !found || !reServerName.MatchString(server) || tool == "" || strings.HasSuffix(tool, ".") {
		return TextCall{}, 0, false
	}
	c = TextCall{Server: server, Tool: tool, Name: name, Start: start}
	p = skipSpace(answer, p)
	if p < len(answer) && answer[p] == ']' {
		c.Args, c.End = map[string]any{}, p+1
		return c, p + 1, true
	}
	if p >= len(answer) || answer[p] != '{' {
		return TextCall{}, 0, false
	}
	// The decoder and the search for ']' look at most one argument limit
	// ahead, so each candidate costs bounded work.
	window := answer[p:min(len(answer), p+MaxTextCallArgsBytes+64)]
	dec := json.NewDecoder(strings.NewReader(window))
	dec.UseNumber()
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		// Not one JSON value: the call ends at the next "]" so that the text
		// after it is still searched; the call itself is refused.
		j := strings.IndexByte(window, ']')
		if j < 0 {
			return TextCall{}, 0, false
		}
		c.End, c.Err = p+j+1, errors.New("invalid JSON arguments (or over the size limit): give one JSON object")
		return c, c.End, true
	}
	q := skipSpace(answer, p+int(dec.InputOffset()))
	if q >= len(answer) || answer[q] != ']' {
		j := strings.IndexByte(answer[q:min(len(answer), q+MaxTextCallArgsBytes)], ']')
		if j < 0 {
			return TextCall{}, 0, false
		}
		c.End, c.Err = q+j+1, errors.New("invalid call: the JSON arguments must be followed by ']'")
		return c, c.End, true
	}
	c.End = q + 1
	if len(raw) > MaxTextCallArgsBytes {
		c.Err = fmt.Errorf("arguments of %d bytes exceed the limit of %d", len(raw), MaxTextCallArgsBytes)
		return c, c.End, true
	}
	var args map[string]any
	d2 := json.NewDecoder(bytes.NewReader(raw))
	d2.UseNumber()
	if err := d2.Decode(&args); err != nil || args == nil {
		c.Err = errors.New("invalid JSON arguments: give one JSON object")
		return c, c.End, true
	}
	c.Args = args
	return c, c.End, true
}

func skipSpace(s string, p int) int {
	for p < len(s) && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r') {
		p++
	}
	return p
}

// nameByte reports whether b may appear in a qualified tool name.
func nameByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.'
}

// FormatTextResult renders the outcome of one text-form call for the
// prompt, cut to max characters of result text (0 means
// DefaultTextResultChars):
//
//	[MCP_RESULT server.tool]
//	…text…
//	[/MCP_RESULT]
//
// A failed call renders its error message instead of the text.
func FormatTextResult(name string, res *Result, err error, max int) string {
	if max <= 0 {
		max = DefaultTextResultChars
	}
	var body string
	switch {
	case err != nil:
		body = "error: " + err.Error()
	case res == nil:
		body = "error: no result"
	default:
		body = res.Text
		if res.IsError {
			body = "tool error: " + body
		}
	}
	if r := []rune(body); len(r) > max {
		body = string(r[:max]) + fmt.Sprintf("\n[truncated: %d of %d characters shown]", max, len(r))
	}
	// A result cannot close its own block early.
	body = strings.ReplaceAll(body, "[/MCP_RESULT]", "[/MCP_RESULT\u200b]")
	return "[MCP_RESULT " + name + "]\n" + body + "\n[/MCP_RESULT]"
}
