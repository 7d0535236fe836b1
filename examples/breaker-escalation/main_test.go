package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
)

// TestRun runs the walkthrough inside a synctest bubble, so the breaker's
// open period passes on the fake clock (instantly and deterministically),
// and checks every decision it prints.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		if err := run(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != want {
			t.Errorf("output differs.\n got:\n%s\nwant:\n%s", got, want)
		}
	})
}

const want = `# The cloud model is down: each escalation fails and counts toward the breaker.
turn 1: answered by qwen2.5-coder:7b (escalated=false fallback=true reason=marker)
  escalation: T200 GEMINI_CONNECTION_ERROR: the cloud model failed
  breaker closed: 1/3 failures in the window; cloud calls so far: 1
  answer: Short answer: quicksort is usually fastest, merge sort is stable.
turn 2: answered by qwen2.5-coder:7b (escalated=false fallback=true reason=marker)
  escalation: T200 GEMINI_CONNECTION_ERROR: the cloud model failed
  breaker closed: 2/3 failures in the window; cloud calls so far: 2
  answer: Short answer: quicksort is usually fastest, merge sort is stable.
turn 3: answered by qwen2.5-coder:7b (escalated=false fallback=true reason=marker)
  escalation: T200 GEMINI_CONNECTION_ERROR: the cloud model failed
  breaker open: calls rejected for another 1s; cloud calls so far: 3
  answer: Short answer: quicksort is usually fastest, merge sort is stable.
# The breaker is open: the Router answers locally at once, the cloud is not called.
turn 4: answered by qwen2.5-coder:7b (escalated=false fallback=true reason=marker)
  escalation: T205 CIRCUIT_OPEN: the breaker rejected the call without trying
  breaker open: calls rejected for another 1s; cloud calls so far: 3
  answer: Short answer: quicksort is usually fastest, merge sort is stable.
# Waiting 1s for the open period to end...
breaker half-open: the next escalation is a probe
# The cloud model has recovered: the probe succeeds and closes the breaker.
turn 5: answered by gemini-2.5-flash (escalated=true fallback=false reason=marker)
  breaker closed: 0/3 failures in the window; cloud calls so far: 4
  answer: In depth: quicksort averages O(n log n), merge sort guarantees it and is stable, heapsort sorts in place.
breaker stats: 3 failures, 1 rejected, 1 trips, 1 successes
`
