package mcphost_test

import (
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/mcphost"
)

func TestSecretScannerKinds(t *testing.T) {
	sc := mcphost.NewSecretScanner([]string{ourSecret, "short"})
	for _, tc := range []struct{ in, kind string }{
		{testPrivateKey, "private-key"},
		{"-----BEGIN RSA PRIVATE KEY-----\nMIIEow (cut off)", "private-key"},
		{"id=" + testAWSKey, "aws-access-key"},
		{"xASIAIOSFODNN7EXAMPLEy", "aws-access-key"},
		{"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-key"},
		{"aws_secret_access_key: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"", "aws-secret-key"},
		{"token ghp_" + strings.Repeat("a1B2", 9), "github-token"},
		{"github_pat_" + strings.Repeat("a1B2_", 13), "github-token"},
		{"key=AIza" + strings.Repeat("x", 35), "google-api-key"},
		{"xoxb-123456789012-abcdefghij", "slack-token"},
		{"sk_live_" + strings.Repeat("Z", 24), "stripe-key"},
		{"sk-proj-" + strings.Repeat("q", 40), "openai-key"},
		{"sk-ant-" + strings.Repeat("q", 40), "openai-key"},
		{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.SflKxwRJSMeKKF2QT4fwpM", "jwt"},
		{"x" + ourSecret + "y", "talos-secret"},
	} {
		counts := map[string]int{}
		out := sc.Redact(tc.in, counts)
		if counts[tc.kind] != 1 || !strings.Contains(out, "[REDACTED:"+tc.kind+"]") {
			t.Errorf("%q: got %q, counts %v; want one %s", tc.in, out, counts, tc.kind)
		}
	}
	for _, benign := range []string{
		"The AKIA prefix marks AWS access keys.", "sk-short", "ghp_tooShort", "a short word",
		"secret sauce: 40 chars follow but no aws key name here", "eyJhbGciOiJIUzI1NiJ9 alone",
		"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
	} {
		counts := map[string]int{}
		if out := sc.Redact(benign, counts); out != benign || len(counts) != 0 {
			t.Errorf("benign %q redacted to %q", benign, out)
		}
	}
}
