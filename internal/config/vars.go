package config

import (
	"errors"
	"fmt"
	"github.com/talos-ironclad/talos/dream"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
)

// varSpec describes one variable: its names, default, how to parse a raw
// string into the Config and how to range-check the typed value.
type varSpec struct {
	name    string // environment / talos.env name, e.g. TRUST_LEVEL
	def     string // default as a raw string ("" = empty)
	secret  bool   // never show the value
	allowed string // human description of the valid values
	// parse sets the field from raw; it returns a problem when raw is not
	// even of the right type (not a number, not a bool).
	parse func(c *Config, raw string) *Problem
	// check range-checks the typed field.
	check func(c *Config) []Problem
}

// key returns the config.yaml key of the variable: its name in lower case
// (TRUST_LEVEL → trust_level).
func (v *varSpec) key() string { return strings.ToLower(v.name) }

// Variables returns the names of every variable Load understands, in
// documentation order: the original specification's 49 and the Talos
// additions.
func Variables() []string {
	out := make([]string, len(table))
	for i := range table {
		out[i] = table[i].name
	}
	return out
}

// IsSecret reports whether the named variable holds a secret.
func IsSecret(name string) bool {
	v := lookupVar(name)
	return v != nil && v.secret
}

func lookupVar(name string) *varSpec {
	for i := range table {
		if table[i].name == name {
			return &table[i]
		}
	}
	return nil
}

func lookupKey(key string) *varSpec {
	for i := range table {
		if table[i].key() == key {
			return &table[i]
		}
	}
	return nil
}

