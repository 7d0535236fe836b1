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

// Names of the files inside <Home>/config (spec §1.1.3, §1.2.1 L290).
const (
	// ConfigDirName is the directory under Home holding config.yaml and talos.env.
	ConfigDirName = "config"
	// ConfigFileName is the YAML configuration file (DESIGN §4 "Host").
	ConfigFileName = "config.yaml"
	// EnvFileName is the dotenv file with secrets, mode 0600 (spec §1.2.1 L290).
	EnvFileName = "talos.env"
	// DefaultHomeDirName is the directory under the user's home used when
	// TALOS_HOME is not set (spec §1.1: "~/talos").
	DefaultHomeDirName = "talos"
)

// Defaults of the Talos-specific settings (not in the spec's 49 variables).
const (
	// DefaultHealthAddr is where /health and /metrics listen: the spec's
	// HEALTH_BIND:HEALTH_PORT defaults 127.0.0.1:8081 (spec §1.3 S10, L1425;
	// digest A §0 "Ports"). It must stay on loopback (DESIGN §3 security).
	DefaultHealthAddr = "127.0.0.1:8081"
	// MCPServersKey is the config.yaml key of the MCP tool servers: a
	// mapping of server name to command, args, description, enabled,
	// timeout_seconds, auto_start, env and max_retries, which the MCP host
	// reads (the flat keys of this package skip it).
	MCPServersKey = "mcp_servers"
	// DefaultDreamSchedule is TALOS_DREAM_SCHEDULE: the nightly maintenance
	// cycle at 04:00 (spec §3.1 "The 4:00 AM Dream Logic").
	DefaultDreamSchedule = "0 4 * * *"
	// DefaultDreamTimezone is TALOS_DREAM_TIMEZONE: the schedule follows
	// the machine's own wall clock.
	DefaultDreamTimezone = "Local"
	// DefaultBackupKeep is TALOS_BACKUP_KEEP: the nightly cycle writes no
	// backup unless the operator asks for it (a backup holds the keys).
	DefaultBackupKeep = 0
	// DefaultOllamaModel is TALOS_OLLAMA_MODEL, the local model `talos ask`
	// and the router use first: the spec's local coder, Qwen2.5-Coder 7B
	// (spec §1.2.2 L328 QWEN_MODEL_PATH names it as a file; Ollama names it
	// by tag).
	DefaultOllamaModel = "qwen2.5-coder:7b"
	// DefaultVRAMModels is TALOS_VRAM_MODELS: the models the VRAM mutex may
	// load and the free VRAM each needs, the spec's coder (7 GB) and vision
	// (9 GB) models under their Ollama names (spec §2.1 L1941–1944).
	DefaultVRAMModels = "qwen2.5-coder:7b=7,qwen2.5vl:7b=9"
	// DefaultPrompt is the value of TALOS_PROMPT_LOCAL and
	// TALOS_PROMPT_ESCALATION that selects the built-in system prompt
	// (spec §2.3 "System Prompt Configuration"; llm.PromptDefault).
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

// Defaults of spec §1.2.2 (the table at L303–393). Each constant cites its row.
// Where DESIGN §4 or digest A overrules the spec the comment says why.
const (
	DefaultTalosVersion         = "4.0.0"          // L305
	DefaultTrustLevel           = 0                // L307
	DefaultRedisMaxMemory       = 512 << 20        // L313: 512mb
	DefaultRedisMaxMemoryPolicy = "allkeys-lru"    // L314
	DefaultChromaMaxVectors     = 100000           // L315
	DefaultChromaMaxDimensions  = 1536             // L316
	DefaultVRAMMutexTimeout     = 30 * time.Second // L317 says 300 s; DESIGN §4 vram and §2.1 (L1941) say 30 s, and DESIGN wins
	// DefaultVRAMMaxAllocationMB is VRAM_MAX_ALLOCATION in MB (L318).
	DefaultVRAMMaxAllocationMB = 4096
	// DefaultGeminiModelName replaces the spec's gemini-1.5-flash (L325),
	// which Google closed to new projects (digest A §2 [!]); the model name
	// is a free string.
	DefaultGeminiModelName       = "gemini-2.5-flash"
	DefaultGeminiMaxTokens       = 8192             // L326
	DefaultGeminiTemperature     = 0.7              // L327
	DefaultQwenModelPath         = "/models/qwen"   // L328
	DefaultQwenContextLength     = 32768            // L329
	DefaultBasicAuthUser         = "admin"          // L335
	DefaultWebPort               = 8080             // L337
	DefaultWebHTTPSPort          = 8443             // L338
	DefaultWebBindAddress        = "127.0.0.1"      // L339
	DefaultSessionTimeout        = 30 * time.Minute // L340
	DefaultAPIRateLimitMax       = 100              // L341 (read as MAX per WINDOW, digest A §2)
	DefaultAPIRateLimitWin       = 60 * time.Second // L342
	DefaultPostgresUser          = "talos"          // L348
	DefaultPostgresDB            = "talos_skills"   // L350
	DefaultTailscaleHostname     = "talos-node"     // L357
	DefaultTailscaleAcceptDNS    = true             // L358
	DefaultTailscaleAcceptRoutes = false            // L359
	DefaultLogLevel              = "INFO"           // L365
	DefaultLogFormat             = "json"           // L366
	DefaultLogTier1RetentionDays = 90               // L367
	DefaultLogTier2RetentionDays = 30               // L368
	DefaultLogTier3RetentionDays = 7                // L369
	DefaultMetricsEnabled        = true             // L370
	DefaultMetricsPort           = 9090             // L371
	DefaultStrikeThreshold       = 3                // L377
	DefaultSandboxMemoryLimit    = 512 << 20        // L378: 512m
	DefaultSandboxPidsLimit      = 50               // L379
	DefaultSandboxCPUQuota       = 50               // L380: percent
	DefaultSandboxTimeout        = 60 * time.Second // L381
	DefaultSocketProxyEnabled    = true             // L382
	// DefaultSocketProxyAllowedOps is SOCKET_PROXY_ALLOWED_OPS (L383).
	DefaultSocketProxyAllowedOps     = "containers:start,containers:stop,containers:create"
	DefaultMemoryContextWindow       = 10    // L389
	DefaultMemorySimilarityThreshold = 0.75  // L390
	DefaultSkillAutoloadEnabled      = true  // L391
	DefaultSkillSignatureVerify      = true  // L392
	DefaultRecursiveSelfImprove      = false // L393
	// DefaultTokenDailyLimit is TOKEN_DAILY_LIMIT: 50,000 tokens a day.
	DefaultTokenDailyLimit = 50000
	DefaultGeminiEnabled   = false // local first: Gemini only when the operator turns it on
)

// Config is the resolved configuration of the daemon: every variable of spec
// §1.2.2 plus the Talos-specific service addresses. Load fills it from
// flags > environment > talos.env > config.yaml > defaults.
//
// The service addresses (RedisURL, PostgresURL, ChromaURL, DockerHost,
// OllamaURL) are empty when not configured; the daemon then uses its embedded
// default for that service (SQLite, memories in the relational store or
// chromem-go as TALOS_MEMORY_STORE says, in-memory cache, no Docker,
// no local model) and says so at boot (DESIGN §4 "Host").
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
	// SocketProxyURL (SOCKET_PROXY_URL, spec L1341) is where the daemon
	// reaches Docker through the filtering proxy; empty = not configured.
	SocketProxyURL string
	// HealthAddr (TALOS_HEALTH_ADDR) is the host:port of /health and
	// /metrics; loopback only. Default DefaultHealthAddr.
	HealthAddr string

	// GeminiEnabled (TALOS_GEMINI_ENABLED) turns the cloud model on. Off by
	// default: spec P1 (local sovereignty) and P5 conflict with a required
	// cloud key (digest A §0 [!]), so the daemon runs local-only unless the
	// operator opts in. Only then is GEMINI_API_KEY required.
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

	TalosVersion string // TALOS_VERSION, strict x.y.z (L305)
	InstanceID   string // TALOS_INSTANCE_ID, UUID v4; empty until `talos init` writes one (L306)
	TrustLevel   int    // TRUST_LEVEL 0–5 (L307)

	RedisMaxMemory       int64         // REDIS_MAX_MEMORY in bytes, 128mb–2048mb (L313)
	RedisMaxMemoryPolicy string        // REDIS_MAX_MEMORY_POLICY (L314)
	ChromaMaxVectors     int           // CHROMADB_MAX_VECTORS 10000–500000 (L315)
	ChromaMaxDimensions  int           // CHROMADB_MAX_DIMENSIONS 384–4096 (L316)
	VRAMMutexTimeout     time.Duration // VRAM_MUTEX_TIMEOUT, seconds 30–1800 (L317)
	VRAMMaxAllocationMB  int           // VRAM_MAX_ALLOCATION MB 512–16384 (L318)

	GeminiAPIKey      Secret  // GEMINI_API_KEY (L324), required only when GeminiEnabled
	GeminiModelName   string  // GEMINI_MODEL_NAME, free string (L325, digest A §2 [!])
	GeminiMaxTokens   int     // GEMINI_MAX_TOKENS 1024–32768 (L326)
	GeminiTemperature float64 // GEMINI_TEMPERATURE 0.0–2.0 (L327)
	QwenModelPath     string  // QWEN_MODEL_PATH (L328)
	QwenContextLength int     // QWEN_CONTEXT_LENGTH 4096–131072 (L329)

	BasicAuthUser      string        // BASIC_AUTH_USER 4–32 alphanumeric (L335)
	BasicAuthPass      Secret        // BASIC_AUTH_PASS 16–64 chars, mixed classes (L336)
	WebPort            int           // WEB_PORT 1024–65535 (L337)
	WebHTTPSPort       int           // WEB_HTTPS_PORT 1024–65535 (L338)
	WebBindAddress     string        // WEB_BIND_ADDRESS IPv4/IPv6 (L339)
	SessionTimeout     time.Duration // SESSION_TIMEOUT minutes 5–240 (L340)
	APIRateLimitMax    int           // API_RATE_LIMIT_MAX 10–1000 per window (L341)
	APIRateLimitWindow time.Duration // API_RATE_LIMIT_WINDOW seconds 1–3600 (L342)

	PostgresUser     string // POSTGRES_USER (L348)
	PostgresPassword Secret // POSTGRES_PASSWORD (L349), required only to build PostgresURL
	PostgresDB       string // POSTGRES_DB (L350)

	TailscaleAuthKey      Secret // TAILSCALE_AUTH_KEY, optional (L356)
	TailscaleHostname     string // TAILSCALE_HOSTNAME 1–63, DNS label (L357)
	TailscaleAcceptDNS    bool   // TAILSCALE_ACCEPT_DNS (L358)
	TailscaleAcceptRoutes bool   // TAILSCALE_ACCEPT_ROUTES (L359)

	LogLevel              string // LOG_LEVEL DEBUG|INFO|WARN|ERROR|FATAL (L365), upper case
	LogFormat             string // LOG_FORMAT json|text (L366)
	LogTier1RetentionDays int    // LOG_TIER1_RETENTION_DAYS 30–365 (L367)
	LogTier2RetentionDays int    // LOG_TIER2_RETENTION_DAYS 7–90 (L368)
	LogTier3RetentionDays int    // LOG_TIER3_RETENTION_DAYS 1–30 (L369)
	MetricsEnabled        bool   // METRICS_ENABLED (L370)
	MetricsPort           int    // METRICS_PORT 1024–65535 (L371)

	StrikeThreshold       int           // STRIKE_THRESHOLD 1–10 (L377)
	SandboxMemoryLimit    int64         // SANDBOX_MEMORY_LIMIT bytes, 128m–2048m (L378)
	SandboxPidsLimit      int           // SANDBOX_PIDS_LIMIT 10–200 (L379)
	SandboxCPUQuota       int           // SANDBOX_CPU_QUOTA percent 10–100 (L380)
	SandboxTimeout        time.Duration // SANDBOX_TIMEOUT seconds 10–300 (L381)
	SocketProxyEnabled    bool          // SOCKET_PROXY_ENABLED (L382)
	SocketProxyAllowedOps []string      // SOCKET_PROXY_ALLOWED_OPS resource:verb list (L383)

	MemoryContextWindow       int     // MEMORY_CONTEXT_WINDOW 5–50 (L389)
	MemorySimilarityThreshold float64 // MEMORY_SIMILARITY_THRESHOLD 0.5–0.95 (L390)
	SkillAutoloadEnabled      bool    // SKILL_AUTOLOAD_ENABLED (L391)
	SkillSignatureVerify      bool    // SKILL_SIGNATURE_VERIFY (L392)
	RecursiveSelfImprove      bool    // RECURSIVE_SELF_IMPROVE (L393)

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
// (DESIGN §4: 127.0.0.1:8080 by default).
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
// filled in from POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (spec
// L348–350). It returns "" when PostgresURL is empty (embedded SQLite). The
// result holds the password: never log it (use redact.URL).
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
