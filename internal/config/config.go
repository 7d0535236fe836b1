package config

import (
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Names of the files inside <Home>/config.
const (
	// ConfigDirName is the directory under Home holding config.yaml and talos.env.
	ConfigDirName = "config"
	// ConfigFileName is the YAML configuration file.
	ConfigFileName = "config.yaml"
	// EnvFileName is the dotenv file with secrets, mode 0600.
	EnvFileName = "talos.env"
	// DefaultHomeDirName is the directory under the user's home used when
	// TALOS_HOME is not set, so the default home is ~/talos.
	DefaultHomeDirName = "talos"
)

// Defaults of the Talos-specific settings (not in the spec's 49 variables).
const (
	// DefaultHealthAddr is where /health and /metrics listen: the original
	// specification's HEALTH_BIND:HEALTH_PORT defaults, 127.0.0.1:8081. It
	// must stay on loopback: every listener of the daemon binds to loopback
	// unless configured otherwise.
	DefaultHealthAddr = "127.0.0.1:8081"
	// MCPServersKey is the config.yaml key of the MCP tool servers: a
	// mapping of server name to command, args, description, enabled,
	// timeout_seconds, auto_start, env and max_retries, which the MCP host
	// reads (the flat keys of this package skip it).
	MCPServersKey = "mcp_servers"
	// DefaultDreamSchedule is TALOS_DREAM_SCHEDULE: the nightly maintenance
	// cycle at 04:00, as in the original specification.
	DefaultDreamSchedule = "0 4 * * *"
	// DefaultDreamTimezone is TALOS_DREAM_TIMEZONE: the schedule follows
	// the machine's own wall clock.
	DefaultDreamTimezone = "Local"
	// DefaultBackupKeep is TALOS_BACKUP_KEEP: the nightly cycle writes no
	// backup unless the operator asks for it (a backup holds the keys).
	DefaultBackupKeep = 0
	// DefaultOllamaModel is TALOS_OLLAMA_MODEL, the local model `talos ask`
	// and the router use first: the spec's local coder, Qwen2.5-Coder 7B
	// (QWEN_MODEL_PATH names it as a file; Ollama names it by tag).
	DefaultOllamaModel = "qwen2.5-coder:7b"
	// DefaultVRAMModels is TALOS_VRAM_MODELS: the models the VRAM mutex may
	// load and the free VRAM each needs, the spec's coder (7 GB) and vision
	// (9 GB) models under their Ollama names.
	DefaultVRAMModels = "qwen2.5-coder:7b=7,qwen2.5vl:7b=9"
	// DefaultPrompt is the value of TALOS_PROMPT_LOCAL and
	// TALOS_PROMPT_ESCALATION that selects the built-in system prompt
	// (llm.PromptDefault).
	DefaultPrompt = "default"
	// DefaultMemoryStore is TALOS_MEMORY_STORE, where long-term memories
	// live when TALOS_CHROMA_URL is not set: MemoryStoreSQL, the relational
	// store (the SQLite file data/talos.db, or PostgreSQL when
	// TALOS_POSTGRES_URL is set), which survives a crash at any instant.
	DefaultMemoryStore = MemoryStoreSQL
	// MemoryStoreSQL keeps memories in the relational store (rag/sqlstore).
	MemoryStoreSQL = "sql"
	// MemoryStoreChromem keeps memories in the embedded chromem-go
	// directory data/chromadb (rag/chromem), the store of earlier versions;
	// it is not crash-safe (a kill during a write can leave an empty
	// record file).
	MemoryStoreChromem = "chromem"
)

// Defaults of the original specification's 49 environment variables. Where
// Talos departs from the specification the comment says why.
const (
	DefaultTalosVersion         = "4.0.0"
	DefaultTrustLevel           = 0
	DefaultRedisMaxMemory       = 512 << 20 // 512mb
	DefaultRedisMaxMemoryPolicy = "allkeys-lru"
	DefaultChromaMaxVectors     = 100000
	DefaultChromaMaxDimensions  = 1536
	// DefaultVRAMMutexTimeout is VRAM_MUTEX_TIMEOUT, the longest wait for
	// the VRAM mutex. The original specification says 300 s in its
	// variable table and 30 s in its description of the VRAM mutex; we use
	// 30 s, the mutex's own default (vram.Config.AcquireTimeout).
	DefaultVRAMMutexTimeout = 30 * time.Second
	// DefaultVRAMMaxAllocationMB is VRAM_MAX_ALLOCATION in MB.
	DefaultVRAMMaxAllocationMB = 4096
	// DefaultGeminiModelName replaces the original specification's
	// gemini-1.5-flash, which Google closed to new projects; the model name
	// is a free string.
	DefaultGeminiModelName       = "gemini-2.5-flash"
	DefaultGeminiMaxTokens       = 8192
	DefaultGeminiTemperature     = 0.7
	DefaultQwenModelPath         = "/models/qwen"
	DefaultQwenContextLength     = 32768
	DefaultBasicAuthUser         = "admin"
	DefaultWebPort               = 8080
	DefaultWebHTTPSPort          = 8443
	DefaultWebBindAddress        = "127.0.0.1"
	DefaultSessionTimeout        = 30 * time.Minute
	DefaultAPIRateLimitMax       = 100 // requests per DefaultAPIRateLimitWin
	DefaultAPIRateLimitWin       = 60 * time.Second
	DefaultPostgresUser          = "talos"
	DefaultPostgresDB            = "talos_skills"
	DefaultTailscaleHostname     = "talos-node"
	DefaultTailscaleAcceptDNS    = true
	DefaultTailscaleAcceptRoutes = false
	DefaultLogLevel              = "INFO"
	DefaultLogFormat             = "json"
	DefaultLogTier1RetentionDays = 90
	DefaultLogTier2RetentionDays = 30
	DefaultLogTier3RetentionDays = 7
	DefaultMetricsEnabled        = true
	DefaultMetricsPort           = 9090
	DefaultStrikeThreshold       = 3
	DefaultSandboxMemoryLimit    = 512 << 20 // 512m
	DefaultSandboxPidsLimit      = 50
	DefaultSandboxCPUQuota       = 50 // percent
	DefaultSandboxTimeout        = 60 * time.Second
	DefaultSocketProxyEnabled    = true
	// DefaultSocketProxyAllowedOps is SOCKET_PROXY_ALLOWED_OPS.
	DefaultSocketProxyAllowedOps     = "containers:start,containers:stop,containers:create"
	DefaultMemoryContextWindow       = 10
	DefaultMemorySimilarityThreshold = 0.75
	DefaultSkillAutoloadEnabled      = true
	DefaultSkillSignatureVerify      = true
	DefaultRecursiveSelfImprove      = false
	// DefaultTokenDailyLimit is TOKEN_DAILY_LIMIT: 50,000 tokens a day.
	DefaultTokenDailyLimit = 50000
	DefaultGeminiEnabled   = false // local first: Gemini only when the operator turns it on
)

// Config is the resolved configuration of the daemon: the original
// specification's 49 environment variables plus the Talos-specific service
// addresses. Load fills it from flags > environment > talos.env >
// config.yaml > defaults.
//
// The service addresses (RedisURL, PostgresURL, ChromaURL, DockerHost,
// OllamaURL) are empty when not configured; the daemon then uses its embedded
// default for that service (SQLite, memories in the relational store or
// chromem-go as TALOS_MEMORY_STORE says, in-memory cache, no Docker,
// no local model) and says so at boot.
type Config struct {
	// Home is the root of the directory tree (TALOS_HOME, default ~/talos).
	Home string

	// RedisURL (TALOS_REDIS_URL, yaml redis_url), e.g. redis://127.0.0.1:6379/0.
	RedisURL string
	// PostgresURL (TALOS_POSTGRES_URL), a pgx URL such as
	// postgres://talos@127.0.0.1:5432/talos_skills. It may carry a password:
	// log it only through RedactURL. Connect with PostgresDSN, which fills a
	// missing user, password or database from POSTGRES_USER,
	// POSTGRES_PASSWORD and POSTGRES_DB.
	PostgresURL string
	// ChromaURL (TALOS_CHROMA_URL), e.g. http://127.0.0.1:8000.
	ChromaURL string
	// MemoryStore (TALOS_MEMORY_STORE) is where memories live when
	// ChromaURL is empty: MemoryStoreSQL (default) or MemoryStoreChromem.
	MemoryStore string
	// DockerHost (TALOS_DOCKER_HOST), e.g. unix:///var/run/docker.sock.
	DockerHost string
	// OllamaURL (TALOS_OLLAMA_URL), e.g. http://127.0.0.1:11434.
	OllamaURL string
	// SocketProxyURL (SOCKET_PROXY_URL) is where the daemon reaches Docker
	// through the filtering proxy; empty = not configured.
	SocketProxyURL string
	// HealthAddr (TALOS_HEALTH_ADDR) is the host:port of /health and
	// /metrics; loopback only. Default DefaultHealthAddr.
	HealthAddr string

	// GeminiEnabled (TALOS_GEMINI_ENABLED) turns the cloud model on. Off by
	// default: the original specification requires a cloud key yet puts
	// local sovereignty first, and a required cloud key contradicts that, so
	// the daemon runs local-only unless the operator opts in. Only then is
	// GEMINI_API_KEY required.
	GeminiEnabled bool
	// GeminiURL (TALOS_GEMINI_URL) replaces the Gemini API's address (a
	// proxy, a local test server); empty means Google's endpoint.
	GeminiURL string
	// TokenDailyLimit (TOKEN_DAILY_LIMIT, the spec's token_daily_limit) is
	// the day's token count (every model, UTC day) at which escalation to
	// the cloud model is refused until 00:00 UTC; the local model still
	// answers. Default DefaultTokenDailyLimit.
	TokenDailyLimit int

	// OllamaModel (TALOS_OLLAMA_MODEL) is the local model's Ollama name,
	// e.g. qwen2.5-coder:7b. Default DefaultOllamaModel.
	OllamaModel string
	// MCPAllowedCommands (TALOS_MCP_ALLOWED_COMMANDS) lists the absolute
	// paths of executables, or of folders of them, that MCP servers may run
	// as; empty: no stdio server may start.
	MCPAllowedCommands []string
	// DreamSchedule (TALOS_DREAM_SCHEDULE) is the cron expression of the
	// nightly maintenance cycle. Default DefaultDreamSchedule.
	DreamSchedule string
	// DreamTimezone (TALOS_DREAM_TIMEZONE) is the time zone of
	// DreamSchedule; LoadTimezone reads it. Default DefaultDreamTimezone.
	DreamTimezone string
	// BackupKeep (TALOS_BACKUP_KEEP) is how many backups the nightly
	// maintenance cycle keeps in TALOS_HOME/backups: each cycle writes one
	// and deletes the oldest beyond it; 0 (the default) writes none.
	BackupKeep int
	// VRAMModels (TALOS_VRAM_MODELS) lists the models the VRAM mutex may
	// load with the free VRAM each needs, as "name=GB,…"; ParseVRAMModels
	// reads it. Default DefaultVRAMModels.
	VRAMModels string
	// BrowserImage (TALOS_BROWSER_IMAGE) is the image of the
	// browser_automation skill's containers (Debian's chromium and socat,
	// built locally; scripts/services.sh browser-image builds one). Empty,
	// the default, means the skill is not offered.
	BrowserImage string
	// BrowserNetwork (TALOS_BROWSER_NETWORK) is the Docker network the
	// browser containers join: the only network they reach (create it,
	// for example `docker network create --internal`, with the approved
	// hosts on it). Empty, the default, means the skill is not offered.
	BrowserNetwork string
	// PromptLocal (TALOS_PROMPT_LOCAL) selects the local model's system
	// prompt: "" or "default" for the built-in one, otherwise the path of
	// a readable regular file (a relative path is resolved against
	// <Home>/config when loaded). Its token budget is checked at start-up.
	PromptLocal string
	// PromptEscalation (TALOS_PROMPT_ESCALATION) selects the escalation
	// (Gemini) system prompt, with the same rules as PromptLocal.
	PromptEscalation string

	TalosVersion string // TALOS_VERSION, strict x.y.z
	InstanceID   string // TALOS_INSTANCE_ID, UUID v4 naming this installation in the ready marker and the boot log; empty until `talos init` writes one
	TrustLevel   int    // TRUST_LEVEL 0–5

	RedisMaxMemory       int64         // REDIS_MAX_MEMORY in bytes, 128mb–2048mb
	RedisMaxMemoryPolicy string        // REDIS_MAX_MEMORY_POLICY
	ChromaMaxVectors     int           // CHROMADB_MAX_VECTORS 10000–500000
	ChromaMaxDimensions  int           // CHROMADB_MAX_DIMENSIONS 384–4096
	VRAMMutexTimeout     time.Duration // VRAM_MUTEX_TIMEOUT, seconds 30–1800
	VRAMMaxAllocationMB  int           // VRAM_MAX_ALLOCATION MB 512–16384

	GeminiAPIKey      Secret  // GEMINI_API_KEY, required only when GeminiEnabled
	GeminiModelName   string  // GEMINI_MODEL_NAME, free string
	GeminiMaxTokens   int     // GEMINI_MAX_TOKENS 1024–32768
	GeminiTemperature float64 // GEMINI_TEMPERATURE 0.0–2.0
	QwenModelPath     string  // QWEN_MODEL_PATH
	QwenContextLength int     // QWEN_CONTEXT_LENGTH 4096–131072

	BasicAuthUser      string        // BASIC_AUTH_USER 4–32 alphanumeric
	BasicAuthPass      Secret        // BASIC_AUTH_PASS 16–64 chars, mixed classes
	WebPort            int           // WEB_PORT 1024–65535
	WebHTTPSPort       int           // WEB_HTTPS_PORT 1024–65535
	WebBindAddress     string        // WEB_BIND_ADDRESS IPv4/IPv6
	SessionTimeout     time.Duration // SESSION_TIMEOUT minutes 5–240
	APIRateLimitMax    int           // API_RATE_LIMIT_MAX 10–1000 per window
	APIRateLimitWindow time.Duration // API_RATE_LIMIT_WINDOW seconds 1–3600

	PostgresUser     string // POSTGRES_USER
	PostgresPassword Secret // POSTGRES_PASSWORD, required only to build PostgresURL
	PostgresDB       string // POSTGRES_DB

	TailscaleAuthKey      Secret // TAILSCALE_AUTH_KEY, optional
	TailscaleHostname     string // TAILSCALE_HOSTNAME 1–63, DNS label
	TailscaleAcceptDNS    bool   // TAILSCALE_ACCEPT_DNS
	TailscaleAcceptRoutes bool   // TAILSCALE_ACCEPT_ROUTES

	LogLevel              string // LOG_LEVEL DEBUG|INFO|WARN|ERROR|FATAL, upper case
	LogFormat             string // LOG_FORMAT json|text
	LogTier1RetentionDays int    // LOG_TIER1_RETENTION_DAYS 30–365
	LogTier2RetentionDays int    // LOG_TIER2_RETENTION_DAYS 7–90
	LogTier3RetentionDays int    // LOG_TIER3_RETENTION_DAYS 1–30
	MetricsEnabled        bool   // METRICS_ENABLED
	MetricsPort           int    // METRICS_PORT 1024–65535

	StrikeThreshold       int           // STRIKE_THRESHOLD 1–10
	SandboxMemoryLimit    int64         // SANDBOX_MEMORY_LIMIT bytes, 128m–2048m
	SandboxPidsLimit      int           // SANDBOX_PIDS_LIMIT 10–200
	SandboxCPUQuota       int           // SANDBOX_CPU_QUOTA percent 10–100
	SandboxTimeout        time.Duration // SANDBOX_TIMEOUT seconds 10–300
	SocketProxyEnabled    bool          // SOCKET_PROXY_ENABLED
	SocketProxyAllowedOps []string      // SOCKET_PROXY_ALLOWED_OPS resource:verb list

	MemoryContextWindow       int     // MEMORY_CONTEXT_WINDOW 5–50
	MemorySimilarityThreshold float64 // MEMORY_SIMILARITY_THRESHOLD 0.5–0.95
	SkillAutoloadEnabled      bool    // SKILL_AUTOLOAD_ENABLED
	SkillSignatureVerify      bool    // SKILL_SIGNATURE_VERIFY
	RecursiveSelfImprove      bool    // RECURSIVE_SELF_IMPROVE

	// Origin maps each variable name to where its value came from:
	// "default", "config.yaml:LINE", "talos.env:LINE", "env" or "flag".
	Origin map[string]string
}

// ConfigDir returns <Home>/config.
func (c *Config) ConfigDir() string { return filepath.Join(c.Home, ConfigDirName) }

// ConfigFile returns the path of config.yaml.
func (c *Config) ConfigFile() string { return filepath.Join(c.Home, ConfigDirName, ConfigFileName) }

// EnvFile returns the path of talos.env.
func (c *Config) EnvFile() string { return filepath.Join(c.Home, ConfigDirName, EnvFileName) }

// DashboardAddr returns WEB_BIND_ADDRESS:WEB_PORT, where the dashboard listens
// (127.0.0.1:8080 by default).
func (c *Config) DashboardAddr() string {
	return net.JoinHostPort(c.WebBindAddress, strconv.Itoa(c.WebPort))
}

// Secret is a string that never prints itself: String, GoString, slog and
// text/JSON marshalling all give "<redacted>" (or "" when empty). Use Value
// to read it.
type Secret string

// Redacted is what a secret prints as.
const Redacted = "<redacted>"

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// String returns "<redacted>" for a non-empty secret and "" for an empty one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalText redacts the secret in JSON, YAML and other text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PostgresDSN returns PostgresURL with a missing user, password or database
// filled in from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB. It
// returns "" when PostgresURL is empty (embedded SQLite). The result holds
// the password: never log it (use redact.URL).
func (c *Config) PostgresDSN() string {
	if c.PostgresURL == "" {
		return ""
	}
	u, err := url.Parse(c.PostgresURL)
	if err != nil {
		return c.PostgresURL
	}
	user, pass := c.PostgresUser, c.PostgresPassword.Value()
	if u.User != nil {
		if n := u.User.Username(); n != "" {
			user = n
		}
		if p, ok := u.User.Password(); ok {
			pass = p
		}
	}
	if pass != "" {
		u.User = url.UserPassword(user, pass)
	} else {
		u.User = url.User(user)
	}
	if strings.Trim(u.Path, "/") == "" && c.PostgresDB != "" {
		u.Path = "/" + c.PostgresDB
	}
	return u.String()
}

// SlogLevel maps LOG_LEVEL to a slog level. FATAL maps to ERROR: slog has no
// fatal level, and the daemon never exits from inside a log call.
func (c *Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "DEBUG":
		return slog.LevelDebug
	case "WARN":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}
