// Package sqldbtest gives tests a fresh, private database of either dialect
// that package sqldb supports, so one conformance suite can run a store
// adapter against both: a SQLite file in the test's temporary folder, or a
// schema of its own on a PostgreSQL server, dropped when the test ends.
//
// PostgreSQL comes from the TALOS_TEST_POSTGRES_URL environment variable
// (`scripts/services.sh env` sets it). When it is unset, PostgreSQL tests are
// skipped — or fail, when TALOS_TEST_REQUIRE_SERVICES=1, as in CI.
package sqldbtest