// table is the read-only list of variables. It is never modified after
// package initialisation (a composite literal, no init function).
var table = []varSpec{
	// Talos additions: service addresses (empty = embedded default).
	urlVar("TALOS_REDIS_URL", []string{"redis", "rediss", "unix"}, func(c *Config) *string { return &c.RedisURL }),
	urlVar("TALOS_POSTGRES_URL", []string{"postgres", "postgresql"}, func(c *Config) *string { return &c.PostgresURL }),
	urlVar("TALOS_CHROMA_URL", []string{"http", "https"}, func(c *Config) *string { return &c.ChromaURL }),
	enumVar("TALOS_MEMORY_STORE", DefaultMemoryStore, []string{MemoryStoreSQL, MemoryStoreChromem}, false,
		func(c *Config) *string { return &c.MemoryStore }),
	urlVar("TALOS_DOCKER_HOST", []string{"unix", "tcp", "http", "https"}, func(c *Config) *string { return &c.DockerHost }),
	urlVar("TALOS_OLLAMA_URL", []string{"http", "https"}, func(c *Config) *string { return &c.OllamaURL }),
	urlVar("SOCKET_PROXY_URL", []string{"http", "https", "unix", "tcp"}, func(c *Config) *string { return &c.SocketProxyURL }),
	strVar("TALOS_HEALTH_ADDR", DefaultHealthAddr, "a loopback host:port such as 127.0.0.1:8081", checkLoopbackAddr,
		func(c *Config) *string { return &c.HealthAddr }),
	boolVar("TALOS_GEMINI_ENABLED", DefaultGeminiEnabled, func(c *Config) *bool { return &c.GeminiEnabled }),
	urlVar("TALOS_GEMINI_URL", []string{"http", "https"}, func(c *Config) *string { return &c.GeminiURL }),
	intVar("TOKEN_DAILY_LIMIT", DefaultTokenDailyLimit, 1000, 100000000, func(c *Config) *int { return &c.TokenDailyLimit }),
	strVar("TALOS_OLLAMA_MODEL", DefaultOllamaModel, "an Ollama model name of letters, digits, '.', ':', '_', '-', '/'", checkOllamaModel,
		func(c *Config) *string { return &c.OllamaModel }),
	promptVar("TALOS_PROMPT_LOCAL", func(c *Config) *string { return &c.PromptLocal }),
	promptVar("TALOS_PROMPT_ESCALATION", func(c *Config) *string { return &c.PromptEscalation }),
	pathsVar("TALOS_MCP_ALLOWED_COMMANDS", func(c *Config) *[]string { return &c.MCPAllowedCommands }),
	strVar("TALOS_DREAM_SCHEDULE", DefaultDreamSchedule, "a five-field cron expression (minute hour day month weekday), e.g. \"0 4 * * *\"", checkDreamSchedule,
		func(c *Config) *string { return &c.DreamSchedule }),
	strVar("TALOS_DREAM_TIMEZONE", DefaultDreamTimezone, "Local, UTC or an IANA zone name such as Europe/Berlin", checkTimezone,
		func(c *Config) *string { return &c.DreamTimezone }),
	strVar("TALOS_BROWSER_IMAGE", "", "empty (browser_automation not offered) or a local image name such as talos/browser:1", checkOptionalImage,
		func(c *Config) *string { return &c.BrowserImage }),
	strVar("TALOS_BROWSER_NETWORK", "", "empty (browser_automation not offered) or a Docker network name (letters, digits, '_', '.', '-'; not host or none)", checkOptionalNetwork,
		func(c *Config) *string { return &c.BrowserNetwork }),
	intVar("TALOS_BACKUP_KEEP", DefaultBackupKeep, 0, 365, func(c *Config) *int { return &c.BackupKeep }),
	strVar("TALOS_VRAM_MODELS", DefaultVRAMModels, "comma-separated NAME=GB pairs (Ollama model name = free VRAM in GB it needs, 1-80), e.g. qwen2.5-coder:7b=7", checkVRAMModels,
		func(c *Config) *string { return &c.VRAMModels }),

	// The original specification's 49, starting with core identity.
	strVar("TALOS_VERSION", DefaultTalosVersion, "SemVer x.y.z", checkSemver, func(c *Config) *string { return &c.TalosVersion }),
	strVar("TALOS_INSTANCE_ID", "", "a UUID v4 (`talos init` generates one)", checkUUIDv4, func(c *Config) *string { return &c.InstanceID }),
	intVar("TRUST_LEVEL", DefaultTrustLevel, 0, 5, func(c *Config) *int { return &c.TrustLevel }),

	// Resource ceilings.
	sizeVar("REDIS_MAX_MEMORY", DefaultRedisMaxMemory, 128, 2048, "mb", func(c *Config) *int64 { return &c.RedisMaxMemory }),
	enumVar("REDIS_MAX_MEMORY_POLICY", DefaultRedisMaxMemoryPolicy, []string{"allkeys-lru", "volatile-lru", "allkeys-random"}, false,
		func(c *Config) *string { return &c.RedisMaxMemoryPolicy }),
	intVar("CHROMADB_MAX_VECTORS", DefaultChromaMaxVectors, 10000, 500000, func(c *Config) *int { return &c.ChromaMaxVectors }),
	intVar("CHROMADB_MAX_DIMENSIONS", DefaultChromaMaxDimensions, 384, 4096, func(c *Config) *int { return &c.ChromaMaxDimensions }),
	durVar("VRAM_MUTEX_TIMEOUT", DefaultVRAMMutexTimeout, time.Second, 30, 1800, func(c *Config) *time.Duration { return &c.VRAMMutexTimeout }),
	intVar("VRAM_MAX_ALLOCATION", DefaultVRAMMaxAllocationMB, 512, 16384, func(c *Config) *int { return &c.VRAMMaxAllocationMB }),

	// API authentication and models.
	secretVar("GEMINI_API_KEY", "a Gemini API key (at least 20 characters, no spaces)", checkAPIKey, func(c *Config) *Secret { return &c.GeminiAPIKey }),
	strVar("GEMINI_MODEL_NAME", DefaultGeminiModelName, "a model name of lower-case letters, digits, '.', '-'", checkModelName,
		func(c *Config) *string { return &c.GeminiModelName }),
	intVar("GEMINI_MAX_TOKENS", DefaultGeminiMaxTokens, 1024, 32768, func(c *Config) *int { return &c.GeminiMaxTokens }),
	floatVar("GEMINI_TEMPERATURE", DefaultGeminiTemperature, 0.0, 2.0, func(c *Config) *float64 { return &c.GeminiTemperature }),
	strVar("QWEN_MODEL_PATH", DefaultQwenModelPath, "a file-system path or model name", checkPath, func(c *Config) *string { return &c.QwenModelPath }),
	intVar("QWEN_CONTEXT_LENGTH", DefaultQwenContextLength, 4096, 131072, func(c *Config) *int { return &c.QwenContextLength }),

	// Web interface security.
	strVar("BASIC_AUTH_USER", DefaultBasicAuthUser, "4-32 alphanumeric characters", checkAuthUser, func(c *Config) *string { return &c.BasicAuthUser }),
	secretVar("BASIC_AUTH_PASS", passwordPolicy, checkPassword, func(c *Config) *Secret { return &c.BasicAuthPass }),
	intVar("WEB_PORT", DefaultWebPort, 1024, 65535, func(c *Config) *int { return &c.WebPort }),
	intVar("WEB_HTTPS_PORT", DefaultWebHTTPSPort, 1024, 65535, func(c *Config) *int { return &c.WebHTTPSPort }),
	strVar("WEB_BIND_ADDRESS", DefaultWebBindAddress, "an IPv4 or IPv6 address", checkIP, func(c *Config) *string { return &c.WebBindAddress }),
	durVar("SESSION_TIMEOUT", DefaultSessionTimeout, time.Minute, 5, 240, func(c *Config) *time.Duration { return &c.SessionTimeout }),
	intVar("API_RATE_LIMIT_MAX", DefaultAPIRateLimitMax, 10, 1000, func(c *Config) *int { return &c.APIRateLimitMax }),
	durVar("API_RATE_LIMIT_WINDOW", DefaultAPIRateLimitWin, time.Second, 1, 3600, func(c *Config) *time.Duration { return &c.APIRateLimitWindow }),

	// Database.
	strVar("POSTGRES_USER", DefaultPostgresUser, "a PostgreSQL identifier: a letter or _, then letters, digits, _ (max 63)", checkPGIdent,
		func(c *Config) *string { return &c.PostgresUser }),
	secretVar("POSTGRES_PASSWORD", passwordPolicy, checkPassword, func(c *Config) *Secret { return &c.PostgresPassword }),
	strVar("POSTGRES_DB", DefaultPostgresDB, "a PostgreSQL identifier: a letter or _, then letters, digits, _ (max 63)", checkPGIdent,
		func(c *Config) *string { return &c.PostgresDB }),

	// Network and VPN.
	secretVar("TAILSCALE_AUTH_KEY", "a Tailscale auth key (tskey-...)", checkTailscaleKey, func(c *Config) *Secret { return &c.TailscaleAuthKey }),
	strVar("TAILSCALE_HOSTNAME", DefaultTailscaleHostname, "1-63 letters, digits or '-' (a DNS label)", checkDNSLabel,
		func(c *Config) *string { return &c.TailscaleHostname }),
	boolVar("TAILSCALE_ACCEPT_DNS", DefaultTailscaleAcceptDNS, func(c *Config) *bool { return &c.TailscaleAcceptDNS }),
	boolVar("TAILSCALE_ACCEPT_ROUTES", DefaultTailscaleAcceptRoutes, func(c *Config) *bool { return &c.TailscaleAcceptRoutes }),

	// Logging and monitoring.
	enumVar("LOG_LEVEL", DefaultLogLevel, []string{"DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, true, func(c *Config) *string { return &c.LogLevel }),
	enumVar("LOG_FORMAT", DefaultLogFormat, []string{"json", "text"}, false, func(c *Config) *string { return &c.LogFormat }),
	intVar("LOG_TIER1_RETENTION_DAYS", DefaultLogTier1RetentionDays, 30, 365, func(c *Config) *int { return &c.LogTier1RetentionDays }),
	intVar("LOG_TIER2_RETENTION_DAYS", DefaultLogTier2RetentionDays, 7, 90, func(c *Config) *int { return &c.LogTier2RetentionDays }),
	intVar("LOG_TIER3_RETENTION_DAYS", DefaultLogTier3RetentionDays, 1, 30, func(c *Config) *int { return &c.LogTier3RetentionDays }),
	boolVar("METRICS_ENABLED", DefaultMetricsEnabled, func(c *Config) *bool { return &c.MetricsEnabled }),
	intVar("METRICS_PORT", DefaultMetricsPort, 1024, 65535, func(c *Config) *int { return &c.MetricsPort }),

	// Security and sandboxing.
	intVar("STRIKE_THRESHOLD", DefaultStrikeThreshold, 1, 10, func(c *Config) *int { return &c.StrikeThreshold }),
	sizeVar("SANDBOX_MEMORY_LIMIT", DefaultSandboxMemoryLimit, 128, 2048, "m", func(c *Config) *int64 { return &c.SandboxMemoryLimit }),
	intVar("SANDBOX_PIDS_LIMIT", DefaultSandboxPidsLimit, 10, 200, func(c *Config) *int { return &c.SandboxPidsLimit }),
	intVar("SANDBOX_CPU_QUOTA", DefaultSandboxCPUQuota, 10, 100, func(c *Config) *int { return &c.SandboxCPUQuota }),
	durVar("SANDBOX_TIMEOUT", DefaultSandboxTimeout, time.Second, 10, 300, func(c *Config) *time.Duration { return &c.SandboxTimeout }),
	boolVar("SOCKET_PROXY_ENABLED", DefaultSocketProxyEnabled, func(c *Config) *bool { return &c.SocketProxyEnabled }),
	opsVar("SOCKET_PROXY_ALLOWED_OPS", DefaultSocketProxyAllowedOps, func(c *Config) *[]string { return &c.SocketProxyAllowedOps }),

	// Intelligence and memory.
	intVar("MEMORY_CONTEXT_WINDOW", DefaultMemoryContextWindow, 5, 50, func(c *Config) *int { return &c.MemoryContextWindow }),
	floatVar("MEMORY_SIMILARITY_THRESHOLD", DefaultMemorySimilarityThreshold, 0.5, 0.95, func(c *Config) *float64 { return &c.MemorySimilarityThreshold }),
	boolVar("SKILL_AUTOLOAD_ENABLED", DefaultSkillAutoloadEnabled, func(c *Config) *bool { return &c.SkillAutoloadEnabled }),
	boolVar("SKILL_SIGNATURE_VERIFY", DefaultSkillSignatureVerify, func(c *Config) *bool { return &c.SkillSignatureVerify }),
	boolVar("RECURSIVE_SELF_IMPROVE", DefaultRecursiveSelfImprove, func(c *Config) *bool { return &c.RecursiveSelfImprove }),
}

func invalid(name, value, allowed, msg string) Problem {
	return Problem{Var: name, Value: show(value), Allowed: allowed, Message: msg, Code: talos.CodeEnvInvalid}
}

// show returns a value for a message: as it is when short and plain,
// otherwise Go-quoted (control characters escaped) and clipped, so a 20 MB
// value or a terminal escape sequence is never echoed.
func show(v string) string {
	if len(v) <= redact.MaxValueRunes && !strings.ContainsFunc(v, func(r rune) bool {
		return !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '"' || r == utf8.RuneError
	}) {
		return v
	}
	return redact.Value(v)
}

func rangeMsg(name string, min, max any, got string) string {
	return fmt.Sprintf("%s must be between %v and %v (got: %s)", name, min, max, got)
}

func intVar(name string, def, min, max int, f func(*Config) *int) varSpec {
	allowed := fmt.Sprintf("%d-%d (integer)", min, max)
	return varSpec{
		name: name, def: strconv.Itoa(def), allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			n, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil {
				p := invalid(name, raw, allowed, fmt.Sprintf("%s must be numeric, a whole number between %d and %d (got: %s)", name, min, max, show(raw)))
				return &p
			}
			*f(c) = n
			return nil
		},
		check: func(c *Config) []Problem {
			n := *f(c)
			if n < min || n > max {
				return []Problem{invalid(name, strconv.Itoa(n), allowed, rangeMsg(name, min, max, strconv.Itoa(n)))}
			}
			return nil
		},
	}
}

// durVar is a duration given as a whole number of unit (seconds, minutes).
func durVar(name string, def, unit time.Duration, min, max int, f func(*Config) *time.Duration) varSpec {
	uname := "seconds"
	if unit == time.Minute {
		uname = "minutes"
	}
	allowed := fmt.Sprintf("%d-%d (%s)", min, max, uname)
	return varSpec{
		name: name, def: strconv.FormatInt(int64(def/unit), 10), allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
			if err != nil {
				p := invalid(name, raw, allowed, fmt.Sprintf("%s must be numeric, a whole number of %s between %d and %d (got: %s)", name, uname, min, max, show(raw)))
				return &p
			}
			*f(c) = time.Duration(n) * unit
			return nil
		},
		check: func(c *Config) []Problem {
			d := *f(c)
			got := strconv.FormatInt(int64(d/unit), 10)
			if d%unit != 0 {
				got = d.String()
			}
			if d%unit != 0 || d < time.Duration(min)*unit || d > time.Duration(max)*unit {
				return []Problem{invalid(name, got, allowed, rangeMsg(name, min, max, got)+" ("+uname+")")}
			}
			return nil
		},
	}
}

