package llm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
)

// Classification of rate limits and other failures, with typed errors
// instead of the original specification's message regexes.
func TestClassify(t *testing.T) {
	rl := func(d time.Duration, ok bool) error {
		return talos.E(talos.CodeGeminiRateLimit, "test", "429", &llm.APIError{Provider: "gemini", StatusCode: 429, RetryAfter: d, HasRetryAfter: ok})
	}
	for name, tc := range map[string]struct {
		err  error
		want breaker.Verdict
	}{
		"nil":      {nil, breaker.Verdict{Kind: breaker.Success}},
		"safety":   {talos.E(talos.CodeSafetyBlock, "test", "blocked", &llm.SafetyBlock{Reason: "SAFETY"}), breaker.Verdict{Kind: breaker.Success}},
		"cancel":   {fmt.Errorf("x: %w", context.Canceled), breaker.Verdict{Kind: breaker.Ignore}},
		"429 301s": {rl(301*time.Second, true), breaker.Verdict{Kind: breaker.Trip, Delay: 301 * time.Second}},
		"429 120s": {rl(120*time.Second, true), breaker.Verdict{Kind: breaker.Ignore, Delay: 121 * time.Second}},
		"429 none": {rl(0, false), breaker.Verdict{Kind: breaker.Failure, Delay: breaker.Backoff}},
		// A daily quota trips however short its delay (it used to be
		// waited out like a per-minute 429).
		"daily quota 27s": {talos.E(talos.CodeGeminiQuota, "test", "quota", &llm.APIError{Provider: "gemini", StatusCode: 429, RetryAfter: 27 * time.Second, HasRetryAfter: true}),
			breaker.Verdict{Kind: breaker.Trip, Delay: 27 * time.Second}},
		"daily quota none": {talos.E(talos.CodeGeminiQuota, "test", "quota", &llm.APIError{Provider: "gemini", StatusCode: 429}), breaker.Verdict{Kind: breaker.Trip}},
		"500":              {&llm.APIError{StatusCode: 500}, breaker.Verdict{Kind: breaker.Failure}},
		"401":              {&llm.APIError{StatusCode: 401}, breaker.Verdict{Kind: breaker.Failure}},
		"network":          {errors.New("dial tcp: connection refused"), breaker.Verdict{Kind: breaker.Failure}},
		"deadline":         {context.DeadlineExceeded, breaker.Verdict{Kind: breaker.Failure}},
		"processed":        {errors.New("processed 404 items"), breaker.Verdict{Kind: breaker.Failure}},
	} {
		if got := llm.Classify(tc.err); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}

func TestPromptHash(t *testing.T) {
	a := llm.PromptHash([]llm.Message{{Role: llm.RoleUser, Content: "secret plan"}})
	b := llm.PromptHash([]llm.Message{{Role: llm.RoleUser, Content: "secret plan!"}})
	if len(a) != 16 || a == b {
		t.Fatalf("hashes %q %q", a, b)
	}
}

func TestAPIErrorMessage(t *testing.T) {
	e := &llm.APIError{Provider: "gemini", StatusCode: 429, Status: "RESOURCE_EXHAUSTED", Message: "quota", RetryAfter: time.Minute, HasRetryAfter: true}
	if got := e.Error(); got != "gemini API HTTP 429 RESOURCE_EXHAUSTED: quota (retry after 1m0s)" {
		t.Fatal(got)
	}
}

func TestCategorize(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want llm.FailureCategory
	}{
		{nil, ""},
		// A safety block wins over anything else in the chain.
		{talos.E(talos.CodeSafetyBlock, "t", "x", &llm.APIError{StatusCode: 429}), llm.CategorySafetyBlock},
		{talos.E(talos.CodeGeminiRateLimit, "t", "x", &llm.APIError{StatusCode: 429}), llm.CategoryRateLimit},
		{talos.E(talos.CodeGeminiConnection, "t", "x", errors.New("dial tcp: connection refused")), llm.CategoryNetwork},
		{context.DeadlineExceeded, llm.CategoryNetwork},
		{talos.E(talos.CodeSecretMissing, "t", "x", &llm.APIError{StatusCode: 400}), llm.CategoryAuthentication},
		{&llm.APIError{StatusCode: 401}, llm.CategoryAuthentication},
		{&llm.APIError{StatusCode: 500, Message: "processed 429 items"}, llm.CategoryAPIError},
		{errors.New("processed 404 items"), llm.CategoryNetwork},
		// A bad response (T207) has no APIError but is no network
		// failure: the service answered.
		{talos.E(talos.CodeModelBadResponse, "t", "Gemini returned no candidates", nil), llm.CategoryAPIError},
		{fmt.Errorf("route: %w", talos.E(talos.CodeModelBadResponse, "t", "unparsable NDJSON", errors.New("invalid character"))), llm.CategoryAPIError},
	} {
		if got := llm.Categorize(tc.err); got != tc.want {
			t.Errorf("Categorize(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if s := llm.HTTPStatus(fmt.Errorf("w: %w", &llm.APIError{StatusCode: 503})); s != 503 {
		t.Errorf("HTTPStatus = %d", s)
	}
	if s := llm.HTTPStatus(errors.New("processed 404 items")); s != 0 {
		t.Errorf("HTTPStatus of a message with a number = %d, want 0", s)
	}
}
