package config

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
)

// GeneratedPasswordLen is the length of passwords `talos init` generates
// (within the allowed 16–64).
const GeneratedPasswordLen = 32

const (
	pwUpper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	pwLower  = "abcdefghijkmnopqrstuvwxyz"
	pwDigit  = "23456789"
	pwSymbol = "-_.,:+=@%^*"
)

// GeneratePassword returns n random characters (crypto/rand) with at least
// one upper-case letter, lower-case letter, digit and symbol, so it passes
// the password policy. The symbols need no quoting in talos.env or a shell.
// n below MinPasswordLen is raised to it.
func GeneratePassword(n int) (string, error) {
	if n < MinPasswordLen {
		n = MinPasswordLen
	}
	all := pwUpper + pwLower + pwDigit + pwSymbol
	out := make([]byte, n)
	classes := []string{pwUpper, pwLower, pwDigit, pwSymbol}
	for i := range out {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		c, err := pick(set)
		if err != nil {
			return "", err
		}
		out[i] = c
	}
	// Shuffle so the guaranteed classes are not always first.
	for i := n - 1; i > 0; i-- {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		if err != nil {
			return "", err
		}
		out[i], out[j.Int64()] = out[j.Int64()], out[i]
	}
	return string(out), nil
}

func pick(set string) (byte, error) {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		return 0, err
	}
	return set[i.Int64()], nil
}

// NewInstanceID returns a random UUID v4 for TALOS_INSTANCE_ID (the
// original specification defines the variable but never generates a value).
func NewInstanceID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// DefaultYAML returns the text of a config.yaml in which every non-secret
// variable is present as a comment showing its default and allowed values,
// grouped as in the original specification. Uncomment a line to change a
// value.
func DefaultYAML() []byte {
	var b strings.Builder
	b.WriteString(`# Talos configuration (config.yaml). Keys are the variable names in lower case.
# Precedence: command-line flags > environment > talos.env > this file > defaults.
# Unknown keys are errors. Secrets (passwords, API keys) go in talos.env, never here.
# Every line below is commented out and shows the default; uncomment to change it.
# Check with: talos config validate
`)
	group := ""
	for i := range table {
		v := &table[i]
		if v.secret {
			continue
		}
		if g := groupOf(v.name); g != group {
			group = g
			fmt.Fprintf(&b, "\n# --- %s ---\n", g)
		}
		def := v.def
		if def == "" {
			def = `""`
		} else if strings.ContainsAny(def, ":,#") {
			def = `"` + def + `"`
		}
		fmt.Fprintf(&b, "# %s: %s    # %s\n", v.key(), def, v.allowed)
	}
	return []byte(b.String())
}

func groupOf(name string) string {
	switch {
	case strings.HasPrefix(name, "TALOS_") && name != "TALOS_VERSION" && name != "TALOS_INSTANCE_ID", name == "SOCKET_PROXY_URL":
		return "services (empty = embedded default) and Talos settings"
	case name == "TALOS_VERSION", name == "TALOS_INSTANCE_ID", name == "TRUST_LEVEL":
		return "core identity (spec §1.2.2)"
	case strings.HasPrefix(name, "REDIS_"), strings.HasPrefix(name, "CHROMADB_"), strings.HasPrefix(name, "VRAM_"):
		return "resource ceilings"
	case strings.HasPrefix(name, "GEMINI_"), strings.HasPrefix(name, "QWEN_"):
		return "models"
	case strings.HasPrefix(name, "BASIC_AUTH_"), strings.HasPrefix(name, "WEB_"), name == "SESSION_TIMEOUT", strings.HasPrefix(name, "API_RATE"):
		return "web interface"
	case strings.HasPrefix(name, "POSTGRES_"):
		return "database (used with talos_postgres_url)"
	case strings.HasPrefix(name, "TAILSCALE_"):
		return "network and VPN"
	case strings.HasPrefix(name, "LOG_"), strings.HasPrefix(name, "METRICS_"):
		return "logging and monitoring"
	case strings.HasPrefix(name, "STRIKE_"), strings.HasPrefix(name, "SANDBOX_"), strings.HasPrefix(name, "SOCKET_PROXY_"):
		return "security and sandboxing"
	}
	return "intelligence and memory"
}

// EnvTemplate returns the text of a new talos.env with freshly generated
// secrets: BASIC_AUTH_PASS and POSTGRES_PASSWORD (policy-compliant, from
// crypto/rand) and TALOS_INSTANCE_ID (UUID v4). The optional cloud secrets
// are present as comments.
func EnvTemplate() ([]byte, error) {
	pass, err := GeneratePassword(GeneratedPasswordLen)
	if err != nil {
		return nil, err
	}
	pgPass, err := GeneratePassword(GeneratedPasswordLen)
	if err != nil {
		return nil, err
	}
	id, err := NewInstanceID()
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf(`# Talos secrets (talos.env). Keep this file mode 0600: Talos refuses to start
# if group or others can read it. It is parsed as KEY=VALUE, never executed.
# Generated by talos init.

TALOS_INSTANCE_ID=%s

# Dashboard login (user BASIC_AUTH_USER, default admin): 16-64 characters,
# upper- and lower-case letters, digits and symbols.
BASIC_AUTH_PASS=%s

# Used only when TALOS_POSTGRES_URL is set and carries no password itself.
POSTGRES_PASSWORD=%s

# Cloud model (optional). Required only when TALOS_GEMINI_ENABLED=true.
# TALOS_GEMINI_ENABLED=true
# GEMINI_API_KEY=

# Tailscale (optional).
# TAILSCALE_AUTH_KEY=tskey-...
`, id, pass, pgPass)), nil
}

// InitResult lists what WriteInitialFiles wrote.
type InitResult struct {
	ConfigFile string
	EnvFile    string
}

// WriteInitialFiles writes <home>/config/config.yaml (0644, DefaultYAML) and
// <home>/config/talos.env (0600, EnvTemplate). Without force it refuses,
// writing nothing, when either file exists; with force it replaces both.
// Each file is written to a temporary file and renamed into place, so a
// crash never leaves half a file. The config directory must exist (create
// the tree first with layout).
func WriteInitialFiles(home string, force bool) (InitResult, error) {
	const op = "config.WriteInitialFiles"
	c := &Config{Home: home}
	res := InitResult{ConfigFile: c.ConfigFile(), EnvFile: c.EnvFile()}
	if !force {
		var exist []string
		for _, p := range []string{res.ConfigFile, res.EnvFile} {
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return res, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("cannot check %s", p), err)
			}
		}
		if len(exist) > 0 {
			return res, talos.Errorf(talos.CodeConfigInvalid, op,
				"%s already exist(s); refusing to overwrite. Keep them, or run `talos init --force` to replace both (this generates new secrets)",
				strings.Join(exist, " and "))
		}
	}
	env, err := EnvTemplate()
	if err != nil {
		return res, talos.E(talos.CodeSecretMissing, op, "cannot generate secrets", err)
	}
	if err := atomicfile.WriteFile(res.EnvFile, env, 0o600); err != nil {
		return res, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("cannot write %s", res.EnvFile), err)
	}
	if err := atomicfile.WriteFile(res.ConfigFile, DefaultYAML(), 0o644); err != nil {
		return res, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("cannot write %s", res.ConfigFile), err)
	}
	return res, nil
}
