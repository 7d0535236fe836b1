package svccheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/client"
	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
)

// DefaultProbeTimeout bounds one probe when the caller's context has no
// earlier deadline. The original boot sequence gives each connection
// attempt about 1 s (`redis-cli ping`, `curl`, `pg_isready` with their
// defaults); 2 s leaves room on a loaded two-core machine.
const DefaultProbeTimeout = 2 * time.Second

// RedisPolicies are the maxmemory policies allowed for
// REDIS_MAX_MEMORY_POLICY.
var redisPolicies = []string{"allkeys-lru", "volatile-lru", "allkeys-random"}

func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < DefaultProbeTimeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultProbeTimeout)
}

// Redis probes a Redis server. It keeps one small connection pool, so a
// health check that runs every few seconds does not reconnect each time,
// and it reconnects by itself after the server comes back.
type Redis struct {
	c    *redis.Client
	addr string
}

// NewRedis parses url (redis://[user:pass@]host:port/db or rediss://…) and
// returns a prober. It does not connect.
func NewRedis(rawURL string) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "svccheck.NewRedis",
			fmt.Sprintf("TALOS_REDIS_URL %q is not valid; expected redis://[user:password@]host:port/db", redact.URL(rawURL)), err)
	}
	opt.MaxRetries = -1   // the boot runner retries, per the spec's policy
	opt.DialerRetries = 1 // one dial per probe (go-redis defaults to 5)
	opt.DialTimeout = DefaultProbeTimeout
	opt.ReadTimeout = DefaultProbeTimeout
	opt.WriteTimeout = DefaultProbeTimeout
	opt.ContextTimeoutEnabled = true
	opt.PoolSize = 2
	opt.DisableIdentity = true
	return &Redis{c: redis.NewClient(opt), addr: opt.Addr}, nil
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return r.addr }

// Close closes the connection pool.
func (r *Redis) Close() error { return r.c.Close() }

// Ping sends PING and expects PONG. A failure is a T001 error.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	res, err := r.c.Ping(ctx).Result()
	if err != nil {
		return talos.E(talos.CodeRedis, "svccheck.Redis.Ping",
			fmt.Sprintf("Redis at %s did not answer PING; check it is running and TALOS_REDIS_URL is right", r.addr), err)
	}
	if res != "PONG" {
		return talos.Errorf(talos.CodeRedis, "svccheck.Redis.Ping", "Redis at %s answered PING with %q, not PONG", r.addr, res)
	}
	return nil
}

// RedisMemory is the server's memory limit and eviction policy.
type RedisMemory struct {
	MaxMemory int64  // bytes; 0 means no limit
	Policy    string // maxmemory-policy, for example "allkeys-lru"
}

// Memory reads maxmemory and maxmemory-policy with CONFIG GET. A server that
// renamed or disabled CONFIG (the original specification's hardened Redis
// renames it) gives an error the caller should treat as a warning.
func (r *Redis) Memory(ctx context.Context) (RedisMemory, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var m RedisMemory
	vals, err := r.c.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		return m, talos.E(talos.CodeRedis, "svccheck.Redis.Memory",
			fmt.Sprintf("could not read maxmemory settings of Redis at %s (CONFIG may be renamed or disabled)", r.addr), err)
	}
	m.Policy = vals["maxmemory-policy"]
	if s := vals["maxmemory"]; s != "" {
		m.MaxMemory, _ = strconv.ParseInt(s, 10, 64)
	}
	if m.Policy == "" {
		return m, talos.Errorf(talos.CodeRedis, "svccheck.Redis.Memory", "Redis at %s did not report maxmemory-policy", r.addr)
	}
	return m, nil
}

// CheckPolicy compares the server's eviction policy with want (one of the
// policies allowed for REDIS_MAX_MEMORY_POLICY; empty means "allkeys-lru",
// the default). It returns a description of the server's settings and an
// error when they differ. The check never changes the server: CONFIG SET on
// a shared Redis would change it for every other user (ApplyMemory does
// what the original boot sequence does).
func (r *Redis) CheckPolicy(ctx context.Context, want string) (string, error) {
	if want == "" {
		want = redisPolicies[0]
	}
	m, err := r.Memory(ctx)
	if err != nil {
		return "", err
	}
	desc := fmt.Sprintf("maxmemory-policy %s, maxmemory %s", m.Policy, humanBytes(m.MaxMemory))
	if m.Policy != want {
		return desc, talos.Errorf(talos.CodeRedis, "svccheck.Redis.CheckPolicy",
			"Redis at %s uses maxmemory-policy %q but %q is configured; set it in redis.conf or with CONFIG SET maxmemory-policy %s",
			r.addr, m.Policy, want, want)
	}
	return desc, nil
}

