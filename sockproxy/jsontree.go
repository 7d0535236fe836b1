package sockproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The body filter works on an ordered JSON tree instead of Docker's structs
// because the engine decodes JSON the lenient encoding/json way: keys match
// struct fields case-insensitively (with Unicode folding: "ſysctls" with a
// long s and "NetworKMode" with a Kelvin sign both match), and of two keys
// that fold to the same field the last wins. The proxy therefore rejects any
// two keys in one object that fold together, matches field names by the same
// folding, and forwards the tree it checked, re-encoded, so the engine sees
// exactly what was inspected.

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

type jvalue struct {
	kind jkind
	b    bool
	s    string // string value, or number text
	arr  []*jvalue
	obj  []jmember
}

type jmember struct {
	key  string
	fold string // foldKey(key)
	val  *jvalue
}

// maxJSONDepth bounds nesting; a create body is at most 5 levels deep.
const maxJSONDepth = 32

// parseJSON decodes exactly one JSON value from b (trailing whitespace only),
// rejecting keys in one object that are equal under Unicode case folding.
func parseJSON(b []byte) (*jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (*jvalue, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := token(dec)
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &jvalue{kind: jNull}, nil
	case bool:
		return &jvalue{kind: jBool, b: t}, nil
	case json.Number:
		return &jvalue{kind: jNumber, s: string(t)}, nil
	case string:
		return &jvalue{kind: jString, s: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := &jvalue{kind: jArray}
			for dec.More() {
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := token(dec); err != nil {
				return nil, err
			}
			return v, nil
		case '{':
			v := &jvalue{kind: jObject}
			seen := map[string]string{}
			for dec.More() {
				kt, err := token(dec)
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				f := foldKey(key)
				if prev, dup := seen[f]; dup {
					return nil, fmt.Errorf("duplicate key %q (same as %q when case is ignored, as the engine does)", truncate(key, 64), truncate(prev, 64))
				}
				seen[f] = key
				e, err := parseValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.obj = append(v.obj, jmember{key: key, fold: f, val: e})
			}
			if _, err := token(dec); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// foldKey maps s to a canonical form such that foldKey(a) == foldKey(b)
// exactly when strings.EqualFold(a, b), which is how encoding/json matches
// keys to fields: each rune is replaced by the smallest rune of its simple
// folding orbit (so K, k and the Kelvin sign all become K).
// token reads one token, reporting a truncated document clearly.
func token(dec *json.Decoder) (json.Token, error) {
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.New("unexpected end of JSON")
	}
	return tok, err
}

func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		// In ASCII each letter's orbit minimum is its upper case (k's orbit
		// holds the Kelvin sign and s's the long s, both above ASCII).
		return strings.ToUpper(s)
	}
	var b []byte
	for _, r := range s {
		if r == utf8.RuneError {
			b = utf8.AppendRune(b, r)
			continue
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b = utf8.AppendRune(b, m)
	}
	return string(b)
}

// checkNoDuplicateKeys reports an error if b is not one JSON value or has
// keys that fold together.
func checkNoDuplicateKeys(b []byte) error {
	_, err := parseJSON(b)
	return err
}

// get returns the member of an object whose key folds to name, or nil.
func (v *jvalue) get(name string) *jvalue {
	if v == nil || v.kind != jObject {
		return nil
	}
	f := foldKey(name)
	for _, m := range v.obj {
		if m.fold == f {
			return m.val
		}
	}
	return nil
}

// set replaces or appends a member.
func (v *jvalue) set(name string, val *jvalue) {
	f := foldKey(name)
	for i, m := range v.obj {
		if m.fold == f {
			v.obj[i].val = val
			return
		}
	}
	v.obj = append(v.obj, jmember{key: name, fold: f, val: val})
}

// isEmpty reports whether v is absent, null, false, 0, "", [] or {}.
func (v *jvalue) isEmpty() bool {
	if v == nil {
		return true
	}
	switch v.kind {
	case jNull:
		return true
	case jBool:
		return !v.b
	case jNumber:
		f, err := strconv.ParseFloat(v.s, 64)
		return err == nil && f == 0
	case jString:
		return v.s == ""
	case jArray:
		return len(v.arr) == 0
	case jObject:
		return len(v.obj) == 0
	}
	return false
}

// encode appends the JSON encoding of v.
func (v *jvalue) encode(b []byte) []byte {
	switch v.kind {
	case jNull:
		return append(b, "null"...)
	case jBool:
		return strconv.AppendBool(b, v.b)
	case jNumber:
		return append(b, v.s...)
	case jString:
		return appendString(b, v.s)
	case jArray:
		b = append(b, '[')
		for i, e := range v.arr {
			if i > 0 {
				b = append(b, ',')
			}
			b = e.encode(b)
		}
		return append(b, ']')
	case jObject:
		b = append(b, '{')
		for i, m := range v.obj {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, m.key)
			b = append(b, ':')
			b = m.val.encode(b)
		}
		return append(b, '}')
	}
	return b
}

func appendString(b []byte, s string) []byte {
	enc, _ := json.Marshal(s) // a string always marshals
	return append(b, enc...)
}
