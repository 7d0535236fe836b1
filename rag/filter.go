package rag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Op is a filter operator. The names and semantics follow Chroma's "where"
// language so the Chroma adapter can pass filters to the server unchanged.
type Op string

// Filter operators.
const (
	OpEq  Op = "$eq"
	OpNe  Op = "$ne"
	OpGt  Op = "$gt"
	OpGte Op = "$gte"
	OpLt  Op = "$lt"
	OpLte Op = "$lte"
	OpIn  Op = "$in"
	OpNin Op = "$nin"
	OpAnd Op = "$and"
	OpOr  Op = "$or"
)

// Filter is a metadata condition. Build it with Eq, Ne, Gt, Gte, Lt, Lte,
// In, Nin, And and Or. Semantics (the same on every backend):
//   - Eq and In match records whose key exists with an equal value; numbers
//     compare numerically (int64 7 equals float64 7.0), strings and bools
//     only equal values of their own type.
//   - Ne and Nin are the negations of Eq and In: they match records whose
//     key holds a different value and records without the key (a missing
//     value is "not equal", as on a Chroma server and in MongoDB).
//   - Gt, Gte, Lt and Lte take a number and match records whose key holds a
//     number in range; records without the key do not match.
//
// The conformance suite in rag/ragtest checks these semantics, missing keys
// included, on every adapter (a real Chroma server among them).
//   - And matches when every child matches, Or when at least one does.
type Filter struct {
	Op       Op
	Key      string
	Value    any      // Eq, Ne, Gt, Gte, Lt, Lte
	Values   []any    // In, Nin
	Children []Filter // And, Or
}

// Eq matches key == v.
func Eq(key string, v any) Filter { return Filter{Op: OpEq, Key: key, Value: normValue(v)} }

// Ne matches key != v, including records without the key.
func Ne(key string, v any) Filter { return Filter{Op: OpNe, Key: key, Value: normValue(v)} }

// Gt matches key > v (numbers).
func Gt(key string, v float64) Filter { return Filter{Op: OpGt, Key: key, Value: v} }

// Gte matches key >= v (numbers).
func Gte(key string, v float64) Filter { return Filter{Op: OpGte, Key: key, Value: v} }

// Lt matches key < v (numbers).
func Lt(key string, v float64) Filter { return Filter{Op: OpLt, Key: key, Value: v} }

// Lte matches key <= v (numbers).
func Lte(key string, v float64) Filter { return Filter{Op: OpLte, Key: key, Value: v} }

// In matches key equal to one of vs.
func In(key string, vs ...any) Filter {
	return Filter{Op: OpIn, Key: key, Values: normValues(vs)}
}

// Nin matches key equal to none of vs, including records without the key.
func Nin(key string, vs ...any) Filter {
	return Filter{Op: OpNin, Key: key, Values: normValues(vs)}
}

// And matches when every filter matches.
func And(fs ...Filter) Filter { return Filter{Op: OpAnd, Children: fs} }

// Or matches when any filter matches.
func Or(fs ...Filter) Filter { return Filter{Op: OpOr, Children: fs} }

func normValue(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case Priority:
		return string(x)
	case Source:
		return string(x)
	}
	return v
}

func normValues(vs []any) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = normValue(v)
	}
	return out
}

