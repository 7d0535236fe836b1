// Package gemini is the llm.Model adapter for Google Gemini over
// google.golang.org/genai (the Gemini API backend, API key auth).
//
// What it adds to the SDK:
//
//   - Safety blocks. Gemini reports a blocked prompt or answer with a nil
//     error: promptFeedback.blockReason, or a candidate whose finishReason is
//     SAFETY (or BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY …). The
//     adapter inspects these structured fields (never the text: ordinary
//     answers carry safetyRatings with HARM_CATEGORY_* at NEGLIGIBLE) and
//     returns a T206 SAFETY_BLOCK error whose cause is an *llm.SafetyBlock.
//     It logs SAFETY_BLOCK_DETECTED with a SHA-256 prefix of the prompt,
//     never the prompt.
//   - Rate limits. A 429 RESOURCE_EXHAUSTED becomes T201 with an
//     *llm.APIError carrying the retry delay from RetryInfo.retryDelay or
//     the Retry-After header, which llm.Classify hands to the breaker. When
//     the quota is a daily one (a QuotaFailure quotaId with "PerDay") it is
//     T202 and the delay is the time until the quota resets (QuotaReset:
//     midnight Pacific time), or the server's delay if that is longer;
//     llm.Classify trips the breaker for at least that long. The SDK's own
//     retries are off: the breaker decides.
//   - Errors carry talos codes: network and 5xx are T200, a rejected API key
//     is T006, a response without candidates is T207.
//
// The API key is sent in the x-goog-api-key header by the SDK and never
// logged or put into an error.
package gemini
