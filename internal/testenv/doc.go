// Package testenv gives integration tests the addresses of the real services
// started by scripts/services.sh (Redis, PostgreSQL, a Docker engine and a
// Chroma server) and of the tools it installs (the reference MCP servers).
//
// A test asks for a service by calling, for example, RedisURL(t). When the
// service is not configured the test is skipped, unless
// TALOS_TEST_REQUIRE_SERVICES=1 is set (as CI and `make test` do), in which
// case the absence fails the test: nothing is skipped silently in CI.
package testenv
