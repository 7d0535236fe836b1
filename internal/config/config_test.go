package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
)

const goodPass = "Tr0ub4dor&3-horse-Battery"

// env returns a LookupEnv over m (nothing else from the real environment).
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T %v", err, err)
	}
	return ve.Problems
}

func TestDefaultsMatchSpec(t *testing.T) {
	home := t.TempDir()
	c, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass})})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"TALOS_VERSION", c.TalosVersion, "4.0.0"},
		{"TRUST_LEVEL", c.TrustLevel, 0},
		{"REDIS_MAX_MEMORY", c.RedisMaxMemory, int64(512 << 20)},
		{"REDIS_MAX_MEMORY_POLICY", c.RedisMaxMemoryPolicy, "allkeys-lru"},
		{"CHROMADB_MAX_VECTORS", c.ChromaMaxVectors, 100000},
		{"VRAM_MUTEX_TIMEOUT", c.VRAMMutexTimeout, 30 * time.Second},
		{"SESSION_TIMEOUT", c.SessionTimeout, 30 * time.Minute},
		{"GEMINI_TEMPERATURE", c.GeminiTemperature, 0.7},
		{"LOG_LEVEL", c.LogLevel, "INFO"},
		{"SANDBOX_MEMORY_LIMIT", c.SandboxMemoryLimit, int64(512 << 20)},
		{"SOCKET_PROXY_ALLOWED_OPS", strings.Join(c.SocketProxyAllowedOps, ","), DefaultSocketProxyAllowedOps},
		{"MEMORY_SIMILARITY_THRESHOLD", c.MemorySimilarityThreshold, 0.75},
		{"RECURSIVE_SELF_IMPROVE", c.RecursiveSelfImprove, false},
		{"TALOS_HEALTH_ADDR", c.HealthAddr, "127.0.0.1:8081"},
		{"dashboard", c.DashboardAddr(), "127.0.0.1:8080"},
		{"redis", c.RedisURL, ""},
		{"gemini", c.GeminiEnabled, false},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if c.Origin["TRUST_LEVEL"] != "default" || c.Origin["BASIC_AUTH_PASS"] != "env" {
		t.Errorf("origin = %v", c.Origin)
	}
	if c.Home != home || c.EnvFile() != filepath.Join(home, "config", "talos.env") {
		t.Errorf("paths: %s %s", c.Home, c.EnvFile())
	}
	if c.OllamaModel != DefaultOllamaModel || c.PromptLocal != DefaultPrompt || c.PromptEscalation != DefaultPrompt {
		t.Errorf("model %q, prompts %q %q", c.OllamaModel, c.PromptLocal, c.PromptEscalation)
	}
	if len(Variables()) != 49+1+20 {
		t.Errorf("Variables() = %d, want the 49 of the spec, its dashboard's token_daily_limit + 20 Talos additions", len(Variables()))
	}
	if c.TokenDailyLimit != DefaultTokenDailyLimit || c.GeminiURL != "" {
		t.Errorf("token limit %d, Gemini URL %q", c.TokenDailyLimit, c.GeminiURL)
	}
}

func TestPrecedence(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "config.yaml"),
		"trust_level: 1\nstrike_threshold: 4\nsandbox_pids_limit: 60\nlog_level: debug\n", 0o644)
	writeFile(t, filepath.Join(home, "config", "talos.env"),
		"TRUST_LEVEL=2\nSTRIKE_THRESHOLD=5\nBASIC_AUTH_PASS='"+goodPass+"'\n", 0o600)
	c, err := Load(LoadOptions{
		Home:      home,
		LookupEnv: env(map[string]string{"TRUST_LEVEL": "3", "STRIKE_THRESHOLD": "6"}),
		Flags:     map[string]string{"TRUST_LEVEL": "4"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustLevel != 4 || c.Origin["TRUST_LEVEL"] != "flag" {
		t.Errorf("flag must win: %d from %s", c.TrustLevel, c.Origin["TRUST_LEVEL"])
	}
	if c.StrikeThreshold != 6 || c.Origin["STRIKE_THRESHOLD"] != "env" {
		t.Errorf("env must beat files: %d from %s", c.StrikeThreshold, c.Origin["STRIKE_THRESHOLD"])
	}
	if c.SandboxPidsLimit != 60 || c.Origin["SANDBOX_PIDS_LIMIT"] != "config.yaml:3" {
		t.Errorf("yaml must beat defaults: %d from %s", c.SandboxPidsLimit, c.Origin["SANDBOX_PIDS_LIMIT"])
	}
	if c.BasicAuthPass.Value() != goodPass || c.Origin["BASIC_AUTH_PASS"] != "talos.env:3" {
		t.Errorf("talos.env value not used: from %s", c.Origin["BASIC_AUTH_PASS"])
	}
	if c.LogLevel != "DEBUG" {
		t.Errorf("log level normalised: %q", c.LogLevel)
	}

	// talos.env beats config.yaml.
	c, err = Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustLevel != 2 || c.Origin["TRUST_LEVEL"] != "talos.env:1" {
		t.Errorf("talos.env must beat config.yaml: %d from %s", c.TrustLevel, c.Origin["TRUST_LEVEL"])
	}
}

func TestTalosHomeMovesTree(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "talos.env"), "BASIC_AUTH_PASS="+goodPass+"\nTRUST_LEVEL=5\n", 0o600)
	c, err := Load(LoadOptions{LookupEnv: env(map[string]string{"TALOS_HOME": home})})
	if err != nil {
		t.Fatal(err)
	}
	if c.Home != home || c.TrustLevel != 5 {
		t.Errorf("home %s trust %d", c.Home, c.TrustLevel)
	}
	// --home wins over TALOS_HOME.
	other := t.TempDir()
	c, _ = Load(LoadOptions{Home: other, LookupEnv: env(map[string]string{"TALOS_HOME": home})})
	if c.Home != other {
		t.Errorf("--home ignored: %s", c.Home)
	}
}