func floatVar(name string, def, min, max float64, f func(*Config) *float64) varSpec {
	allowed := fmt.Sprintf("%g-%g (decimal)", min, max)
	return varSpec{
		name: name, def: strconv.FormatFloat(def, 'g', -1, 64), allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			x, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
			if err != nil || x != x { // NaN
				p := invalid(name, raw, allowed, fmt.Sprintf("%s must be numeric, a decimal between %g and %g (got: %s)", name, min, max, show(raw)))
				return &p
			}
			*f(c) = x
			return nil
		},
		check: func(c *Config) []Problem {
			x := *f(c)
			if !(x >= min && x <= max) {
				got := strconv.FormatFloat(x, 'g', -1, 64)
				return []Problem{invalid(name, got, allowed, rangeMsg(name, fmt.Sprintf("%.1f", min), fmt.Sprintf("%.2f", max), got))}
			}
			return nil
		},
	}
}

func boolVar(name string, def bool, f func(*Config) *bool) varSpec {
	const allowed = "true or false"
	return varSpec{
		name: name, def: strconv.FormatBool(def), allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			switch strings.ToLower(strings.TrimSpace(raw)) {
			case "true":
				*f(c) = true
			case "false":
				*f(c) = false
			default:
				p := invalid(name, raw, allowed, fmt.Sprintf("%s must be true or false (got: %s)", name, show(raw)))
				return &p
			}
			return nil
		},
	}
}

