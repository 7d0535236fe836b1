package sockproxy

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// blockedPatterns are the blocked patterns of the original specification,
// checked first and case-insensitively against the once-decoded path. They
// are anchored at the start with a leading .*, so they find anywhere.
var blockedPatterns = func() []*regexp.Regexp {
	src := []string{
		`.*prune.*`, `.*system/df.*`, `.*/containers/[^/]+/exec.*`, `.*/exec/[^/]+/start.*`, `.*/images.*`,
		`.*/build.*`, `.*/volumes.*`, `.*/networks.*`, `.*/swarm.*`, `.*/nodes.*`, `.*/services.*`,
		`.*/secrets.*`, `.*/plugins.*`, `.*/distribution.*`, `.*/session.*`, `.*/checkpoints.*`,
		`.*/commit.*`, `.*/\.\./.*`, `.*%2e%2e.*`,
	}
	out := make([]*regexp.Regexp, len(src))
	for i, s := range src {
		out[i] = regexp.MustCompile(`(?is)^` + s)
	}
	return out
}()

// blockedLiterals are the blocked patterns that are plain "contains"
// checks; blockedMatch is their fast equivalent of running every pattern
// (the fuzz test checks both agree).
var blockedLiterals = []string{"prune", "system/df", "/images", "/build", "/volumes", "/networks", "/swarm",
	"/nodes", "/services", "/secrets", "/plugins", "/distribution", "/session", "/checkpoints", "/commit",
	"/../", "%2e%2e"}

// blockedMatch returns the blocked pattern lower (a lower-cased path)
// matches, or "".
func blockedMatch(lower string) string {
	for i := 0; i < len(lower); i++ {
		if lower[i] >= 0x80 {
			// Non-ASCII: let the case-insensitive regexps apply Unicode
			// folding (the Kelvin sign matches k, the long s matches s).
			for _, re := range blockedPatterns {
				if re.MatchString(lower) {
					return re.String()
				}
			}
			return ""
		}
	}
	for i, lit := range blockedLiterals {
		if strings.Contains(lower, lit) {
			return blockedPatterns[blockedIndex[i]].String()
		}
	}
	// .*/containers/[^/]+/exec.* and .*/exec/[^/]+/start.*
	if segAfter(lower, "/containers/", "/exec") {
		return blockedPatterns[2].String()
	}
	if segAfter(lower, "/exec/", "/start") {
		return blockedPatterns[3].String()
	}
	return ""
}

// blockedIndex maps blockedLiterals to their pattern in blockedPatterns.
var blockedIndex = []int{0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}

// segAfter reports whether s contains prefix, then one or more non-slash
// bytes, then suffix.
func segAfter(s, prefix, suffix string) bool {
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			return false
		}
		rest := s[i+len(prefix):]
		j := strings.IndexByte(rest, '/')
		if j > 0 && strings.HasPrefix(rest[j:], suffix) {
			return true
		}
		s = s[i+1:]
	}
}

// pathChars are the only bytes a decoded path may contain: Docker's names
// and IDs use [a-zA-Z0-9_.-], the API uses '/' and '_'.
func pathCharOK(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '/' || c == '.' || c == '_' || c == '-'
}

// maxPathLen bounds the request path; Docker's longest legitimate paths are
// well under 200 bytes.
const maxPathLen = 512

// NormalizePath turns the escaped path of a request (without the query) into
// the canonical path the proxy checks and forwards. It decodes once, rejects
// any '%' left afterwards (double encoding such as %252e), rejects bytes
// outside [A-Za-z0-9/._-], applies the spec's blocked patterns, and rejects
// any path that path.Clean would change (//, /./, /../, a trailing slash):
// Docker clients always send clean paths, and refusing the rest removes any
// disagreement between the proxy and the engine about what was asked for.
func NormalizePath(escaped string) (string, error) {
	if len(escaped) > maxPathLen {
		return "", fmt.Errorf("path is %d bytes long, the limit is %d", len(escaped), maxPathLen)
	}
	if !strings.HasPrefix(escaped, "/") {
		return "", fmt.Errorf("request target %q is not an absolute path", escaped)
	}
	if p := blockedMatch(strings.ToLower(escaped)); p != "" {
		return "", fmt.Errorf("blocked pattern %s", strings.TrimPrefix(p, "(?is)^"))
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return "", fmt.Errorf("path is not validly percent-encoded: %v", err)
	}
	if strings.Contains(decoded, "%") {
		return "", fmt.Errorf("path still contains %% after one decode (double encoding is refused)")
	}
	for i := 0; i < len(decoded); i++ {
		if !pathCharOK(decoded[i]) {
			return "", fmt.Errorf("path contains byte 0x%02x; only [A-Za-z0-9/._-] is allowed", decoded[i])
		}
	}
	if p := blockedMatch(strings.ToLower(decoded)); p != "" {
		return "", fmt.Errorf("blocked pattern %s", strings.TrimPrefix(p, "(?is)^"))
	}
	if clean := path.Clean(decoded); clean != decoded {
		return "", fmt.Errorf("path %q is not canonical (it cleans to %q); send the clean path", decoded, clean)
	}
	return decoded, nil
}

