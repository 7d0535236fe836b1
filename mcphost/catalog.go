package mcphost

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode"
)

// Catalog limits for small models (spec §2.6, R-7.4).
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

// Catalog returns the tools a call could reach now: approved definitions
// of servers that are not quarantined, allowed by Config.Allow/Deny and
// not shadowed by an earlier server's tool of the same name.
func (h *Host) Catalog() Catalog {
	h.mu.Lock()
	owners := h.owners
	h.mu.Unlock()
	var c Catalog
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
			c.Tools = append(c.Tools, catalogTool(approved[n]))
		}
	}
	slices.SortFunc(c.Tools, func(a, b CatalogTool) int { return strings.Compare(a.Name, b.Name) })
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
// rounded up (spec §2.6: about 15–20 per tool).
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