// enumVar: upper=true normalises the value to upper case, otherwise to lower.
func enumVar(name, def string, values []string, upper bool, f func(*Config) *string) varSpec {
	allowed := strings.Join(values, ", ")
	return varSpec{
		name: name, def: def, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			v := strings.TrimSpace(raw)
			if upper {
				v = strings.ToUpper(v)
			} else {
				v = strings.ToLower(v)
			}
			*f(c) = v
			return nil
		},
		check: func(c *Config) []Problem {
			v := *f(c)
			for _, ok := range values {
				if v == ok {
					return nil
				}
			}
			return []Problem{invalid(name, v, allowed, fmt.Sprintf("%s must be one of: %s (got: %s)", name, allowed, show(v)))}
		},
	}
}

// strVar is a string with a checker returning "" when valid or a reason.
func strVar(name, def, allowed string, check func(string) string, f func(*Config) *string) varSpec {
	return varSpec{
		name: name, def: def, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			*f(c) = strings.TrimSpace(raw)
			return nil
		},
		check: func(c *Config) []Problem {
			v := *f(c)
			if why := check(v); why != "" {
				return []Problem{invalid(name, v, allowed, fmt.Sprintf("%s %s (got: %s); allowed: %s", name, why, redact.Value(v), allowed))}
			}
			return nil
		},
	}
}

