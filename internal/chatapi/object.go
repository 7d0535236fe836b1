package chatapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/talos-ironclad/talos/internal/redact"
)

// ObjectSpec says what one JSON object sent to a chat front end may hold:
// the HTTP API's request body and the dashboard's WebSocket frames are
// both decoded by it, so they name problems the same way.
type ObjectSpec struct {
	// What names the input in errors: "the request body", "the message".
	What string
	// Hint says what to send instead of something that is not an object,
	// e.g. `send {"message": "hello"}`.
	Hint string
	// Fields are the members allowed, in the order errors list them; each
	// holds a string, or null, which counts as absent.
	Fields []string
	// TypeNotes adds words, per field, to "it must be a string" (how to
	// leave the field out, say).
	TypeNotes map[string]string
	// Required are the fields that must be present (and not null), each
	// with what it holds, which the "missing" problem says.
	Required map[string]string
}

// Decode decodes b as exactly one JSON object of s. It returns the string
// members present, and one problem for each member that is not a string
// (naming its clipped value), not allowed (naming it) or required and
// missing; the caller adds its own and reports them all with Problems. err is set instead, alone,
// when b is not valid UTF-8 or not exactly one JSON object.
func (s ObjectSpec) Decode(b []byte) (fields map[string]string, problems []string, err error) {
	if !utf8.Valid(b) {
		return nil, nil, fmt.Errorf("%s is not valid UTF-8", s.What)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, nil, fmt.Errorf("%s is not a JSON object (%s); %s", s.What, jsonProblem(err), s.Hint)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%s holds more than one JSON value; send exactly one object", s.What)
	}
	fields = make(map[string]string, len(raw))
	for k, v := range raw {
		if !s.allowed(k) {
			problems = append(problems, fmt.Sprintf("field %s is unknown: allowed fields are %s", redact.Value(k), list(s.Fields)))
			continue
		}
		if string(v) == "null" {
			continue
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			p := fmt.Sprintf("field %s is %s: it must be a string", k, clipJSON(v))
			if note := s.TypeNotes[k]; note != "" {
				p += " " + note
			}
			problems = append(problems, p)
			continue
		}
		fields[k] = str
	}
	for k, holds := range s.Required {
		if v, ok := raw[k]; !ok || string(v) == "null" {
			problems = append(problems, fmt.Sprintf("field %s is missing: it holds %s", k, holds))
		}
	}
	return fields, problems, nil
}

func (s ObjectSpec) allowed(k string) bool {
	for _, f := range s.Fields {
		if f == k {
			return true
		}
	}
	return false
}

// Problems is nil without problems, else one error listing them all,
// sorted, so the same input always gets the same message.
func Problems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return errors.New(strings.Join(problems, "; "))
}

// clipJSON shows a raw JSON value as sent, so a number reads as a number
// and an array as an array: its first 40 runes, then "…", with anything
// unprintable escaped.
func clipJSON(v json.RawMessage) string {
	var b strings.Builder
	n := 0
	for _, r := range string(v) {
		if n == 40 {
			b.WriteString("…")
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
		} else {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		n++
	}
	return b.String()
}

// list joins names as "a", "a and b" or "a, b and c".
func list(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
