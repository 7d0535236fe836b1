package firewall_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
)

func TestSeverityMapping(t *testing.T) {
	cases := map[firewall.Threat]talos.Severity{
		firewall.ThreatCritical: talos.SeverityCritical,
		firewall.ThreatHigh:     talos.SeverityCritical,
		firewall.ThreatMedium:   talos.SeverityWarning,
		firewall.ThreatLow:      talos.SeverityInfo,
		firewall.ThreatNone:     talos.SeverityInfo,
	}
	for th, want := range cases {
		if got := firewall.SeverityFor(th); got != want {
			t.Errorf("SeverityFor(%s) = %s, want %s", th, got, want)
		}
	}
	if !(talos.SeverityInfo < talos.SeverityWarning && talos.SeverityWarning < talos.SeverityCritical) {
		t.Fatal("severities are not ordered numerically")
	}
}

func TestAlertRoutingIsNumeric(t *testing.T) {
	got := map[string][]talos.Severity{}
	ch := func(name string) firewall.Channel {
		return firewall.ChannelFunc(func(_ context.Context, a firewall.Alert) error {
			got[name] = append(got[name], a.Severity)
			return nil
		})
	}
	r, err := firewall.NewAlertRouter(firewall.AlertRouterConfig{},
		firewall.Route{Name: "all", MinSeverity: talos.SeverityInfo, Channel: ch("all")},
		firewall.Route{Name: "warn", MinSeverity: talos.SeverityWarning, Channel: ch("warn")},
		firewall.Route{Name: "pager", MinSeverity: talos.SeverityCritical, Channel: ch("pager")},
		firewall.Route{Name: "broken", MinSeverity: talos.SeverityInfo, Channel: firewall.ChannelFunc(func(context.Context, firewall.Alert) error { return errors.New("down") })},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []talos.Severity{talos.SeverityInfo, talos.SeverityWarning, talos.SeverityCritical} {
		sent, err := r.Route(context.Background(), firewall.Alert{Severity: s})
		if err == nil || !strings.Contains(err.Error(), "broken") {
			t.Fatalf("a failing channel's error was not reported: %v", err)
		}
		if slices.Contains(sent, "broken") {
			t.Fatal("a failing route is reported as sent")
		}
	}
	// The spec compared names as strings ("critical" < "info"): a critical
	// alert must reach every route, an info alert only "all".
	want := map[string][]talos.Severity{
		"all":   {talos.SeverityInfo, talos.SeverityWarning, talos.SeverityCritical},
		"warn":  {talos.SeverityWarning, talos.SeverityCritical},
		"pager": {talos.SeverityCritical},
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("route %s got %v, want %v", name, got[name], w)
		}
	}
	if _, err := firewall.NewAlertRouter(firewall.AlertRouterConfig{}, firewall.Route{Name: "x", MinSeverity: talos.SeverityInfo}); err == nil {
		t.Error("a route without a channel was accepted")
	}
}

func TestNewAlertFollowsSpec(t *testing.T) {
	v := firewall.Verdict{
		Action: firewall.ActionLockdown, MaxThreat: firewall.ThreatCritical, Source: firewall.SourceTool,
		Detections: []firewall.Detection{{RuleID: "PI-001", RuleName: "Direct Override", Threat: firewall.ThreatCritical, Description: "Attempts to override previous instructions"}},
	}
	a := firewall.NewAlert(v, firewall.Input{SessionID: "s1", UserID: "u1"})
	if a.Severity != talos.SeverityCritical || a.Category != "prompt_injection" || a.Title != "Prompt Injection: critical" {
		t.Fatalf("alert header = %s/%s/%q", a.Severity, a.Category, a.Title)
	}
	wantDesc := "Detected 1 injection pattern(s):\n\n- Direct Override (critical): Attempts to override previous instructions"
	if a.Description != wantDesc {
		t.Fatalf("description = %q, want %q", a.Description, wantDesc)
	}
	wantRec := []string{
		"Immediate: Review session logs for compromise", "Immediate: Consider session termination",
		"System in lockdown - admin unlock required", "Review: Update detection rules if false positive",
	}
	if !slices.Equal(a.Recommendations, wantRec) {
		t.Fatalf("recommendations = %q", a.Recommendations)
	}
	if a.Context["session_id"] != "s1" || a.Context["user_id"] != "u1" || a.ActionTaken != firewall.ActionLockdown || a.ID == "" {
		t.Fatalf("alert = %+v", a)
	}
	v.MaxThreat, v.Action = firewall.ThreatMedium, firewall.ActionAlert
	a = firewall.NewAlert(v, firewall.Input{})
	if a.Severity != talos.SeverityWarning || !slices.Equal(a.Recommendations, []string{"Review: Update detection rules if false positive"}) {
		t.Fatalf("medium alert = %s %q", a.Severity, a.Recommendations)
	}
}