// route is one matched endpoint.
type route struct {
	op        Op
	version   string // "1.41", or "" when the path had no version prefix
	container string // the {id} segment of per-container endpoints
	rest      string // the path without the version prefix
}

// perContainer reports whether the op names one container.
func (o Op) perContainer() bool {
	switch o {
	case OpInspect, OpStart, OpStop, OpWait, OpLogs, OpKill, OpRemove, OpUpdate, OpAttach:
		return true
	}
	return false
}

// methods returns the HTTP methods an op accepts.
func (o Op) methods() []string {
	switch o {
	case OpPing:
		return []string{http.MethodGet, http.MethodHead}
	case OpVersion, OpList, OpInspect, OpLogs:
		return []string{http.MethodGet}
	case OpRemove:
		return []string{http.MethodDelete}
	}
	return []string{http.MethodPost}
}

// hasBody reports whether the op takes a JSON body (which is inspected).
func (o Op) hasBody() bool { return o == OpCreate || o == OpUpdate }

// maxContainerRef bounds a container name or ID.
const maxContainerRef = 128

func validContainerRef(s string) bool {
	if s == "" || len(s) > maxContainerRef {
		return false
	}
	c := s[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(pathCharOK(c) && c != '/') {
			return false
		}
	}
	return true
}

// matchRoute maps a normalised path to an endpoint. It accepts an optional
// /vX.Y prefix on every endpoint, /_ping and /version included.
func matchRoute(p string) (route, error) {
	var r route
	rest := p
	if strings.HasPrefix(p, "/v") {
		seg, after, _ := strings.Cut(p[2:], "/")
		if _, _, ok := parseVersion(seg); ok {
			r.version = seg
			rest = "/" + after
			if after == "" {
				rest = "/"
			}
		}
	}
	r.rest = rest
	switch rest {
	case "/_ping":
		r.op = OpPing
		return r, nil
	case "/version":
		r.op = OpVersion
		return r, nil
	case "/containers/json":
		r.op = OpList
		return r, nil
	case "/containers/create":
		r.op = OpCreate
		return r, nil
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	if len(parts) >= 2 && len(parts) <= 3 && parts[0] == "containers" && validContainerRef(parts[1]) {
		r.container = parts[1]
		if len(parts) == 2 {
			r.op = OpRemove
			return r, nil
		}
		switch parts[2] {
		case "json":
			r.op = OpInspect
		case "start":
			r.op = OpStart
		case "stop":
			r.op = OpStop
		case "wait":
			r.op = OpWait
		case "logs":
			r.op = OpLogs
		case "kill":
			r.op = OpKill
		case "update":
			r.op = OpUpdate
		case "attach":
			r.op = OpAttach
		}
		if r.op != "" {
			return r, nil
		}
	}
	return route{}, fmt.Errorf("endpoint %s is not in the allowlist", rest)
}

// forwardPath rebuilds the path sent upstream, with the container segment
// replaced by the resolved full ID.
func (r route) forwardPath(containerID string) string {
	prefix := ""
	if r.version != "" {
		prefix = "/v" + r.version
	}
	if !r.op.perContainer() {
		return prefix + r.rest
	}
	suffix := "/" + string(r.op)
	switch r.op {
	case OpInspect:
		suffix = "/json"
	case OpRemove:
		suffix = ""
	}
	return prefix + "/containers/" + containerID + suffix
}
