package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain lets a test run the test binary itself as the real `talos`
// process: with TALOS_HELPER_ARGS set (arguments separated by \x1f) the
// binary executes that command line and exits with its exit code instead of
// running tests. TestRunSIGTERM uses it to signal a real daemon process.
func TestMain(m *testing.M) {
	if args := os.Getenv("TALOS_HELPER_ARGS"); args != "" {
		root := newRootCmd()
		root.SetArgs(strings.Split(args, "\x1f"))
		if err := root.Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "talos:", err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