func TestUnknownYAMLKeyHasLineNumber(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "config.yaml"),
		"# comment\ntrust_level: 1\n\nstrike_treshold: 4\nfoo:\n  bar: 1\n", 0o644)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass})})
	ps := problems(t, err)
	if len(ps) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if ps[0].Source != "config.yaml:4" || !strings.Contains(ps[0].Message, `unknown key "strike_treshold" at line 4`) ||
		!strings.Contains(ps[0].Message, "did you mean strike_threshold") {
		t.Errorf("problem 0: %+v", ps[0])
	}
	if ps[1].Source != "config.yaml:5" || ps[1].Code != talos.CodeConfigInvalid {
		t.Errorf("problem 1: %+v", ps[1])
	}
	if !errors.Is(err, talos.ErrConfigInvalid) || !errors.Is(err, talos.ErrEnvInvalid) {
		t.Errorf("errors.Is by code failed: %v", err)
	}
	if !strings.Contains(err.Error(), "config.yaml:4: unknown key") {
		t.Errorf("Error() = %s", err)
	}
}

func TestUnknownEnvFileKey(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "talos.env"), "BASIC_AUTH_PASS="+goodPass+"\nTRUST_LEVLE=1\n", 0o600)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	ps := problems(t, err)
	if len(ps) != 1 || ps[0].Source != "talos.env:2" || !strings.Contains(ps[0].Message, "did you mean TRUST_LEVEL") {
		t.Fatalf("%v", err)
	}
}

func TestSecretInYAMLRefused(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "config.yaml"), "basic_auth_pass: "+goodPass+"\n", 0o644)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	if err == nil || strings.Contains(err.Error(), goodPass) || !strings.Contains(err.Error(), "put BASIC_AUTH_PASS in talos.env") {
		t.Fatalf("%v", err)
	}
}

func TestEnvFileModeRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		home := t.TempDir()
		path := filepath.Join(home, "config", "talos.env")
		writeFile(t, path, "BASIC_AUTH_PASS="+goodPass+"\n", mode)
		_, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
		if err == nil {
			t.Fatalf("mode %o accepted", mode)
		}
		want := "chmod 600 " + path
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%04o", mode)) {
			t.Errorf("mode %o: message lacks the fix %q: %v", mode, want, err)
		}
		if !errors.Is(err, talos.ErrDirPermissions) {
			t.Errorf("mode %o: want T005", mode)
		}
		if strings.Contains(err.Error(), goodPass) {
			t.Errorf("secret leaked")
		}
		if ps := problems(t, err); len(ps) != 1 {
			t.Errorf("mode %o: a refused talos.env must be the only problem (its secrets are unknown, not missing): %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		home := t.TempDir()
		writeFile(t, filepath.Join(home, "config", "talos.env"), "BASIC_AUTH_PASS="+goodPass+"\n", mode)
		if _, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)}); err != nil {
			t.Errorf("mode %o refused: %v", mode, err)
		}
	}
}