// urlVar is an optional service address: empty means "not configured".
func urlVar(name string, schemes []string, f func(*Config) *string) varSpec {
	allowed := "empty (embedded default) or a URL with scheme " + strings.Join(schemes, ", ")
	return varSpec{
		name: name, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			*f(c) = strings.TrimSpace(raw)
			return nil
		},
		check: func(c *Config) []Problem {
			v := *f(c)
			if v == "" {
				return nil
			}
			shown := redact.URL(v)
			u, err := url.Parse(v)
			if err != nil {
				return []Problem{invalid(name, "<unparsable URL>", allowed, fmt.Sprintf("%s is not a valid URL; allowed: %s", name, allowed))}
			}
			for _, s := range schemes {
				if u.Scheme == s {
					if s != "unix" && u.Host == "" {
						return []Problem{invalid(name, shown, allowed, fmt.Sprintf("%s has no host (got: %s); allowed: %s", name, shown, allowed))}
					}
					return nil
				}
			}
			return []Problem{invalid(name, shown, allowed, fmt.Sprintf("%s has scheme %s (got: %s); allowed: %s", name, redact.Value(u.Scheme), shown, allowed))}
		},
	}
}

// promptVar is a system-prompt override: "" or DefaultPrompt for the
// built-in prompt, otherwise a readable regular file that only its owner
// (this user or root) can change. A relative path is
// resolved against <Home>/config (where config.yaml lives), so the value
// means the same whichever directory the daemon starts in.
func promptVar(name string, f func(*Config) *string) varSpec {
	allowed := fmt.Sprintf("empty or %q (the built-in prompt), or the path of a readable text file (relative paths are under TALOS_HOME/config)", DefaultPrompt)
	return varSpec{
		name: name, def: DefaultPrompt, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			v := strings.TrimSpace(raw)
			if v != "" && v != DefaultPrompt && !filepath.IsAbs(v) && c.Home != "" {
				v = filepath.Join(c.Home, ConfigDirName, v)
			}
			*f(c) = v
			return nil
		},
		check: func(c *Config) []Problem {
			v := *f(c)
			if v == "" || v == DefaultPrompt {
				return nil
			}
			why := ""
			if st, err := os.Stat(v); err != nil {
				why = "names a file that cannot be found"
				if !errors.Is(err, fs.ErrNotExist) {
					why = "names a file that cannot be read: " + err.Error()
				}
			} else if !st.Mode().IsRegular() {
				why = "must name a regular file, not a " + fileKind(st.Mode())
			} else if fh, err := os.Open(v); err != nil {
				why = "names a file that cannot be read: " + err.Error()
			} else {
				_ = fh.Close()
				if unsafe := unsafeFile(v, st); unsafe != "" {
					// Whoever can change the prompt steers the model.
					return []Problem{fileSafetyProblem(name, v, unsafe)}
				}
			}
			if why == "" {
				return nil
			}
			return []Problem{{Var: name, Value: v, Allowed: allowed, Code: talos.CodeConfigInvalid,
				Message: fmt.Sprintf("%s %s (got: %s); allowed: %s", name, why, redact.Value(v), allowed)}}
		},
	}
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// secretVar: empty is allowed here (crossChecks decides what is required);
// the check never puts the value in a message.
func secretVar(name, allowed string, check func(name, v string) []string, f func(*Config) *Secret) varSpec {
	return varSpec{
		name: name, secret: true, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			*f(c) = Secret(strings.TrimSpace(raw))
			return nil
		},
		check: func(c *Config) []Problem {
			v := f(c).Value()
			if v == "" {
				return nil
			}
			var out []Problem
			for _, msg := range check(name, v) {
				out = append(out, invalid(name, Redacted, allowed, msg))
			}
			return out
		},
	}
}