// Validate reports a malformed filter: an unknown operator, an empty key, a
// non-numeric range bound, an empty In list, or an And/Or with no children.
func (f Filter) Validate() error {
	switch f.Op {
	case OpAnd, OpOr:
		if len(f.Children) == 0 {
			return fmt.Errorf("filter %s needs at least one condition", f.Op)
		}
		for _, c := range f.Children {
			if err := c.Validate(); err != nil {
				return err
			}
		}
		return nil
	case OpEq, OpNe:
		if f.Key == "" {
			return fmt.Errorf("filter %s has an empty key", f.Op)
		}
		return checkScalar(f.Op, f.Key, f.Value)
	case OpGt, OpGte, OpLt, OpLte:
		if f.Key == "" {
			return fmt.Errorf("filter %s has an empty key", f.Op)
		}
		if _, ok := num(f.Value); !ok {
			return fmt.Errorf("filter %s on %q needs a number, got %T", f.Op, f.Key, f.Value)
		}
		return nil
	case OpIn, OpNin:
		if f.Key == "" {
			return fmt.Errorf("filter %s has an empty key", f.Op)
		}
		if len(f.Values) == 0 {
			return fmt.Errorf("filter %s on %q needs at least one value", f.Op, f.Key)
		}
		for _, v := range f.Values {
			if err := checkScalar(f.Op, f.Key, v); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("filter operator %q is not one of $eq $ne $gt $gte $lt $lte $in $nin $and $or", f.Op)
}

func checkScalar(op Op, key string, v any) error {
	switch x := v.(type) {
	case string, bool, int64:
		return nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("filter %s on %q: %v is not a finite number", op, key, x)
		}
		return nil
	}
	return fmt.Errorf("filter %s on %q: value of type %T is not string, number or bool", op, key, v)
}

func num(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

func equal(a, b any) bool {
	if x, ok := num(a); ok {
		y, ok := num(b)
		return ok && x == y
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// Match reports whether md satisfies f.
func (f Filter) Match(md Metadata) bool {
	switch f.Op {
	case OpAnd:
		for _, c := range f.Children {
			if !c.Match(md) {
				return false
			}
		}
		return true
	case OpOr:
		for _, c := range f.Children {
			if c.Match(md) {
				return true
			}
		}
		return false
	}
	v, ok := md[f.Key]
	if !ok {
		// A missing value is "not equal" to anything: only the negations
		// match (Chroma and MongoDB semantics).
		return f.Op == OpNe || f.Op == OpNin
	}
	switch f.Op {
	case OpEq:
		return equal(v, f.Value)
	case OpNe:
		return !equal(v, f.Value)
	case OpIn:
		for _, w := range f.Values {
			if equal(v, w) {
				return true
			}
		}
		return false
	case OpNin:
		for _, w := range f.Values {
			if equal(v, w) {
				return false
			}
		}
		return true
	}
	x, ok := num(v)
	if !ok {
		return false
	}
	y, _ := num(f.Value)
	switch f.Op {
	case OpGt:
		return x > y
	case OpGte:
		return x >= y
	case OpLt:
		return x < y
	case OpLte:
		return x <= y
	}
	return false
}

// MarshalJSON renders f in Chroma's where syntax, e.g.
// {"$and":[{"priority":{"$eq":"high"}},{"created_at":{"$gt":5}}]}.
func (f Filter) MarshalJSON() ([]byte, error) {
	switch f.Op {
	case OpAnd, OpOr:
		return json.Marshal(map[string][]Filter{string(f.Op): f.Children})
	case OpIn, OpNin:
		return json.Marshal(map[string]map[string][]any{f.Key: {string(f.Op): f.Values}})
	}
	return json.Marshal(map[string]map[string]any{f.Key: {string(f.Op): f.Value}})
}

// ParseFilter parses a filter in Chroma's where syntax. A bare value is
// shorthand for $eq ({"priority":"high"}); several keys in one object are
// joined with $and. Integral numbers become int64, others float64.
func ParseFilter(data []byte) (Filter, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return Filter{}, fmt.Errorf("filter is not valid JSON: %v", err)
	}
	if dec.More() {
		return Filter{}, fmt.Errorf("filter has trailing data after the JSON object")
	}
	f, err := parseFilter(raw, 0)
	if err != nil {
		return Filter{}, err
	}
	return f, f.Validate()
}

const maxFilterDepth = 32

func parseFilter(raw any, depth int) (Filter, error) {
	if depth > maxFilterDepth {
		return Filter{}, fmt.Errorf("filter nests deeper than %d levels", maxFilterDepth)
	}
	obj, ok := raw.(map[string]any)
	if !ok || len(obj) == 0 {
		return Filter{}, fmt.Errorf("filter must be a non-empty JSON object such as {\"priority\":{\"$eq\":\"high\"}}")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []Filter
	for _, k := range keys {
		v := obj[k]
		if k == string(OpAnd) || k == string(OpOr) {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return Filter{}, fmt.Errorf("%s needs a non-empty array of filters", k)
			}
			var cs []Filter
			for _, c := range arr {
				cf, err := parseFilter(c, depth+1)
				if err != nil {
					return Filter{}, err
				}
				cs = append(cs, cf)
			}
			parts = append(parts, Filter{Op: Op(k), Children: cs})
			continue
		}
		if strings.HasPrefix(k, "$") {
			return Filter{}, fmt.Errorf("operator %q is not allowed at the top level; use {\"key\":{\"%s\":value}}", k, k)
		}
		cond, isObj := v.(map[string]any)
		if !isObj {
			val, err := jsonScalar(v)
			if err != nil {
				return Filter{}, fmt.Errorf("filter on %q: %v", k, err)
			}
			parts = append(parts, Filter{Op: OpEq, Key: k, Value: val})
			continue
		}
		if len(cond) != 1 {
			return Filter{}, fmt.Errorf("filter on %q must have exactly one operator, got %d", k, len(cond))
		}
		for op, arg := range cond {
			switch Op(op) {
			case OpIn, OpNin:
				arr, ok := arg.([]any)
				if !ok {
					return Filter{}, fmt.Errorf("%s on %q needs an array", op, k)
				}
				vals := make([]any, 0, len(arr))
				for _, a := range arr {
					val, err := jsonScalar(a)
					if err != nil {
						return Filter{}, fmt.Errorf("%s on %q: %v", op, k, err)
					}
					vals = append(vals, val)
				}
				parts = append(parts, Filter{Op: Op(op), Key: k, Values: vals})
			case OpEq, OpNe, OpGt, OpGte, OpLt, OpLte:
				val, err := jsonScalar(arg)
				if err != nil {
					return Filter{}, fmt.Errorf("%s on %q: %v", op, k, err)
				}
				parts = append(parts, Filter{Op: Op(op), Key: k, Value: val})
			default:
				return Filter{}, fmt.Errorf("filter operator %q on %q is not one of $eq $ne $gt $gte $lt $lte $in $nin", op, k)
			}
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return Filter{Op: OpAnd, Children: parts}, nil
}

func jsonScalar(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(x.String(), ".eE") {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("number %s is out of range", x)
		}
		return f, nil
	}
	return nil, fmt.Errorf("value %v is not a string, number or bool", v)
}