// TestRanges checks every ranged variable at both bounds and just outside.
func TestRanges(t *testing.T) {
	promptFile := filepath.Join(t.TempDir(), "local.txt")
	writeFile(t, promptFile, "You are Talos.\n", 0o644)
	promptDir := t.TempDir()
	cases := []struct {
		name     string
		ok, bad  []string
		fragment string // expected in the message for the first bad value
	}{
		{"TRUST_LEVEL", []string{"0", "5"}, []string{"-1", "6", "5.5", "abc", ""}, "TRUST_LEVEL must be between 0 and 5 (got: -1)"},
		{"REDIS_MAX_MEMORY", []string{"128mb", "2048mb", "1gb", "512MB"}, []string{"127mb", "2049mb", "lots", "3gb"}, "REDIS_MAX_MEMORY must be between 128mb and 2048mb (got: 127mb)"},
		{"REDIS_MAX_MEMORY_POLICY", []string{"allkeys-lru", "volatile-lru", "allkeys-random"}, []string{"noeviction"}, "REDIS_MAX_MEMORY_POLICY must be one of"},
		{"CHROMADB_MAX_VECTORS", []string{"10000", "500000"}, []string{"9999", "500001"}, "between 10000 and 500000 (got: 9999)"},
		{"CHROMADB_MAX_DIMENSIONS", []string{"384", "4096"}, []string{"383", "4097"}, "(got: 383)"},
		{"VRAM_MUTEX_TIMEOUT", []string{"30", "1800"}, []string{"29", "1801", "30s"}, "VRAM_MUTEX_TIMEOUT must be between 30 and 1800 (got: 29)"},
		{"VRAM_MAX_ALLOCATION", []string{"512", "16384"}, []string{"511", "16385"}, "(got: 511)"},
		{"GEMINI_MODEL_NAME", []string{"gemini-2.5-flash", "gemini-1.5-flash-8b"}, []string{"Gemini Flash", ""}, "GEMINI_MODEL_NAME"},
		{"GEMINI_MAX_TOKENS", []string{"1024", "32768"}, []string{"1023", "32769"}, "(got: 1023)"},
		{"TOKEN_DAILY_LIMIT", []string{"1000", "100000000"}, []string{"999", "100000001", "lots"}, "(got: 999)"},
		{"GEMINI_TEMPERATURE", []string{"0", "0.0", "2.0", "1.3"}, []string{"-0.1", "2.01", "hot", "NaN"}, "GEMINI_TEMPERATURE must be between 0.0 and 2.00 (got: -0.1)"},
		{"QWEN_CONTEXT_LENGTH", []string{"4096", "131072"}, []string{"4095", "131073"}, "(got: 4095)"},
		{"BASIC_AUTH_USER", []string{"adm1", "abcdefghijklmnopqrstuvwxyz012345"}, []string{"adm", "abcdefghijklmnopqrstuvwxyz0123456", "ad-min"}, "BASIC_AUTH_USER"},
		{"WEB_PORT", []string{"1024", "65535"}, []string{"1023", "65536", "80"}, "WEB_PORT must be between 1024 and 65535 (got: 1023)"},
		{"WEB_HTTPS_PORT", []string{"1024", "65535"}, []string{"1023", "65536"}, "(got: 1023)"},
		{"WEB_BIND_ADDRESS", []string{"127.0.0.1", "::1", "0.0.0.0"}, []string{"localhost", "300.1.1.1"}, "WEB_BIND_ADDRESS"},
		{"SESSION_TIMEOUT", []string{"5", "240"}, []string{"4", "241"}, "SESSION_TIMEOUT must be between 5 and 240 (got: 4)"},
		{"API_RATE_LIMIT_MAX", []string{"10", "1000"}, []string{"9", "1001"}, "(got: 9)"},
		{"API_RATE_LIMIT_WINDOW", []string{"1", "3600"}, []string{"0", "3601"}, "(got: 0)"},
		{"POSTGRES_USER", []string{"talos", "_x1"}, []string{"1talos", "ta los", ""}, "POSTGRES_USER"},
		{"POSTGRES_DB", []string{"talos_skills"}, []string{"talos-skills"}, "POSTGRES_DB"},
		{"TAILSCALE_HOSTNAME", []string{"talos-node", "a"}, []string{"-bad", strings.Repeat("a", 64), ""}, "TAILSCALE_HOSTNAME"},
		{"TAILSCALE_ACCEPT_DNS", []string{"true", "false", "TRUE"}, []string{"yes", "1"}, "TAILSCALE_ACCEPT_DNS must be true or false (got: yes)"},
		{"LOG_LEVEL", []string{"DEBUG", "info", "FATAL"}, []string{"TRACE"}, "LOG_LEVEL must be one of: DEBUG, INFO, WARN, ERROR, FATAL (got: TRACE)"},
		{"LOG_FORMAT", []string{"json", "text"}, []string{"xml"}, "LOG_FORMAT must be one of: json, text (got: xml)"},
		{"LOG_TIER1_RETENTION_DAYS", []string{"30", "365"}, []string{"29", "366"}, "(got: 29)"},
		{"LOG_TIER2_RETENTION_DAYS", []string{"7", "90"}, []string{"6", "91"}, "(got: 6)"},
		{"LOG_TIER3_RETENTION_DAYS", []string{"1", "30"}, []string{"0", "31"}, "(got: 0)"},
		{"TALOS_BACKUP_KEEP", []string{"0", "365"}, []string{"-1", "366", "many"}, "(got: -1)"},
		{"TAILSCALE_ACCEPT_ROUTES", []string{"true", "false"}, []string{"y"}, "TAILSCALE_ACCEPT_ROUTES"},
		{"METRICS_ENABLED", []string{"true", "false"}, []string{"on"}, "METRICS_ENABLED"},
		{"METRICS_PORT", []string{"1024", "65535"}, []string{"1023", "65536"}, "(got: 1023)"},
		{"STRIKE_THRESHOLD", []string{"1", "10"}, []string{"0", "11"}, "STRIKE_THRESHOLD must be between 1 and 10 (got: 0)"},
		{"SANDBOX_MEMORY_LIMIT", []string{"128m", "2048m", "2g"}, []string{"127m", "2049m"}, "SANDBOX_MEMORY_LIMIT must be between 128m and 2048m (got: 127m)"},
		{"SANDBOX_PIDS_LIMIT", []string{"10", "200"}, []string{"9", "201"}, "(got: 9)"},
		{"SANDBOX_CPU_QUOTA", []string{"10", "100"}, []string{"9", "101"}, "(got: 9)"},
		{"SANDBOX_TIMEOUT", []string{"10", "300"}, []string{"9", "301"}, "(got: 9)"},
		{"SOCKET_PROXY_ENABLED", []string{"false"}, []string{"maybe"}, "SOCKET_PROXY_ENABLED"},
		{"SOCKET_PROXY_ALLOWED_OPS", []string{"containers:start", "containers:start, images:list", ""}, []string{"containers", "rm -rf:/"}, `SOCKET_PROXY_ALLOWED_OPS entry "containers"`},
		{"MEMORY_CONTEXT_WINDOW", []string{"5", "50"}, []string{"4", "51"}, "(got: 4)"},
		{"MEMORY_SIMILARITY_THRESHOLD", []string{"0.5", "0.95"}, []string{"0.49", "0.96"}, "(got: 0.49)"},
		{"SKILL_AUTOLOAD_ENABLED", []string{"false"}, []string{"nope"}, "SKILL_AUTOLOAD_ENABLED"},
		{"SKILL_SIGNATURE_VERIFY", []string{"true"}, []string{"2"}, "SKILL_SIGNATURE_VERIFY"},
		{"RECURSIVE_SELF_IMPROVE", []string{"false"}, []string{"sure"}, "RECURSIVE_SELF_IMPROVE"},
		{"TALOS_VERSION", []string{"4.0.0", "10.20.30"}, []string{"4.0", "v4.0.0", "4.0.0-rc1", "04.0.0"}, "TALOS_VERSION"},
		{"TALOS_INSTANCE_ID", []string{"", "3f1c2a9e-6b7d-4c1e-9a2b-1234567890ab"}, []string{"auto-generated", "3f1c2a9e-6b7d-1c1e-9a2b-1234567890ab"}, "TALOS_INSTANCE_ID must be a UUID v4"},
		{"TALOS_HEALTH_ADDR", []string{"127.0.0.1:8081", "[::1]:9000", "localhost:1"}, []string{"0.0.0.0:8081", "10.0.0.1:8081", "127.0.0.1", "127.0.0.1:0"}, "must be on loopback"},
		{"TALOS_REDIS_URL", []string{"", "redis://127.0.0.1:6379/0"}, []string{"http://x", "redis://"}, "TALOS_REDIS_URL has scheme"},
		{"TALOS_POSTGRES_URL", []string{"postgres://u:p@127.0.0.1:5432/db"}, []string{"mysql://u:p@x:1"}, "TALOS_POSTGRES_URL has scheme"},
		{"TALOS_CHROMA_URL", []string{"http://127.0.0.1:58000"}, []string{"ftp://x"}, "TALOS_CHROMA_URL"},
		{"TALOS_MEMORY_STORE", []string{"sql", "chromem", "SQL"}, []string{"sqlite", "hnsw"}, "TALOS_MEMORY_STORE must be one of: sql, chromem"},
		{"TALOS_DOCKER_HOST", []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375"}, []string{"/var/run/docker.sock"}, "TALOS_DOCKER_HOST"},
		{"TALOS_OLLAMA_URL", []string{"http://127.0.0.1:11434"}, []string{"127.0.0.1:11434"}, "TALOS_OLLAMA_URL"},
		{"TALOS_GEMINI_URL", []string{"http://127.0.0.1:8089", "https://gemini-proxy.example"}, []string{"ftp://x", "127.0.0.1:8089"}, "TALOS_GEMINI_URL"},
		{"TALOS_GEMINI_ENABLED", []string{"false"}, []string{"maybe"}, "TALOS_GEMINI_ENABLED"},
		{"TALOS_MCP_ALLOWED_COMMANDS", []string{"/usr/bin/node", "/usr/bin/node,/opt/mcp"}, []string{"node", "/opt/../etc", "./x"}, "is not a clean absolute path"},
		{"TALOS_DREAM_SCHEDULE", []string{"0 4 * * *", "30 2 * * mon-fri", "*/15 * * * *"}, []string{"0 4 * *", "61 4 * * *", "0 4 31 2 *", "daily"}, "is not a valid schedule"},
		{"TALOS_DREAM_TIMEZONE", []string{"Local", "UTC", "Europe/Berlin", "America/Los_Angeles"}, []string{"Mars/Olympus", "../etc/passwd", "CEST+2"}, "is not a known time zone"},
		{"TALOS_BROWSER_IMAGE", []string{"", "talos/browser:1", "talos-test/browser:1"}, []string{"Talos Browser", "a\x1bb"}, "TALOS_BROWSER_IMAGE is not an image name"},
		{"TALOS_BROWSER_NETWORK", []string{"", "talos-web", "browser_net.1"}, []string{"host", "none", "a b"}, "TALOS_BROWSER_NETWORK is not a usable Docker network name"},
		{"TALOS_VRAM_MODELS", []string{"qwen2.5-coder:7b=7", "a=1, b:latest=80", "hf.co/org/M:Q4=24"},
			[]string{"", "qwen=0", "qwen=81", "qwen=7.5", "qwen", "=7", "a b=7", "a=7,a=8"},
			`TALOS_VRAM_MODELS entry "" is not NAME=GB (got: "")`},
		{"TALOS_OLLAMA_MODEL", []string{"qwen2.5-coder:7b", "library/llama3.2:3b-instruct-q4_K_M", "hf.co/org/Model-GGUF:Q4_K_M"},
			[]string{"qwen coder", "", ":7b", "a;rm -rf"}, `TALOS_OLLAMA_MODEL is not a valid Ollama model name (got: "qwen coder")`},
		{"TALOS_PROMPT_LOCAL", []string{"", "default", promptFile}, []string{"/nonexistent/prompt.txt", promptDir, "not-there.txt"},
			`TALOS_PROMPT_LOCAL names a file that cannot be found (got: "/nonexistent/prompt.txt"); allowed: empty or "default"`},
		{"TALOS_PROMPT_ESCALATION", []string{"default", promptFile}, []string{promptDir},
			"TALOS_PROMPT_ESCALATION must name a regular file, not a directory"},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.name] = true
		for _, v := range tc.ok {
			_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true,
				LookupEnv: env(map[string]string{tc.name: v, "BASIC_AUTH_PASS": goodPass})})
			if err != nil {
				t.Errorf("%s=%q rejected: %v", tc.name, v, err)
			}
		}
		for i, v := range tc.bad {
			_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true,
				LookupEnv: env(map[string]string{tc.name: v, "BASIC_AUTH_PASS": goodPass})})
			if err == nil {
				t.Errorf("%s=%q accepted", tc.name, v)
				continue
			}
			ps := problems(t, err)
			if len(ps) != 1 || ps[0].Var != tc.name || ps[0].Allowed == "" {
				t.Errorf("%s=%q: want exactly one problem naming the variable, got %v", tc.name, v, err)
			}
			if i == 0 && !strings.Contains(err.Error(), tc.fragment) {
				t.Errorf("%s=%q: message %q lacks %q", tc.name, v, err, tc.fragment)
			}
		}
	}
	// Every non-secret variable has a case (secrets are tested below).
	for _, name := range Variables() {
		if !covered[name] && !IsSecret(name) && name != "QWEN_MODEL_PATH" && name != "SOCKET_PROXY_URL" {
			t.Errorf("no range test for %s", name)
		}
	}
}