// sizeVar is a memory size such as 512mb (Redis spelling) or 512m (Docker
// spelling); both spellings and plain bytes are accepted, min/max in MiB.
func sizeVar(name string, def int64, minMB, maxMB int64, unit string, f func(*Config) *int64) varSpec {
	allowed := fmt.Sprintf("%d%s-%d%s", minMB, unit, maxMB, unit)
	return varSpec{
		name: name, def: fmt.Sprintf("%d%s", def>>20, unit), allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			n, ok := parseSize(raw)
			if !ok {
				p := invalid(name, raw, allowed, fmt.Sprintf("%s must be a size such as 512%s, between %s (got: %s)", name, unit, allowed, show(raw)))
				return &p
			}
			*f(c) = n
			return nil
		},
		check: func(c *Config) []Problem {
			n := *f(c)
			if n < minMB<<20 || n > maxMB<<20 {
				got := formatSize(n, unit)
				return []Problem{invalid(name, got, allowed, rangeMsg(name, fmt.Sprintf("%d%s", minMB, unit), fmt.Sprintf("%d%s", maxMB, unit), got))}
			}
			return nil
		},
	}
}

// pathsVar is a comma-separated list of absolute paths.
func pathsVar(name string, f func(*Config) *[]string) varSpec {
	const allowed = "a comma-separated list of absolute paths, e.g. /usr/bin/node,/opt/mcp"
	return varSpec{
		name: name, def: "", allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			var ps []string
			for _, p := range strings.Split(raw, ",") {
				if p = strings.TrimSpace(p); p != "" {
					ps = append(ps, p)
				}
			}
			*f(c) = ps
			return nil
		},
		check: func(c *Config) []Problem {
			var out []Problem
			for _, p := range *f(c) {
				if !filepath.IsAbs(p) || filepath.Clean(p) != p {
					out = append(out, invalid(name, p, allowed, fmt.Sprintf("%s entry %s is not a clean absolute path; allowed: %s", name, redact.Value(p), allowed)))
				}
			}
			return out
		},
	}
}

func opsVar(name, def string, f func(*Config) *[]string) varSpec {
	const allowed = "a comma-separated list of resource:verb, e.g. containers:start"
	return varSpec{
		name: name, def: def, allowed: allowed,
		parse: func(c *Config, raw string) *Problem {
			var ops []string
			for _, op := range strings.Split(raw, ",") {
				if op = strings.TrimSpace(op); op != "" {
					ops = append(ops, op)
				}
			}
			*f(c) = ops
			return nil
		},
		check: func(c *Config) []Problem {
			var out []Problem
			for _, op := range *f(c) {
				if !opRE.MatchString(op) {
					out = append(out, invalid(name, op, allowed, fmt.Sprintf("%s entry %s is not resource:verb (lower-case letters and _); allowed: %s", name, redact.Value(op), allowed)))
				}
			}
			return out
		},
	}
}

