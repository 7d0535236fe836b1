package sqldbtest

import (
	"os"
	"testing"
)

// Environment variables the PostgreSQL databases come from, as
// `scripts/services.sh env` sets them.
const (
	// EnvPostgresURL is the PostgreSQL server tests use.
	EnvPostgresURL = "TALOS_TEST_POSTGRES_URL"
	// EnvRequireServices, when "1", makes a missing server fail the test
	// instead of skipping it.
	EnvRequireServices = "TALOS_TEST_REQUIRE_SERVICES"
)

// postgresURL returns EnvPostgresURL, or skips tb (fails it under
// EnvRequireServices=1) when it is unset.
func postgresURL(tb testing.TB) string {
	tb.Helper()
	if v := os.Getenv(EnvPostgresURL); v != "" {
		return v
	}
	msg := EnvPostgresURL + " is not set: start the services with `scripts/services.sh up` and `eval \"$(scripts/services.sh env)\"`, or run `make test`"
	if os.Getenv(EnvRequireServices) == "1" {
		tb.Fatal(msg + " (" + EnvRequireServices + "=1 forbids skipping)")
	}
	tb.Skip(msg)
	return ""
}