// A relative prompt path means a file under <Home>/config, whichever
// directory the process runs in; an unreadable file is refused with T010.
func TestPromptFileResolution(t *testing.T) {
	home := t.TempDir()
	rel := filepath.Join("prompts", "local.txt")
	writeFile(t, filepath.Join(home, "config", rel), "Be brief.\n", 0o644)
	writeFile(t, filepath.Join(home, "config", "config.yaml"), "talos_prompt_local: "+rel+"\n", 0o644)
	c, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass})})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, "config", rel); c.PromptLocal != want || c.Origin["TALOS_PROMPT_LOCAL"] != "config.yaml:1" {
		t.Errorf("PromptLocal = %q from %s, want %q", c.PromptLocal, c.Origin["TALOS_PROMPT_LOCAL"], want)
	}
	if c.PromptEscalation != DefaultPrompt {
		t.Errorf("PromptEscalation = %q", c.PromptEscalation)
	}
	if os.Geteuid() == 0 {
		return // root reads mode-0 files
	}
	locked := filepath.Join(home, "locked.txt")
	writeFile(t, locked, "secret prompt", 0o000)
	_, err = Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass, "TALOS_PROMPT_ESCALATION": locked})})
	ps := problems(t, err)
	if len(ps) != 1 || ps[0].Var != "TALOS_PROMPT_ESCALATION" || ps[0].Code != talos.CodeConfigInvalid ||
		!strings.Contains(ps[0].Message, "cannot be read") || ps[0].Source != "env" {
		t.Fatalf("%v", err)
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: env(map[string]string{
		"TRUST_LEVEL": "9", "WEB_PORT": "80", "LOG_LEVEL": "LOUD", "STRIKE_THRESHOLD": "x",
	})})
	ps := problems(t, err)
	got := map[string]bool{}
	for _, p := range ps {
		got[p.Var] = true
	}
	for _, want := range []string{"TRUST_LEVEL", "WEB_PORT", "LOG_LEVEL", "STRIKE_THRESHOLD", "BASIC_AUTH_PASS"} {
		if !got[want] {
			t.Errorf("missing problem for %s in %v", want, err)
		}
	}
	if len(ps) != 5 {
		t.Errorf("want 5 problems, got %d: %v", len(ps), err)
	}
	if !errors.Is(err, talos.ErrSecretMissing) {
		t.Error("missing BASIC_AUTH_PASS must be T006")
	}
}

