package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/talos-ironclad/talos/internal/redact"
)

// YAMLProblem is one problem found in config.yaml, with its 1-based line.
type YAMLProblem struct {
	Line int
	Key  string
	Msg  string
}

// Error formats as "config.yaml line N: msg".
func (p YAMLProblem) Error() string {
	return fmt.Sprintf("%s line %d: %s", ConfigFileName, p.Line, p.Msg)
}

var yamlLineRE = regexp.MustCompile(`line ([0-9]+)`)

// ParseYAML parses config.yaml strictly. The file is one flat mapping whose
// keys are the variable names in lower case (trust_level: 2,
// talos_redis_url: redis://…); a value is a scalar, or for
// socket_proxy_allowed_ops also a list. Returned entries carry the variable
// name (TRUST_LEVEL) and the line. Every unknown key, nested mapping,
// duplicate key and secret is reported with its line; secrets belong in
// talos.env (mode 0600), never in config.yaml.
func ParseYAML(data []byte) ([]Entry, []YAMLProblem) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // empty file
		}
		return nil, []YAMLProblem{{Line: errLine(err), Msg: "invalid YAML: " + err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, []YAMLProblem{{Line: extra.Line, Msg: "more than one YAML document; keep one mapping"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, []YAMLProblem{{Line: errLine(err), Msg: "invalid YAML: " + err.Error()}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, []YAMLProblem{{Line: root.Line, Msg: "the top level must be a mapping of key: value"}}
	}
	var out []Entry
	var probs []YAMLProblem
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			probs = append(probs, YAMLProblem{Line: kn.Line, Msg: "keys must be plain names"})
			continue
		}
		key := kn.Value
		if prev, dup := seen[key]; dup {
			probs = append(probs, YAMLProblem{Line: kn.Line, Key: key, Msg: fmt.Sprintf("key %s is already set at line %d", redact.Value(key), prev)})
			continue
		}
		seen[key] = kn.Line
		if key == strings.ToLower(EnvHome) {
			probs = append(probs, YAMLProblem{Line: kn.Line, Key: key,
				Msg: "talos_home cannot be set in config.yaml (the file lives in TALOS_HOME); set TALOS_HOME or pass --home"})
			continue
		}
		if key == MCPServersKey {
			continue // a mapping of tool servers, read by the MCP host (mcphost.ParseServers)
		}
		v := lookupKey(key)
		if v == nil {
			probs = append(probs, YAMLProblem{Line: kn.Line, Key: key,
				Msg: fmt.Sprintf("unknown key %s at line %d%s", redact.Value(key), kn.Line, suggestKey(key))})
			continue
		}
		if v.secret {
			probs = append(probs, YAMLProblem{Line: kn.Line, Key: key,
				Msg: fmt.Sprintf("%s is a secret: put %s in %s (mode 0600), not in %s", key, v.name, EnvFileName, ConfigFileName)})
			continue
		}
		if vn.Kind == yaml.AliasNode && vn.Alias != nil {
			vn = vn.Alias
		}
		switch vn.Kind {
		case yaml.ScalarNode:
			val := vn.Value
			if vn.Tag == "!!null" {
				val = ""
			}
			out = append(out, Entry{Key: v.name, Value: val, Line: kn.Line})
		case yaml.SequenceNode:
			if v.name != "SOCKET_PROXY_ALLOWED_OPS" {
				probs = append(probs, YAMLProblem{Line: vn.Line, Key: key, Msg: fmt.Sprintf("%s takes a single value, not a list", key)})
				continue
			}
			var items []string
			ok := true
			for _, it := range vn.Content {
				if it.Kind != yaml.ScalarNode {
					probs = append(probs, YAMLProblem{Line: it.Line, Key: key, Msg: fmt.Sprintf("%s items must be plain strings", key)})
					ok = false
					break
				}
				if strings.Contains(it.Value, ",") {
					probs = append(probs, YAMLProblem{Line: it.Line, Key: key, Msg: fmt.Sprintf("%s item %s contains a comma", key, redact.Value(it.Value))})
					ok = false
					break
				}
				items = append(items, it.Value)
			}
			if ok {
				out = append(out, Entry{Key: v.name, Value: strings.Join(items, ","), Line: kn.Line})
			}
		default:
			probs = append(probs, YAMLProblem{Line: vn.Line, Key: key, Msg: fmt.Sprintf("%s takes a single value, not a mapping", key)})
		}
	}
	return out, probs
}

func errLine(err error) int {
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func suggestKey(key string) string {
	if repl, ok := legacy[strings.ToUpper(key)]; ok {
		k, v, _ := strings.Cut(repl, "=")
		return fmt.Sprintf(" (Talos does not read %s; use %s: %s)", key, strings.ToLower(k), v)
	}
	s := suggest(strings.ToUpper(key))
	if s == "" {
		return ""
	}
	// suggest names the env variable; show the yaml spelling.
	name := strings.TrimSuffix(strings.TrimPrefix(s, " (did you mean "), "?)")
	return fmt.Sprintf(" (did you mean %s?)", strings.ToLower(name))
}
