package mcphost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// ToolDef is one tool as a server described it.
type ToolDef struct {
	// Server is the name of the server offering the tool.
	Server string
	// Name is the tool's name on that server.
	Name string
	// Title is the tool's display title (may be empty).
	Title string
	// Description is the tool's full description, as the server sent it.
	Description string
	// InputSchema is the JSON Schema of the arguments, in canonical form
	// (object keys sorted).
	InputSchema json.RawMessage
	// Required lists the schema's required properties; Params all of its
	// property names, sorted.
	Required, Params []string
	// Hash is the hex SHA-256 of the canonical JSON of title, description
	// and input schema: what a pin records.
	Hash string
}

// QualifiedName returns "server.tool".
func (d ToolDef) QualifiedName() string { return d.Server + "." + d.Name }

// toolDef converts a discovered tool into a ToolDef with its hash.
func toolDef(server string, t mcp.Tool) (ToolDef, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return ToolDef{}, err
	}
	var m struct {
		InputSchema any `json:"inputSchema"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return ToolDef{}, err
	}
	schema, err := json.Marshal(m.InputSchema) // maps marshal with sorted keys: canonical
	if err != nil {
		return ToolDef{}, err
	}
	d := ToolDef{Server: server, Name: t.Name, Title: t.Title, Description: t.Description, InputSchema: schema}
	if obj, ok := m.InputSchema.(map[string]any); ok {
		if props, ok := obj["properties"].(map[string]any); ok {
			d.Params = sortedKeys(props)
		}
		if req, ok := obj["required"].([]any); ok {
			for _, r := range req {
				if s, ok := r.(string); ok {
					d.Required = append(d.Required, s)
				}
			}
		}
	}
	canon, err := json.Marshal(map[string]any{"title": d.Title, "description": d.Description, "inputSchema": json.RawMessage(schema)})
	if err != nil {
		return ToolDef{}, err
	}
	sum := sha256.Sum256(canon)
	d.Hash = hex.EncodeToString(sum[:])
	return d, nil
}

// PinStore keeps the approved tool definitions of each server identity:
// tool name → definition hash. Implementations must be safe for
// concurrent use.
type PinStore interface {
	// LoadPins returns the pins of identity; found is false for an
	// identity never approved, and true for one approved with no tools.
	LoadPins(ctx context.Context, identity string) (pins map[string]string, found bool, err error)
	// SavePins replaces the pins of identity (an empty map approves a
	// server with no tools).
	SavePins(ctx context.Context, identity string, pins map[string]string) error
}

// MemoryPins is a PinStore in memory (pins last as long as the process).
type MemoryPins struct {
	mu   sync.Mutex
	pins map[string]map[string]string
}

// NewMemoryPins returns an empty MemoryPins.
func NewMemoryPins() *MemoryPins { return &MemoryPins{pins: map[string]map[string]string{}} }

// LoadPins returns a copy of the pins of identity.
func (m *MemoryPins) LoadPins(_ context.Context, identity string) (map[string]string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pins[identity]
	if !ok {
		return nil, false, nil
	}
	return maps.Clone(p), true, nil
}

// SavePins replaces the pins of identity with a copy of pins.
func (m *MemoryPins) SavePins(_ context.Context, identity string, pins map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := maps.Clone(pins)
	if c == nil {
		c = map[string]string{}
	}
	m.pins[identity] = c
	return nil
}

// Diff is what changed in a server's tool definitions since they were
// approved.
type Diff struct {
	// Added are tools offered now that were not approved (a renamed tool
	// shows up as one removed and one added).
	Added []ToolDef
	// Changed are approved tools whose description or schema changed.
	Changed []ToolChange
	// Removed are approved tools the server no longer offers.
	Removed []string
	// Fingerprint identifies the definitions the server offers now (a hash
	// of every tool's name and definition hash). Approve takes it back, so
	// an operator approves exactly the definitions reviewed.
	Fingerprint string
}

// fingerprint hashes the names and definition hashes of live.
func fingerprint(live map[string]ToolDef) string {
	h := sha256.New()
	for _, n := range sortedKeys(live) {
		h.Write([]byte(n + "\x00" + live[n].Hash + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// ToolChange is one approved tool whose definition changed.
type ToolChange struct {
	// Name is the tool's name.
	Name string
	// OldHash is the approved definition's hash.
	OldHash string
	// Old is the approved definition when this process saw it (after a
	// restart only its hash is known, and Old is zero).
	Old ToolDef
	// New is the definition offered now.
	New ToolDef
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d.Added) == 0 && len(d.Changed) == 0 && len(d.Removed) == 0 }

// Suspicious reports whether the diff must quarantine the server: a tool
// added or changed after approval. A removal alone is harmless.
func (d Diff) Suspicious() bool { return len(d.Added) > 0 || len(d.Changed) > 0 }

// diff compares the offered definitions with the pins.
func diff(pins map[string]string, live map[string]ToolDef) Diff {
	var d Diff
	for _, name := range sortedKeys(live) {
		t := live[name]
		h, ok := pins[name]
		switch {
		case !ok:
			d.Added = append(d.Added, t)
		case h != t.Hash:
			d.Changed = append(d.Changed, ToolChange{Name: name, OldHash: h, New: t})
		}
	}
	for _, name := range sortedKeys(pins) {
		if _, ok := live[name]; !ok {
			d.Removed = append(d.Removed, name)
		}
	}
	slices.Sort(d.Removed)
	return d
}