func TestPasswordPolicy(t *testing.T) {
	cases := []struct {
		pass string
		ok   bool
		frag string
	}{
		{goodPass, true, ""},
		{"Aa1!aaaaaaaaaaaa", true, ""}, // exactly 16
		{"Aa1!aaaaaaaaaaa", false, "at least 16 characters (got: 15)"}, // 15
		{"Aa1!" + strings.Repeat("a", 61), false, "at most 64 characters (got: 65)"},
		{"alllowercaseletters", false, "missing: upper-case letters, digits, symbols"},
		{"NoDigitsOrSymbolsHere", false, "missing: digits, symbols"},
		{"ChangeThisToASecurePassword16Chars!", false, "template placeholder"},
	}
	for _, tc := range cases {
		_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true,
			LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": tc.pass})})
		if tc.ok != (err == nil) {
			t.Errorf("%q: err = %v", tc.pass, err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), tc.frag) {
				t.Errorf("%q: %v lacks %q", tc.pass, err, tc.frag)
			}
			if strings.Contains(err.Error(), tc.pass) {
				t.Errorf("secret %q appears in %v", tc.pass, err)
			}
			for _, p := range problems(t, err) {
				if p.Value != Redacted {
					t.Errorf("problem value %q not redacted", p.Value)
				}
			}
		}
	}
}

