package mcphost_test

import (
	"errors"
	"strings"
	"testing"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost"
)

const serversYAML = `
trust_level: 2
mcp_servers:
  filesystem:
    command: /usr/bin/node
    args: ["/opt/mcp/server-filesystem/dist/index.js", "/home/user/documents"]
    description: Files
    timeout_seconds: 30
    env:
      NODE_OPTIONS: --max-old-space-size=256
  sqlite:
    command: python3
    args: [-m, mcp_sqlite, --db, /talos/data/knowledge.db]
    enabled: false
    timeout_seconds: 15
    auto_start: true
    max_retries: 0
`

func TestParseServersKeepsFileOrder(t *testing.T) {
	got, err := mcphost.ParseServers([]byte(serversYAML))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "filesystem" || got[1].Name != "sqlite" {
		t.Fatalf("%+v", got)
	}
	fs, sq := got[0], got[1]
	if fs.Command != "/usr/bin/node" || len(fs.Args) != 2 || fs.TimeoutSeconds != 30 || fs.Env["NODE_OPTIONS"] != "--max-old-space-size=256" || fs.Enabled != nil || fs.MaxRetries != nil {
		t.Errorf("filesystem %+v", fs)
	}
	if sq.Enabled == nil || *sq.Enabled || !sq.AutoStart || sq.MaxRetries == nil || *sq.MaxRetries != 0 || sq.TimeoutSeconds != 15 {
		t.Errorf("sqlite %+v", sq)
	}
	if s := fs.String(); s != "filesystem (/usr/bin/node)" {
		t.Errorf("String() = %q", s)
	}
}

func TestParseServersReportsEveryProblemWithItsLine(t *testing.T) {
	in := `mcp_servers:
  a:
    command: x
    port: 8080
  b:
    command: y
    timeout_seconds: soon
    args: notalist
  a:
    command: z
  c: just-a-string
`
	_, err := mcphost.ParseServers([]byte(in))
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{
		`line 4: mcp_servers.a: unknown key "port"`,
		`mcp_servers.b: line 7: cannot unmarshal !!str ` + "`soon`" + ` into int`,
		`mcp_servers.b: line 8: cannot unmarshal !!str ` + "`notalist`" + ` into []string`,
		`line 9: server a is already defined at line 2`,
		`line 11: mcp_servers.c must be a mapping`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestParseServersWithoutServers(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "trust_level: 1\n", "mcp_servers:\n"} {
		got, err := mcphost.ParseServers([]byte(in))
		if err != nil || len(got) != 0 {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := mcphost.ParseServers([]byte("- a\n")); err == nil {
		t.Error("a list at the top level was accepted")
	}
}

func FuzzParseServers(f *testing.F) {
	f.Add([]byte(serversYAML))
	f.Add([]byte("mcp_servers:\n  a: {command: x, args: [1, 2], env: {A: b}}\n"))
	f.Add([]byte("mcp_servers: &x\n  a: *x\n"))
	f.Add([]byte("mcp_servers:\n  ? [a]\n  : {}\n"))
	f.Add([]byte("mcp_servers: [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		servers, err := mcphost.ParseServers(data)
		if err != nil {
			if servers != nil {
				t.Fatal("servers returned with an error")
			}
			if !errors.Is(err, talos.ErrConfigInvalid) {
				t.Fatalf("error without T010: %v", err)
			}
			return
		}
		names := map[string]bool{}
		for _, s := range servers {
			if names[s.Name] {
				t.Fatalf("duplicate server %q accepted", s.Name)
			}
			names[s.Name] = true
		}
		// Validation of whatever parsed must not panic either.
		_ = mcphost.Config{Servers: servers}.Validate()
	})
}
