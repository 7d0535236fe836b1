package mcphost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"

	yaml "go.yaml.in/yaml/v3"

	talos "github.com/talos-ironclad/talos"
)

// serverKeys are the keys of one mcp_servers entry.
var serverKeys = []string{"command", "args", "description", "enabled", "timeout_seconds", "auto_start", "env", "max_retries"}

// ParseServers reads the `mcp_servers:` mapping of a config.yaml document
// (other top-level keys are left to their own parser) and returns the
// entries in the order the file lists them, which is their priority when
// two servers offer a tool of the same name. Every problem is reported at
// once, each with its line: an unknown key, a value of the wrong type, a
// duplicate server name. A document without mcp_servers has no servers.
// The entries still need Config.Validate (New runs it).
func ParseServers(data []byte) ([]ServerConfig, error) {
	const op = "mcphost.ParseServers"
	bad := func(line int, format string, args ...any) error {
		return talos.Errorf(talos.CodeConfigInvalid, op, "line %d: "+format, append([]any{line}, args...)...)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, talos.E(talos.CodeConfigInvalid, op, "the file is not valid YAML", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" || root.Kind == yaml.DocumentNode {
			return nil, nil
		}
		return nil, bad(root.Line, "the top level must be a mapping")
	}
	var servers *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "mcp_servers" {
			if servers != nil {
				return nil, bad(root.Content[i].Line, "mcp_servers is set twice")
			}
			servers = root.Content[i+1]
		}
	}
	if servers == nil || servers.Kind == yaml.ScalarNode && servers.Tag == "!!null" {
		return nil, nil
	}
	if servers.Kind != yaml.MappingNode {
		return nil, bad(servers.Line, "mcp_servers must be a mapping of server name to its settings")
	}
	var (
		out  []ServerConfig
		errs []error
		seen = map[string]int{}
	)
	for i := 0; i+1 < len(servers.Content); i += 2 {
		kn, vn := servers.Content[i], servers.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			errs = append(errs, bad(kn.Line, "a server name must be a plain string"))
			continue
		}
		name, nm := kn.Value, kn.Value
		if !reServerName.MatchString(name) {
			nm = clip(name) // quoted, control characters escaped
		}
		if prev, dup := seen[name]; dup {
			errs = append(errs, bad(kn.Line, "server %s is already defined at line %d", nm, prev))
			continue
		}
		seen[name] = kn.Line
		if vn.Kind != yaml.MappingNode {
			errs = append(errs, bad(vn.Line, "mcp_servers.%s must be a mapping (command: …, args: […])", nm))
			continue
		}
		ok := true
		for j := 0; j+1 < len(vn.Content); j += 2 {
			k := vn.Content[j]
			if !slices.Contains(serverKeys, k.Value) {
				errs = append(errs, bad(k.Line, "mcp_servers.%s: unknown key %s: use %v", nm, clip(k.Value), serverKeys))
				ok = false
			}
		}
		var sc ServerConfig
		if err := vn.Decode(&sc); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, e := range te.Errors {
					errs = append(errs, talos.Errorf(talos.CodeConfigInvalid, op, "mcp_servers.%s: %s", nm, e))
				}
			} else {
				errs = append(errs, bad(vn.Line, "mcp_servers.%s: %v", nm, err))
			}
			ok = false
		}
		if ok {
			sc.Name = name
			out = append(out, sc)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// String describes a server entry for logs: name and command, never env
// values.
func (sc ServerConfig) String() string {
	if sc.InProcess != nil {
		return fmt.Sprintf("%s (in process)", sc.Name)
	}
	return fmt.Sprintf("%s (%s)", sc.Name, sc.Command)
}