// TestSecretsNeverInErrors feeds bad secrets through every source and
// checks the text of the error and of each problem.
func TestSecretsNeverInErrors(t *testing.T) {
	secrets := map[string]string{
		"BASIC_AUTH_PASS":    "shortSECRET1",
		"POSTGRES_PASSWORD":  "pgSECRETweak",
		"GEMINI_API_KEY":     "gkSECRET",
		"TAILSCALE_AUTH_KEY": "tsSECRETnoprefix",
	}
	home := t.TempDir()
	var body strings.Builder
	for k, v := range secrets {
		fmt.Fprintf(&body, "%s=%s\n", k, v)
	}
	writeFile(t, filepath.Join(home, "config", "talos.env"), body.String(), 0o600)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{
		"TALOS_GEMINI_ENABLED": "true",
		"TALOS_POSTGRES_URL":   "postgres://talos:urlSECRETpw@127.0.0.1:1/x?bad=%zz",
	})})
	ps := problems(t, err)
	if len(ps) < 4 {
		t.Fatalf("want a problem per secret, got %v", err)
	}
	text := err.Error() + fmt.Sprintf("%+v %#v", ps, ps)
	for _, v := range secrets {
		if strings.Contains(text, v) {
			t.Errorf("secret %q leaked: %s", v, text)
		}
	}
	if strings.Contains(text, "urlSECRETpw") {
		t.Errorf("URL password leaked: %s", text)
	}
	// The Secret type itself never prints.
	s := Secret("hunter2hunter2")
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s %#v %+v", s, s, s, struct{ S Secret }{s})} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("Secret printed: %s", out)
		}
	}
}

