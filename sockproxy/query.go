package sockproxy

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// maxQueryLen bounds the raw query string.
const maxQueryLen = 4096

// paramKind says how one query parameter's value is validated.
type paramKind int

const (
	pBool paramKind = iota + 1
	pInt
	pTime
	pSignal
	pCondition
	pName
	pPlatform
	pFilters
	pTail
	pDetachKeys
)

var (
	reInt        = regexp.MustCompile(`^-?[0-9]{1,12}$`)
	reTime       = regexp.MustCompile(`^[0-9A-Za-z:.+-]{1,40}$`)
	reSignal     = regexp.MustCompile(`^[A-Za-z0-9+]{1,16}$`)
	reName       = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	rePlatform   = regexp.MustCompile(`^[a-z0-9_./-]{1,64}$`)
	reDetachKeys = regexp.MustCompile(`^[a-zA-Z0-9,@^_\[\]\\-]{1,64}$`)
)

// allowedParams lists, per op, the query parameters accepted and their kind.
// Anything else is denied: for example start's checkpoint-dir (a host path)
// and remove's link.
var allowedParams = map[Op]map[string]paramKind{
	OpPing:    {},
	OpVersion: {},
	OpList: {"all": pBool, "limit": pInt, "size": pBool, "filters": pFilters,
		"before": pName, "since": pName},
	OpCreate:  {"name": pName, "platform": pPlatform},
	OpInspect: {"size": pBool},
	OpStart:   {"detachKeys": pDetachKeys},
	OpStop:    {"t": pInt, "signal": pSignal},
	OpWait:    {"condition": pCondition},
	OpLogs: {"follow": pBool, "stdout": pBool, "stderr": pBool, "since": pTime, "until": pTime,
		"timestamps": pBool, "tail": pTail, "details": pBool},
	OpKill:   {"signal": pSignal},
	OpRemove: {"force": pBool, "v": pBool},
	OpUpdate: {},
	OpAttach: {"stream": pBool, "stdin": pBool, "stdout": pBool, "stderr": pBool, "logs": pBool,
		"detachKeys": pDetachKeys},
}

// allowedListFilters are the filter terms a container list may use.
var allowedListFilters = map[string]bool{
	"id": true, "name": true, "label": true, "status": true, "ancestor": true, "before": true,
	"since": true, "exited": true, "health": true, "network": true, "volume": true,
	"publish": true, "expose": true, "is-task": true, "isolation": true,
}

func validBool(v string) bool {
	switch strings.ToLower(v) {
	case "", "0", "1", "true", "false":
		return true
	}
	return false
}

// checkQuery validates a raw query string for op and returns the query to
// forward. A container list gets the Talos label added to its filters.
func checkQuery(op Op, raw, label string) (string, error) {
	if len(raw) > maxQueryLen {
		return "", fmt.Errorf("query string is %d bytes long, the limit is %d", len(raw), maxQueryLen)
	}
	allowed := allowedParams[op]
	vals := url.Values{}
	if raw != "" {
		for _, kv := range strings.Split(raw, "&") {
			if kv == "" {
				continue
			}
			if strings.Contains(kv, ";") {
				return "", fmt.Errorf("query contains ';', which is not a separator the proxy accepts")
			}
			k, v, _ := strings.Cut(kv, "=")
			key, err := url.QueryUnescape(k)
			if err != nil {
				return "", fmt.Errorf("query key %q is not validly encoded", k)
			}
			val, err := url.QueryUnescape(v)
			if err != nil {
				return "", fmt.Errorf("query value of %q is not validly encoded", key)
			}
			kind, ok := allowed[key]
			if !ok {
				return "", fmt.Errorf("query parameter %q is not allowed on %s (allowed: %s)", key, op, paramNames(allowed))
			}
			if vals.Has(key) {
				return "", fmt.Errorf("query parameter %q is repeated", key)
			}
			if err := checkParam(kind, key, val); err != nil {
				return "", err
			}
			vals.Set(key, val)
		}
	}
	if op == OpList {
		f, err := listFilters(vals.Get("filters"), label)
		if err != nil {
			return "", err
		}
		vals.Set("filters", f)
	}
	return vals.Encode(), nil
}

func paramNames(m map[string]paramKind) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func checkParam(kind paramKind, key, val string) error {
	ok := true
	switch kind {
	case pBool:
		ok = validBool(val)
	case pInt:
		ok = reInt.MatchString(val)
	case pTime:
		ok = reTime.MatchString(val)
	case pSignal:
		ok = reSignal.MatchString(val)
	case pCondition:
		ok = val == "" || val == "not-running" || val == "next-exit" || val == "removed"
	case pName:
		ok = reName.MatchString(val)
	case pPlatform:
		ok = rePlatform.MatchString(val)
	case pTail:
		ok = val == "all" || reInt.MatchString(val)
	case pDetachKeys:
		ok = reDetachKeys.MatchString(val)
	case pFilters:
		ok = true // checked by listFilters
	}
	if !ok {
		return fmt.Errorf("query parameter %s=%q is not a valid value", key, truncate(val, 64))
	}
	return nil
}

// listFilters parses a container-list filters value (either Docker form:
// {"term":{"v":true}} or the legacy {"term":["v"]}), rejects unknown terms,
// and adds label=<label>=true, so the engine only returns Talos containers
// (label terms are ANDed by the engine).
func listFilters(raw, label string) (string, error) {
	terms := map[string]map[string]bool{}
	if raw != "" {
		root, err := parseJSON([]byte(raw))
		if err != nil {
			return "", fmt.Errorf("filters is not one JSON object: %v", err)
		}
		if root.kind != jObject {
			return "", fmt.Errorf("filters must be a JSON object, not %s", root.kind)
		}
		for _, m := range root.obj {
			term := m.key
			if !allowedListFilters[term] {
				return "", fmt.Errorf("filter %q is not allowed on a container list", truncate(term, 40))
			}
			set := map[string]bool{}
			switch v := m.val; v.kind {
			case jObject:
				for _, e := range v.obj {
					if e.val.kind != jBool || !e.val.b {
						return "", fmt.Errorf("filter %q value %q must map to true", term, truncate(e.key, 64))
					}
					set[e.key] = true
				}
			case jArray:
				for _, e := range v.arr {
					if e.kind != jString {
						return "", fmt.Errorf("filter %q must list strings", term)
					}
					set[e.s] = true
				}
			default:
				return "", fmt.Errorf("filter %q must map to {\"value\":true} or [\"value\"]", term)
			}
			terms[term] = set
		}
	}
	if terms["label"] == nil {
		terms["label"] = map[string]bool{}
	}
	terms["label"][label+"="+LabelManagedValue] = true
	// Encode in Docker's form, keys sorted so the output is stable.
	names := make([]string, 0, len(terms))
	for k := range terms {
		names = append(names, k)
	}
	sort.Strings(names)
	b := []byte{'{'}
	for i, k := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':', '{')
		vals := make([]string, 0, len(terms[k]))
		for v := range terms[k] {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		for j, v := range vals {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
			b = append(b, ":true"...)
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	return string(b), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