// ApplyMemory sets maxmemory and maxmemory-policy (as the original boot
// sequence does) and reads them back. maxmemory is in Redis's syntax
// ("512mb"); either argument may be empty to leave that setting alone.
func (r *Redis) ApplyMemory(ctx context.Context, maxmemory, policy string) (RedisMemory, error) {
	ctx2, cancel := withTimeout(ctx)
	defer cancel()
	if policy != "" && !validPolicy(policy) {
		return RedisMemory{}, talos.Errorf(talos.CodeEnvInvalid, "svccheck.Redis.ApplyMemory",
			"REDIS_MAX_MEMORY_POLICY %q is not allowed; use one of %s", policy, strings.Join(redisPolicies, ", "))
	}
	for _, kv := range [][2]string{{"maxmemory", maxmemory}, {"maxmemory-policy", policy}} {
		if kv[1] == "" {
			continue
		}
		if err := r.c.ConfigSet(ctx2, kv[0], kv[1]).Err(); err != nil {
			return RedisMemory{}, talos.E(talos.CodeRedis, "svccheck.Redis.ApplyMemory",
				fmt.Sprintf("CONFIG SET %s %s failed on Redis at %s", kv[0], kv[1], r.addr), err)
		}
	}
	return r.Memory(ctx)
}

func validPolicy(p string) bool {
	for _, q := range redisPolicies {
		if p == q {
			return true
		}
	}
	return false
}

// Probe writes, reads back and deletes a short-lived key (like the original
// boot sequence's SET __talos_boot_test ok EX 10, GET, DEL). The key name
// carries a random suffix so concurrent probes on one server do not collide.
func (r *Redis) Probe(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	key := "__talos_boot_test:" + randHex(8)
	op := "svccheck.Redis.Probe"
	if err := r.c.Set(ctx, key, "ok", 10*time.Second).Err(); err != nil {
		return talos.E(talos.CodeRedis, op, fmt.Sprintf("Redis at %s refused a write (SET %s)", r.addr, key), err)
	}
	defer r.c.Del(context.WithoutCancel(ctx), key)
	got, err := r.c.Get(ctx, key).Result()
	if err != nil {
		return talos.E(talos.CodeRedis, op, fmt.Sprintf("Redis at %s could not read back %s", r.addr, key), err)
	}
	if got != "ok" {
		return talos.Errorf(talos.CodeRedis, op, "Redis at %s returned %q for %s, want \"ok\"", r.addr, got, key)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func humanBytes(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	const mb = 1 << 20
	if n%mb == 0 {
		return strconv.FormatInt(n/mb, 10) + "mb"
	}
	return strconv.FormatInt(n, 10) + "b"
}

// PingPostgres connects to the database at rawURL, runs `select 1` and
// closes the connection (the original boot sequence uses pg_isready; a real
// query proves more). It returns the server version. A failure is a T003
// error.
func PingPostgres(ctx context.Context, rawURL string) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	op := "svccheck.PingPostgres"
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "", talos.E(talos.CodeConfigInvalid, op,
			fmt.Sprintf("TALOS_POSTGRES_URL %q is not valid; expected postgres://user[:password]@host:port/db", redact.URL(rawURL)), err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", talos.E(talos.CodePostgres, op,
			fmt.Sprintf("could not connect to PostgreSQL at %s; check it is running and the user, password and database in TALOS_POSTGRES_URL", where), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		if err == nil {
			err = fmt.Errorf("select 1 returned %d", one)
		}
		return "", talos.E(talos.CodePostgres, op, fmt.Sprintf("PostgreSQL at %s accepted the connection but failed `select 1`", where), err)
	}
	return conn.PgConn().ParameterStatus("server_version"), nil
}

// ChromaHeartbeatPath is the Chroma v2 heartbeat. The spec's /api/v1 paths
// answer 410 Gone on Chroma ≥ 1.0.
const ChromaHeartbeatPath = "/api/v2/heartbeat"

// ChromaHeartbeat GETs baseURL + ChromaHeartbeatPath and checks the answer
// is 200 with a JSON `nanosecond heartbeat`. hc may be nil
// (http.DefaultClient). A failure is a T002 error.
func ChromaHeartbeat(ctx context.Context, hc *http.Client, baseURL string) error {
	op := "svccheck.ChromaHeartbeat"
	var body struct {
		Beat *int64 `json:"nanosecond heartbeat"`
	}
	if err := getJSON(ctx, hc, baseURL, ChromaHeartbeatPath, &body); err != nil {
		return talos.E(talos.CodeChroma, op,
			fmt.Sprintf("Chroma at %s did not answer its heartbeat; check it is running and TALOS_CHROMA_URL is right", redact.URL(baseURL)), err)
	}
	if body.Beat == nil {
		return talos.Errorf(talos.CodeChroma, op, "Chroma at %s answered %s without a `nanosecond heartbeat`; is it a Chroma ≥ 1.0 server?", redact.URL(baseURL), ChromaHeartbeatPath)
	}
	return nil
}

// OllamaVersion GETs baseURL + /api/version and returns the server's
// version. The original boot sequence never probes the local model runtime;
// we do, as a degrading check.
func OllamaVersion(ctx context.Context, hc *http.Client, baseURL string) (string, error) {
	var body struct {
		Version string `json:"version"`
	}
	if err := getJSON(ctx, hc, baseURL, "/api/version", &body); err != nil {
		return "", talos.E(talos.CodeLocalModelLoad, "svccheck.OllamaVersion",
			fmt.Sprintf("Ollama at %s did not answer /api/version; check it is running and TALOS_OLLAMA_URL is right (local models are unavailable until it answers)", redact.URL(baseURL)), err)
	}
	return body.Version, nil
}

func getJSON(ctx context.Context, hc *http.Client, baseURL, path string, v any) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("base URL %q must be http://host:port or https://host:port", redact.URL(baseURL))
	}
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, strings.TrimSpace(string(truncate(data, 200))))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("GET %s: answer is not the expected JSON: %w", path, err)
	}
	return nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Docker probes a Docker engine (or a socket proxy in front of one) with