func TestRequiredSecrets(t *testing.T) {
	// Local-only on embedded defaults: only BASIC_AUTH_PASS is required.
	if _, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true,
		LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass})}); err != nil {
		t.Fatalf("embedded defaults need no other secret: %v", err)
	}
	_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: env(map[string]string{
		"BASIC_AUTH_PASS": goodPass, "TALOS_GEMINI_ENABLED": "true", "TALOS_POSTGRES_URL": "postgres://talos@127.0.0.1:5432/x",
	})})
	ps := problems(t, err)
	if len(ps) != 2 || ps[0].Var != "GEMINI_API_KEY" || ps[1].Var != "POSTGRES_PASSWORD" || ps[0].Code != talos.CodeSecretMissing {
		t.Fatalf("%v", err)
	}
	// A URL with its own password needs no POSTGRES_PASSWORD.
	c, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: env(map[string]string{
		"BASIC_AUTH_PASS": goodPass, "TALOS_POSTGRES_URL": "postgres://u:pw@127.0.0.1:5432/",
	})})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PostgresDSN(); got != "postgres://u:pw@127.0.0.1:5432/talos_skills" {
		t.Errorf("PostgresDSN = %s", got)
	}
	if got := redact.URL(c.PostgresURL); strings.Contains(got, "pw@") || !strings.Contains(got, "<redacted>") {
		t.Errorf("RedactURL = %s", got)
	}
}

func TestDistinctPorts(t *testing.T) {
	_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: env(map[string]string{
		"BASIC_AUTH_PASS": goodPass, "METRICS_PORT": "8080", "TALOS_HEALTH_ADDR": "127.0.0.1:8443",
	})})
	ps := problems(t, err)
	if len(ps) != 2 || !strings.Contains(ps[0].Message, "WEB_PORT and METRICS_PORT both use port 8080") {
		t.Fatalf("%v", err)
	}
}

func TestUnknownFlagOverride(t *testing.T) {
	_, err := Load(LoadOptions{Home: t.TempDir(), SkipFiles: true,
		LookupEnv: env(map[string]string{"BASIC_AUTH_PASS": goodPass}), Flags: map[string]string{"NOPE": "1"}})
	if ps := problems(t, err); len(ps) != 1 || ps[0].Var != "NOPE" {
		t.Fatalf("%v", err)
	}
}

func TestValidateAfterEdit(t *testing.T) {
	c := Defaults(t.TempDir())
	c.BasicAuthPass = goodPass
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.SandboxTimeout = 1500 * time.Millisecond
	c.TrustLevel = 7
	ps := problems(t, c.Validate())
	if len(ps) != 2 || ps[0].Var != "TRUST_LEVEL" || ps[1].Var != "SANDBOX_TIMEOUT" {
		t.Fatalf("%v", ps)
	}
}

func TestEnvFileNeverExecuted(t *testing.T) {
	home := t.TempDir()
	marker := filepath.Join(home, "pwned")
	for _, val := range []string{"\"$(touch " + marker + ")\"", "`touch " + marker + "`", "$(touch " + marker + ")"} {
		writeFile(t, filepath.Join(home, "config", "talos.env"),
			"BASIC_AUTH_PASS="+goodPass+"\nQWEN_MODEL_PATH="+val+"\n", 0o600)
		c, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("env file was executed")
		}
		if want := strings.Trim(val, `"`); c.QwenModelPath != want {
			t.Errorf("value not literal: %q, want %q", c.QwenModelPath, want)
		}
	}
}

func TestLegacyVariableHint(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "talos.env"), "BASIC_AUTH_PASS="+goodPass+"\nREDIS_HOST=localhost\n", 0o600)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	if err == nil || !strings.Contains(err.Error(), "Talos does not read REDIS_HOST; use TALOS_REDIS_URL=redis://HOST:PORT") {
		t.Fatalf("%v", err)
	}
}

func TestSlogLevel(t *testing.T) {
	c := Defaults(t.TempDir())
	for in, want := range map[string]slog.Level{"DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo, "WARN": slog.LevelWarn, "ERROR": slog.LevelError, "FATAL": slog.LevelError} {
		c.LogLevel = in
		if got := c.SlogLevel(); got != want {
			t.Errorf("%s -> %v", in, got)
		}
	}
}

// TestEnvFileEveryBadLineReported pins that Load reports each bad line and
// repeated key of talos.env with its line, not only the first, and still
// uses the good lines.
func TestEnvFileEveryBadLineReported(t *testing.T) {
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "talos.env"),
		"BASIC_AUTH_PASS="+goodPass+"\nTRUST_LEVEL=2\ngarbage\nTRUST_LEVEL=3\nLOG_LEVEL='x\n", 0o600)
	c, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	ps := problems(t, err)
	var srcs []string
	for _, p := range ps {
		srcs = append(srcs, p.Source)
	}
	if want := []string{"talos.env:3", "talos.env:4", "talos.env:5"}; !slices.Equal(srcs, want) {
		t.Fatalf("problem sources = %v, want %v: %v", srcs, want, err)
	}
	if c.TrustLevel != 2 {
		t.Errorf("TRUST_LEVEL = %d, want 2 from the good line", c.TrustLevel)
	}
}

