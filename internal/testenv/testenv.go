package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Environment variables exported by `scripts/services.sh env`.
const (
	EnvRedisURL      = "TALOS_TEST_REDIS_URL"
	EnvPostgresURL   = "TALOS_TEST_POSTGRES_URL"
	EnvDockerHost    = "TALOS_TEST_DOCKER_HOST"
	EnvChromaURL     = "TALOS_TEST_CHROMA_URL"
	EnvBusyboxImage  = "TALOS_TEST_BUSYBOX_IMAGE"
	EnvPythonImage   = "TALOS_TEST_PYTHON_IMAGE"
	EnvBrowserImage  = "TALOS_TEST_BROWSER_IMAGE"
	EnvOllamaURL     = "TALOS_TEST_OLLAMA_URL"
	EnvOllamaModel   = "TALOS_TEST_OLLAMA_MODEL"
	EnvMCPEverything = "TALOS_TEST_MCP_EVERYTHING"
	EnvMCPFilesystem = "TALOS_TEST_MCP_FILESYSTEM"
	EnvChromium      = "TALOS_TEST_CHROMIUM"
	EnvRequireAll    = "TALOS_TEST_REQUIRE_SERVICES"
	defaultBusyboxIm = "talos-test/busybox:1"
)

// Required reports whether missing services must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv(EnvRequireAll) == "1" }

// Lookup returns the value of the service variable name, and whether it is set.
func Lookup(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
}

// Need returns the value of the service variable name, or skips (or, when
// Required, fails) the test if it is unset.
func Need(tb testing.TB, name string) string {
	tb.Helper()
	v, ok := Lookup(name)
	if ok {
		return v
	}
	skipOrFail(tb, name+" is not set: start the services with `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`, or run `make test`")
	return ""
}

// skipOrFail skips the test with msg, or fails it when Required.
func skipOrFail(tb testing.TB, msg string) {
	tb.Helper()
	if Required() {
		tb.Fatal(msg + " (" + EnvRequireAll + "=1 forbids skipping)")
	}
	tb.Skip(msg)
}

// PIDNamespace returns the path of unshare(1) after checking that it can
// run a command as PID 1 of a new PID namespace here (it needs root or
// user namespaces). When it cannot, the test is skipped, or fails when
// Required: the CI machine runs as root with util-linux, so it always can.
func PIDNamespace(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("unshare")
	if err != nil {
		skipOrFail(tb, "unshare(1) is not installed (Debian package util-linux)")
		return ""
	}
	if out, err := exec.Command(path, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		skipOrFail(tb, fmt.Sprintf("unshare --pid is not permitted here (needs root or user namespaces): %v: %s", err, out))
		return ""
	}
	return path
}

// RedisURL returns the harness's Redis URL (redis://127.0.0.1:56379/0).
func RedisURL(tb testing.TB) string { tb.Helper(); return Need(tb, EnvRedisURL) }

// PostgresURL returns the harness's PostgreSQL URL.
func PostgresURL(tb testing.TB) string { tb.Helper(); return Need(tb, EnvPostgresURL) }

// DockerHost returns the harness's Docker engine address (unix://…/docker.sock).
func DockerHost(tb testing.TB) string { tb.Helper(); return Need(tb, EnvDockerHost) }

// ChromaURL returns the harness's Chroma server URL (http://127.0.0.1:58000).
func ChromaURL(tb testing.TB) string { tb.Helper(); return Need(tb, EnvChromaURL) }

// BusyboxImage returns the local test image built by the harness. It needs a
// Docker engine, so it is checked together with DockerHost.
func BusyboxImage(tb testing.TB) string {
	tb.Helper()
	DockerHost(tb)
	if v, ok := Lookup(EnvBusyboxImage); ok {
		return v
	}
	return defaultBusyboxIm
}

// PythonImage returns the harness's Python image for the skill sandbox
// (talos-test/python:1: Debian bookworm minbase with python3-minimal, built
// by `scripts/services.sh up` or `scripts/services.sh python-image` without
// any registry). It needs a Docker engine, so it is checked together with
// DockerHost; it skips (or fails) when TALOS_TEST_PYTHON_IMAGE is unset.
func PythonImage(tb testing.TB) string {
	tb.Helper()
	DockerHost(tb)
	return Need(tb, EnvPythonImage)
}

// BrowserImage returns the harness's browser image for browser_automation
// (talos-test/browser:1: Debian bookworm minbase with Debian's chromium and
// socat, built by `scripts/services.sh browser-image` without any
// registry). It needs a Docker engine, so it is checked together with
// DockerHost; it skips (or fails) when TALOS_TEST_BROWSER_IMAGE is unset.
func BrowserImage(tb testing.TB) string {
	tb.Helper()
	DockerHost(tb)
	return Need(tb, EnvBrowserImage)
}

// MCPEverything returns the path of the reference MCP server
// @modelcontextprotocol/server-everything installed by the harness (run it
// directly over stdio; it needs node on PATH).
func MCPEverything(tb testing.TB) string { tb.Helper(); return Need(tb, EnvMCPEverything) }

// MCPFilesystem returns the path of the reference MCP server
// @modelcontextprotocol/server-filesystem installed by the harness (its
// arguments are the allowed root directories; it needs node on PATH).
func MCPFilesystem(tb testing.TB) string { tb.Helper(); return Need(tb, EnvMCPFilesystem) }

// Chromium returns the path of the headless-capable Chromium installed by
// the harness (Debian's chromium package); each browser test starts its own
// with a fresh profile.
func Chromium(tb testing.TB) string { tb.Helper(); return Need(tb, EnvChromium) }

// OllamaURL returns the harness's Ollama server (http://127.0.0.1:51434,
// built from the Go module proxy by scripts/services.sh).
func OllamaURL(tb testing.TB) string { tb.Helper(); return Need(tb, EnvOllamaURL) }

// OllamaModel returns the model the harness's Ollama serves: a tiny
// random-weight llama ("tiny") whose answers are gibberish but whose every
// API call works. Always cap its answers (num_predict).
func OllamaModel(tb testing.TB) string {
	tb.Helper()
	OllamaURL(tb)
	return Need(tb, EnvOllamaModel)
}