// the moby client, negotiating the API version: the engine here speaks API
// 1.41 and the client's default is newer.
type Docker struct {
	c       *client.Client
	host    string
	varName string // the variable that set host, for messages
}

// NewDocker returns a prober for host (unix:///path/docker.sock or
// tcp://host:port) as set by TALOS_DOCKER_HOST. It does not connect.
func NewDocker(host string) (*Docker, error) { return NewDockerFor(host, "TALOS_DOCKER_HOST") }

// NewDockerFor is NewDocker for an engine API whose address comes from the
// variable varName (SOCKET_PROXY_URL for the socket proxy), which error
// messages name.
func NewDockerFor(host, varName string) (*Docker, error) {
	scheme, _, _ := strings.Cut(host, "://")
	var err error
	var c *client.Client
	switch scheme {
	case "unix", "tcp", "http", "https":
		c, err = client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	default:
		err = fmt.Errorf("scheme %q is not one of unix, tcp, http, https", scheme)
	}
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "svccheck.NewDocker",
			fmt.Sprintf("%s %q is not valid; expected unix:///path/to/docker.sock or tcp://host:port", varName, redact.URL(host)), err)
	}
	return &Docker{c: c, host: host, varName: varName}, nil
}

// Close releases the client's connections.
func (d *Docker) Close() error { return d.c.Close() }

// Ping calls the engine's /_ping, negotiating the API version on the first
// success, and returns the API version in use. A failure is a T009 error.
func (d *Docker) Ping(ctx context.Context) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	res, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		return "", talos.E(talos.CodeDocker, "svccheck.Docker.Ping",
			fmt.Sprintf("Docker engine at %s did not answer /_ping; check it is running and %s is right", redact.URL(d.host), d.varName), err)
	}
	if res.APIVersion == "" {
		return d.c.ClientVersion(), nil
	}
	return res.APIVersion, nil
}

// RedisLogger adapts go-redis's process-wide logger to slog at debug level:
// a Redis that is down is reported by the health check (and its T001 error),
// so the pool's own "failed to dial" lines are only noise on stderr. The
// daemon installs it once with redis.SetLogger.
type RedisLogger struct{ Log *slog.Logger }

// Printf implements go-redis's internal.Logging.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.Log != nil {
		l.Log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
	}
}
