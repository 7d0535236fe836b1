// Package dashboardtest drives the dashboard in a real headless Chromium
// for tests: Browser starts Debian's chromium (testenv.Chromium, failing
// instead of skipping when TALOS_TEST_REQUIRE_SERVICES=1) with a fresh
// profile that answers the basic-auth login prompt, Run runs a chromedp
// action with a deadline, Screenshot keeps the page as a test artifact,
// and CheckNoInjection fails a test whose page rendered data as HTML.
package dashboardtest