var (
	opRE       = regexp.MustCompile(`^[a-z]+:[a-z_]+$`)
	semverRE   = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)
	uuid4RE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	modelRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]{0,99}$`)
	ollamaRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.:_\-/]{0,199}$`)
	alnumRE    = regexp.MustCompile(`^[A-Za-z0-9]{4,32}$`)
	pgIdentRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	dnsLabelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	sizeRE     = regexp.MustCompile(`^([0-9]{1,12})\s*(b|k|kb|m|mb|g|gb)?$`)
)

func parseSize(raw string) (int64, bool) {
	m := sizeRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(raw)))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	switch m[2] {
	case "k", "kb":
		n <<= 10
	case "m", "mb":
		n <<= 20
	case "g", "gb":
		n <<= 30
	}
	return n, true
}

func formatSize(n int64, unit string) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d%s", n>>20, unit)
	}
	return strconv.FormatInt(n, 10)
}

func checkSemver(v string) string {
	if !semverRE.MatchString(v) {
		return "must be a version x.y.z"
	}
	return ""
}

func checkUUIDv4(v string) string {
	if v == "" || uuid4RE.MatchString(strings.ToLower(v)) {
		return ""
	}
	return "must be a UUID v4"
}

func checkModelName(v string) string {
	if !modelRE.MatchString(v) {
		return "is not a valid model name"
	}
	return ""
}

func checkVRAMModels(v string) string {
	if _, err := ParseVRAMModels(v); err != nil {
		return err.Error()
	}
	return ""
}

// ParseVRAMModels parses TALOS_VRAM_MODELS ("name=GB,name=GB") into the free
// VRAM, in GB, each model needs before the VRAM mutex loads it.
func ParseVRAMModels(v string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		name, gb, ok := strings.Cut(part, "=")
		name, gb = strings.TrimSpace(name), strings.TrimSpace(gb)
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %s is not NAME=GB", redact.Value(part))
		}
		if checkOllamaModel(name) != "" {
			return nil, fmt.Errorf("model name %s is not a valid Ollama model name", redact.Value(name))
		}
		n, err := strconv.Atoi(gb)
		if err != nil || n < 1 || n > 80 {
			return nil, fmt.Errorf("model %s needs %s GB; allowed: a whole number from 1 to 80", name, redact.Value(gb))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("model %s is listed twice", name)
		}
		out[name] = n
	}
	return out, nil
}