// TestHugeValuesClippedAndEscaped pins that a bad value is never echoed
// whole or with its control characters, whichever file or variable it
// comes from.
func TestHugeValuesClippedAndEscaped(t *testing.T) {
	huge := strings.Repeat("9", 20<<20)
	esc := "\x1b]0;pwned\x07"
	home := t.TempDir()
	writeFile(t, filepath.Join(home, "config", "config.yaml"),
		"log_level: \"\\e]0;pwned\\a\"\n? "+strings.Repeat("k", 1<<16)+"\n: 1\n", 0o644)
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(map[string]string{
		"TRUST_LEVEL": huge, "WEB_PORT": esc, "TALOS_REDIS_URL": "http://h:1/0?token=" + huge,
	})})
	ps := problems(t, err)
	for _, want := range []string{"TRUST_LEVEL", "WEB_PORT", "LOG_LEVEL", "TALOS_REDIS_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no problem for %s: %.3000s", want, err)
		}
	}
	if n := len(err.Error()); n > 4000 {
		t.Errorf("error is %d bytes: values are echoed whole", n)
	}
	for _, p := range ps {
		if strings.ContainsAny(p.Message+p.Value+p.Var, "\x1b\x07") || len(p.Value) > 200 || len(p.Var) > 200 {
			t.Errorf("problem echoes a raw value: %.200q", p)
		}
	}
}

// TestConfigAndPromptFilesOthersCanChangeRefused pins that config.yaml and
// prompt files that group or others could change, or that another user
// owns, are refused (T005) and not used, as talos.env is.
func TestConfigAndPromptFilesOthersCanChangeRefused(t *testing.T) {
	load := func(home string, extra map[string]string) (*Config, error) {
		m := map[string]string{"BASIC_AUTH_PASS": goodPass}
		maps.Copy(m, extra)
		return Load(LoadOptions{Home: home, LookupEnv: env(m)})
	}
	for _, mode := range []os.FileMode{0o664, 0o646, 0o666} {
		home := t.TempDir()
		path := filepath.Join(home, "config", "config.yaml")
		writeFile(t, path, "trust_level: 5\n", mode)
		c, err := load(home, nil)
		if !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "chmod go-w "+path) {
			t.Errorf("config.yaml mode %o: %v", mode, err)
		}
		if c.TrustLevel == 5 {
			t.Errorf("config.yaml mode %o: its values were used", mode)
		}
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o600, 0o444} {
		home := t.TempDir()
		writeFile(t, filepath.Join(home, "config", "config.yaml"), "trust_level: 5\n", mode)
		if c, err := load(home, nil); err != nil || c.TrustLevel != 5 {
			t.Errorf("config.yaml mode %o refused: %v", mode, err)
		}
	}

	dir := t.TempDir()
	loose := filepath.Join(dir, "loose.txt")
	writeFile(t, loose, "You are helpful.", 0o666)
	open := filepath.Join(dir, "open", "p.txt")
	writeFile(t, open, "You are helpful.", 0o644)
	if err := os.Chmod(filepath.Dir(open), 0o777); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(dir, "sticky", "p.txt")
	writeFile(t, sticky, "You are helpful.", 0o644)
	if err := os.Chmod(filepath.Dir(sticky), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	for path, bad := range map[string]bool{loose: true, open: true, sticky: false} {
		_, err := load(t.TempDir(), map[string]string{"TALOS_PROMPT_LOCAL": path})
		if bad != errors.Is(err, talos.ErrDirPermissions) {
			t.Errorf("prompt %s: refused=%v, want %v: %v", path, !bad, bad, err)
		}
	}

	if os.Geteuid() == 0 {
		home := t.TempDir()
		path := filepath.Join(home, "config", "config.yaml")
		writeFile(t, path, "trust_level: 5\n", 0o644)
		if err := os.Chown(path, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := load(home, nil); !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "owned by uid 4242") {
			t.Errorf("config.yaml owned by another user: %v", err)
		}
	}
}

// TestEnvFileDirectoryNamedAsSuch pins that a directory at talos.env is
// reported as a directory, without chmod advice that could not help.
func TestEnvFileDirectoryNamedAsSuch(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, "config", "talos.env")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Load(LoadOptions{Home: home, LookupEnv: env(nil)})
	ps := problems(t, err)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "is a directory, not a regular file") || strings.Contains(err.Error(), "chmod") {
		t.Fatalf("%v", err)
	}
}
