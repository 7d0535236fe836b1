package mcphost

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode"
)

// Catalog limits for small models.
const (
	// CatalogDescriptionChars is the most characters of a description shown.
	CatalogDescriptionChars = 60
	// CatalogMaxParams is the most parameters shown per tool.
	CatalogMaxParams = 3
	// CatalogHeader starts the catalog text.
	CatalogHeader = "\nMCP Tools (invoke via [USE_MCP: server.tool {json}]):"
)

// CatalogTool is one callable tool as a small model sees it.
type CatalogTool struct {
	// Name is the qualified name "server.tool".
	Name string
	// Description is the description on one line, cut to
	// CatalogDescriptionChars characters.
	Description string
	// Params are at most CatalogMaxParams parameter names, required ones
	// first, optional ones suffixed "?".
	Params []string
	// MoreParams is true when the tool has parameters not shown.
	MoreParams bool
	// InputSchema is the tool's full, pinned argument schema, for models
	// with native tool calling.
	InputSchema json.RawMessage
}

// Catalog is the list of tools the model may call, sorted by name.
type Catalog struct {
	// Tools are the callable tools.
	Tools []CatalogTool
}

// Tools returns the full, pinned definitions of the tools a call could
// reach now: approved definitions of servers that are not quarantined,
// allowed by Config.Allow/Deny and not shadowed by an earlier server's tool
// of the same name; sorted by qualified name.
func (h *Host) Tools() []ToolDef {
	h.mu.Lock()
	owners := h.owners
	h.mu.Unlock()
	var out []ToolDef
	for _, s := range h.order {
		s.mu.Lock()
		quarantined, approved := s.quarantine != nil, s.approved
		s.mu.Unlock()
		if quarantined {
			continue
		}
		for _, n := range sortedKeys(approved) {
			if owners[strings.ToLower(n)] != s.name || h.allowed(s.name, n) != nil {
				continue
			}
			out = append(out, approved[n])
		}
	}
	slices.SortFunc(out, func(a, b ToolDef) int { return strings.Compare(a.QualifiedName(), b.QualifiedName()) })
	return out
}

// Catalog returns Tools for a small model's prompt.
func (h *Host) Catalog() Catalog {
	var c Catalog
	for _, d := range h.Tools() {
		c.Tools = append(c.Tools, catalogTool(d))
	}
	return c
}

func catalogTool(d ToolDef) CatalogTool {
	t := CatalogTool{Name: d.QualifiedName(), Description: oneLine(d.Description, CatalogDescriptionChars), InputSchema: d.InputSchema}
	var params []string
	for _, r := range d.Required {
		if slices.Contains(d.Params, r) && !slices.Contains(params, r) {
			params = append(params, r)
		}
	}
	for _, p := range d.Params {
		if !slices.Contains(d.Required, p) {
			params = append(params, p+"?")
		}
	}
	if len(params) > CatalogMaxParams {
		params, t.MoreParams = params[:CatalogMaxParams], true
	}
	for i, p := range params {
		params[i] = paramName(p)
	}
	t.Params = params
	return t
}

// oneLine folds every run of whitespace and control characters into one
// space (a description cannot add lines to the prompt) and keeps at most n
// characters.
func oneLine(s string, n int) string {
	var b strings.Builder
	count, space := 0, false
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			space = true
			continue
		}
		if count >= n {
			break
		}
		if space && b.Len() > 0 {
			if count+1 >= n {
				break
			}
			b.WriteByte(' ')
			count++
		}
		space = false
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// Text renders the catalog for a prompt: CatalogHeader, then one line per
// tool "  server.tool(a, b?) — description". An empty catalog renders as "".
func (c Catalog) Text() string {
	if len(c.Tools) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(CatalogHeader)
	for _, t := range c.Tools {
		b.WriteString("\n  ")
		b.WriteString(t.Name)
		b.WriteByte('(')
		b.WriteString(strings.Join(t.Params, ", "))
		if t.MoreParams {
			b.WriteString(", …")
		}
		b.WriteByte(')')
		if t.Description != "" {
			b.WriteString(" — ")
			b.WriteString(t.Description)
		}
	}
	return b.String()
}

// Tokens estimates the prompt tokens of Text as one token per 4 bytes,
// rounded up (about 15–20 per tool).
func (c Catalog) Tokens() int { return (len(c.Text()) + 3) / 4 }

// paramName keeps the characters of a parameter name a model can write
// back (A-Z a-z 0-9 _ - . and the optional marker "?"), at most 40.
func paramName(p string) string {
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p) && len(b) < 40; i++ {
		if nameByte(p[i]) || p[i] == '?' && i == len(p)-1 {
			b = append(b, p[i])
		}
	}
	if len(b) == 0 || string(b) == "?" {
		return "arg" + string(b)
	}
	return string(b)
}

// Function is a catalog tool as a native tool definition. Its fields match
// llm.Tool's, so llm.Tool(f) converts it for the Ollama and Gemini
// adapters.
type Function struct {
	// Name is the qualified name "server.tool" (Host.Call takes it back).
	Name string
	// Description is the catalog's one-line description (at most
	// CatalogDescriptionChars characters).
	Description string
	// Parameters is a trimmed JSON Schema object: every required property
	// and optional ones up to CatalogMaxParams in all; each property keeps
	// its type, enum and item type, and a one-line description of at most
	// CatalogDescriptionChars characters.
	Parameters map[string]any
}

// Functions returns the catalog as native tool definitions, sorted by
// name.
func (c Catalog) Functions() []Function {
	out := make([]Function, 0, len(c.Tools))
	for _, t := range c.Tools {
		out = append(out, Function{Name: t.Name, Description: t.Description, Parameters: trimSchema(t.InputSchema)})
	}
	return out
}

// FunctionTokens estimates the prompt tokens of Functions as one token per
// 4 bytes of their JSON, rounded up.
func (c Catalog) FunctionTokens() int {
	b, _ := json.Marshal(c.Functions())
	return (len(b) + 3) / 4
}

// trimSchema keeps what a small model needs to fill in the arguments.
func trimSchema(raw json.RawMessage) map[string]any {
	out := map[string]any{"type": "object", "properties": map[string]any{}}
	var s struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return out
	}
	var keep []string
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; ok && !slices.Contains(keep, r) {
			keep = append(keep, r)
		}
	}
	required := slices.Clone(keep)
	for _, p := range sortedKeys(s.Properties) {
		if len(keep) >= CatalogMaxParams {
			break
		}
		if !slices.Contains(keep, p) {
			keep = append(keep, p)
		}
	}
	props := map[string]any{}
	for _, p := range keep {
		props[p] = trimProperty(s.Properties[p])
	}
	out["properties"] = props
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func trimProperty(p map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range []string{"type", "enum", "format"} {
		if v, ok := p[k]; ok {
			out[k] = v
		}
	}
	if d, ok := p["description"].(string); ok && d != "" {
		out["description"] = oneLine(d, CatalogDescriptionChars)
	}
	if items, ok := p["items"].(map[string]any); ok {
		if t, ok := items["type"]; ok {
			out["items"] = map[string]any{"type": t}
		}
	}
	return out
}