var (
	imageRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._/:@-]{0,254}$`)
	networkRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

func checkOptionalImage(v string) string {
	if v == "" || imageRE.MatchString(v) {
		return ""
	}
	return "is not an image name"
}

func checkOptionalNetwork(v string) string {
	if v == "" || networkRE.MatchString(v) && v != "host" && v != "none" {
		return ""
	}
	return "is not a usable Docker network name"
}

func checkOllamaModel(v string) string {
	if !ollamaRE.MatchString(v) {
		return "is not a valid Ollama model name"
	}
	return ""
}

func checkPath(v string) string {
	if v == "" || strings.ContainsRune(v, 0) {
		return "must be a non-empty path"
	}
	return ""
}

func checkAuthUser(v string) string {
	if !alnumRE.MatchString(v) {
		return "must be 4-32 letters or digits"
	}
	return ""
}

func checkIP(v string) string {
	if net.ParseIP(v) == nil {
		return "is not an IP address"
	}
	return ""
}

func checkPGIdent(v string) string {
	if !pgIdentRE.MatchString(v) {
		return "is not a valid PostgreSQL name"
	}
	return ""
}

func checkDNSLabel(v string) string {
	if !dnsLabelRE.MatchString(v) {
		return "is not a valid host name"
	}
	return ""
}

func checkDreamSchedule(v string) string {
	if _, err := dream.ParseSchedule(v, time.UTC); err != nil {
		return "is not a valid schedule: " + err.Error()
	}
	return ""
}

func checkTimezone(v string) string {
	if _, err := LoadTimezone(v); err != nil {
		return "is not a known time zone"
	}
	return ""
}

// LoadTimezone returns the location named by TALOS_DREAM_TIMEZONE:
// "Local" (or empty) is the machine's own zone.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

func checkLoopbackAddr(v string) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "is not host:port"
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "has an invalid port"
	}
	if host == "localhost" {
		return ""
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "must be on loopback (127.0.0.1, ::1 or localhost)"
	}
	return ""
}

func portOf(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(port)
	return p
}

func urlHasPassword(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return false
	}
	_, ok := p.User.Password()
	return ok
}

// placeholders are the example values of the original specification's
// talos.env template, which its own validator accepts; we reject them.
var placeholders = []string{
	"your_gemini_api_key_here",
	"changethistoasecurepassword16chars!",
	"changeme",
	"your_secure_postgres_password",
	"tskey-xxxxx",
}

func isPlaceholder(v string) bool {
	l := strings.ToLower(v)
	for _, p := range placeholders {
		if l == p {
			return true
		}
	}
	return strings.Contains(l, "changeme") || strings.Contains(l, "your_") && strings.Contains(l, "_here")
}

// passwordPolicy describes what BASIC_AUTH_PASS and POSTGRES_PASSWORD need:
// 16-64 characters, complex (the original specification's template asks for
// mixed case, numbers and symbols). The specification only warns on a
// missing class; we refuse.
const passwordPolicy = "16-64 characters with upper-case, lower-case, digit and symbol"

// Password bounds: 16 to 64 characters.
const (
	MinPasswordLen = 16
	MaxPasswordLen = 64
)

// PasswordProblems returns why v fails the password policy (empty = ok).
// The messages name the variable and the length, never the password.
func PasswordProblems(name, v string) []string {
	return checkPassword(name, v)
}

func checkPassword(name, v string) []string {
	var out []string
	if isPlaceholder(v) {
		out = append(out, fmt.Sprintf("%s is still the template placeholder; set a real secret (`talos init` generates one)", name))
	}
	n := len([]rune(v))
	if n < MinPasswordLen {
		out = append(out, fmt.Sprintf("%s must be at least %d characters (got: %d)", name, MinPasswordLen, n))
	}
	if n > MaxPasswordLen {
		out = append(out, fmt.Sprintf("%s must be at most %d characters (got: %d)", name, MaxPasswordLen, n))
	}
	var up, low, dig, sym bool
	for _, r := range v {
		switch {
		case r >= 'A' && r <= 'Z':
			up = true
		case r >= 'a' && r <= 'z':
			low = true
		case r >= '0' && r <= '9':
			dig = true
		default:
			sym = true
		}
	}
	var miss []string
	if !up {
		miss = append(miss, "upper-case letters")
	}
	if !low {
		miss = append(miss, "lower-case letters")
	}
	if !dig {
		miss = append(miss, "digits")
	}
	if !sym {
		miss = append(miss, "symbols")
	}
	if len(miss) > 0 {
		out = append(out, fmt.Sprintf("%s must mix upper-case letters, lower-case letters, digits and symbols (missing: %s)", name, strings.Join(miss, ", ")))
	}
	return out
}

func checkAPIKey(name, v string) []string {
	if isPlaceholder(v) {
		return []string{fmt.Sprintf("%s is still the template placeholder; set your real key", name)}
	}
	if strings.ContainsAny(v, " \t\r\n\"'") || len(v) < 20 {
		return []string{fmt.Sprintf("%s does not look like an API key (length %d, must be at least 20 characters without spaces or quotes)", name, len(v))}
	}
	return nil
}

func checkTailscaleKey(name, v string) []string {
	if isPlaceholder(v) || !strings.HasPrefix(v, "tskey-") {
		return []string{fmt.Sprintf("%s must be a Tailscale auth key starting with tskey- (length %d)", name, len(v))}
	}
	return nil
}

// VarInfo describes one configuration variable for listings such as
// `talos config vars`.
type VarInfo struct {
	// Name is the variable's name (TRUST_LEVEL); config.yaml uses it in
	// lower case.
	Name string
	// Default is the default as a raw string; empty for secrets and for
	// variables whose default is empty.
	Default string
	// Allowed describes the valid values.
	Allowed string
	// Secret is true when the value is never shown.
	Secret bool
}

// Describe returns every variable Load understands, in the order of
// Variables.
func Describe() []VarInfo {
	out := make([]VarInfo, len(table))
	for i := range table {
		v := &table[i]
		out[i] = VarInfo{Name: v.name, Allowed: v.allowed, Secret: v.secret}
		if !v.secret {
			out[i].Default = v.def
		}
	}
	return out
}

// IsVariable reports whether name (exact, upper case) is a variable Load
// understands.
func IsVariable(name string) bool { return lookupVar(name) != nil }

// Suggest returns a hint for a name that is not a variable: the variable
// that replaces a legacy script name, or the nearest variable name, as
// " (did you mean X?)"; "" when nothing is close.
func Suggest(name string) string { return suggest(name) }
