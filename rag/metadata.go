package rag

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Metadata is the metadata of one record. Values are string, int64, float64
// or bool; Validate rejects anything else. Use the Key* constants for the
// fields of the memory schema.
type Metadata map[string]any

// The one metadata schema of every stored memory.
// Times are unix milliseconds (int64) so that numeric range filters work on
// every backend.
const (
	KeyCreatedAt      = "created_at"       // int64 unix ms
	KeyLastAccessedAt = "last_accessed_at" // int64 unix ms
	KeyAccessCount    = "access_count"     // int64
	KeyPriority       = "priority"         // one of the Priority constants
	KeyLinks          = "links"            // comma-separated ids of linked memories
	KeySource         = "source"           // one of the Source constants
	KeyTrusted        = "trusted"          // bool
	KeySessionID      = "session_id"       // string
	KeyType           = "type"             // string, "general" when unset
	KeyFeedback       = "feedback"         // optional float64 in [0,1], user feedback score
)

// Priority is a memory's retention class.
type Priority string

// Priorities of the schema.
const (
	PriorityPermanent Priority = "permanent"
	PriorityHigh      Priority = "high"
	PrioritySession   Priority = "session"
	PriorityNormal    Priority = "normal"
	PriorityTemporary Priority = "temporary"
	PriorityAuto      Priority = "auto"
)

// Priorities lists the valid priorities.
func Priorities() []Priority {
	return []Priority{PriorityPermanent, PriorityHigh, PrioritySession, PriorityNormal, PriorityTemporary, PriorityAuto}
}

// ParsePriority accepts one of Priorities (case-insensitive).
func ParsePriority(s string) (Priority, error) {
	p := Priority(strings.ToLower(strings.TrimSpace(s)))
	for _, q := range Priorities() {
		if p == q {
			return p, nil
		}
	}
	return "", fmt.Errorf("priority %q is not one of permanent, high, session, normal, temporary, auto", s)
}

// Source says where a memory came from.
type Source string

// Sources of the schema.
const (
	SourceUser  Source = "user"
	SourceModel Source = "model"
	SourceTool  Source = "tool"
	SourceWeb   Source = "web"
	SourceSkill Source = "skill"
)

// ParseSource accepts user, model, tool, web or skill (case-insensitive).
func ParseSource(s string) (Source, error) {
	v := Source(strings.ToLower(strings.TrimSpace(s)))
	switch v {
	case SourceUser, SourceModel, SourceTool, SourceWeb, SourceSkill:
		return v, nil
	}
	return "", fmt.Errorf("source %q is not one of user, model, tool, web, skill", s)
}

// DefaultType is the memory type when none is set.
const DefaultType = "general"

// Memory is the typed view of a record's metadata under the schema.
type Memory struct {
	CreatedAt      time.Time // zero when unknown
	LastAccessedAt time.Time // zero when never accessed
	AccessCount    int64
	Priority       Priority // "" when unset (treated as auto)
	Links          []string
	Source         Source
	Trusted        bool
	SessionID      string
	Type           string
}

// Metadata renders m under the schema. Zero times and empty strings are
// left out.
func (m Memory) Metadata() Metadata {
	md := Metadata{KeyAccessCount: m.AccessCount, KeyTrusted: m.Trusted}
	if !m.CreatedAt.IsZero() {
		md[KeyCreatedAt] = m.CreatedAt.UnixMilli()
	}
	if !m.LastAccessedAt.IsZero() {
		md[KeyLastAccessedAt] = m.LastAccessedAt.UnixMilli()
	}
	if m.Priority != "" {
		md[KeyPriority] = string(m.Priority)
	}
	if len(m.Links) > 0 {
		md[KeyLinks] = strings.Join(m.Links, ",")
	}
	if m.Source != "" {
		md[KeySource] = string(m.Source)
	}
	if m.SessionID != "" {
		md[KeySessionID] = m.SessionID
	}
	if m.Type != "" {
		md[KeyType] = m.Type
	}
	return md
}

// Memory reads the schema fields of md; missing or mistyped fields stay zero.
func (md Metadata) Memory() Memory {
	var m Memory
	if v, ok := md.Int(KeyCreatedAt); ok && v != 0 {
		m.CreatedAt = time.UnixMilli(v)
	}
	if v, ok := md.Int(KeyLastAccessedAt); ok && v != 0 {
		m.LastAccessedAt = time.UnixMilli(v)
	}
	m.AccessCount, _ = md.Int(KeyAccessCount)
	if s, ok := md[KeyPriority].(string); ok {
		m.Priority = Priority(s)
	}
	if s, ok := md[KeyLinks].(string); ok && s != "" {
		m.Links = strings.Split(s, ",")
	}
	if s, ok := md[KeySource].(string); ok {
		m.Source = Source(s)
	}
	m.Trusted, _ = md[KeyTrusted].(bool)
	m.SessionID, _ = md[KeySessionID].(string)
	m.Type, _ = md[KeyType].(string)
	return m
}

// Int returns the value of key as an int64 (a float64 with an integral value
// counts).
func (md Metadata) Int(key string) (int64, bool) {
	switch v := md[key].(type) {
	case int64:
		return v, true
	case float64:
		if v == math.Trunc(v) && !math.IsInf(v, 0) {
			return int64(v), true
		}
	}
	return 0, false
}

// Number returns the value of key as a float64 if it is numeric.
func (md Metadata) Number(key string) (float64, bool) {
	switch v := md[key].(type) {
	case int64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Clone returns a shallow copy (values are scalars, so it is a deep copy).
func (md Metadata) Clone() Metadata {
	if md == nil {
		return nil
	}
	out := make(Metadata, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}

// Validate reports a key that is empty, starts with '#' or '$' (reserved by
// Chroma), or a value that is not string, int64, float64 (finite) or bool.
// Plain int values are accepted and should be normalised with Normalize.
func (md Metadata) Validate() error {
	for k, v := range md {
		if k == "" || strings.HasPrefix(k, "#") || strings.HasPrefix(k, "$") {
			return fmt.Errorf("metadata key %q is not allowed: keys must be non-empty and not start with '#' or '$'", k)
		}
		switch x := v.(type) {
		case string, int64, bool, int:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("metadata %q is %v; numbers must be finite", k, x)
			}
		default:
			return fmt.Errorf("metadata %q has type %T; allowed are string, int64, float64 and bool", k, v)
		}
	}
	return nil
}

// Normalize converts int values to int64 in place and returns md.
func (md Metadata) Normalize() Metadata {
	for k, v := range md {
		if x, ok := v.(int); ok {
			md[k] = int64(x)
		}
	}
	return md
}

// String renders md deterministically as "k=v k=v" (sorted keys).
func (md Metadata) String() string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, md[k])
	}
	return b.String()
}
