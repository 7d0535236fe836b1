package firewall

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// AlertCategory is the category of firewall alerts.
const AlertCategory = "prompt_injection"

// Alert is a security alert for a verdict with detections. It never
// carries an unlock code.
type Alert struct {
	ID              string            `json:"alert_id"`
	Timestamp       time.Time         `json:"timestamp"`
	Severity        talos.Severity    `json:"severity"`
	Category        string            `json:"category"`
	Title           string            `json:"title"`
	Description     string            `json:"description"`
	Detections      []Detection       `json:"detections"`
	Context         map[string]string `json:"context"`
	ActionTaken     Action            `json:"action_taken"`
	Recommendations []string          `json:"recommendations"`
}

// SeverityFor maps a threat level to an alert severity: critical and
// high are critical, medium is a warning, anything else is info.
func SeverityFor(t Threat) talos.Severity {
	switch {
	case t >= ThreatHigh:
		return talos.SeverityCritical
	case t == ThreatMedium:
		return talos.SeverityWarning
	default:
		return talos.SeverityInfo
	}
}

// NewAlert builds the alert for a verdict.
func NewAlert(v Verdict, in Input) Alert {
	var d strings.Builder
	fmt.Fprintf(&d, "Detected %d injection pattern(s):\n\n", len(v.Detections))
	for _, x := range v.Detections {
		fmt.Fprintf(&d, "- %s (%s): %s\n", x.RuleName, x.Threat, x.Description)
	}
	a := Alert{
		ID:          newID(),
		Timestamp:   v.ScannedAt,
		Severity:    SeverityFor(v.MaxThreat),
		Category:    AlertCategory,
		Title:       "Prompt Injection: " + v.MaxThreat.String(),
		Description: strings.TrimRight(d.String(), "\n"),
		Detections:  v.Detections,
		Context:     map[string]string{"session_id": in.SessionID, "user_id": in.UserID, "source": string(v.Source)},
		ActionTaken: v.Action,
	}
	if a.Timestamp.IsZero() {
		a.Timestamp = time.Now().UTC()
	}
	if v.MaxThreat == ThreatCritical {
		a.Recommendations = append(a.Recommendations,
			"Immediate: Review session logs for compromise",
			"Immediate: Consider session termination")
	}
	if v.Action == ActionLockdown {
		a.Recommendations = append(a.Recommendations, "System in lockdown - admin unlock required")
	}
	a.Recommendations = append(a.Recommendations, "Review: Update detection rules if false positive")
	return a
}

// newID returns a random UUID (version 4) string.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Channel delivers alerts somewhere (a log, a dashboard, a webhook).
type Channel interface {
	Send(ctx context.Context, a Alert) error
}

// ChannelFunc adapts a function to a Channel.
type ChannelFunc func(ctx context.Context, a Alert) error

// Send calls f.
func (f ChannelFunc) Send(ctx context.Context, a Alert) error { return f(ctx, a) }

// Route sends alerts of at least MinSeverity to Channel.
type Route struct {
	Name        string
	MinSeverity talos.Severity
	Channel     Channel
}

// AlertRouter sends each alert to every route whose MinSeverity is at most
// the alert's severity. Severities compare numerically (info < warning <
// critical); the spec compared their names as strings, which routed wrongly.
type AlertRouter struct {
	routes []Route
	log    *slog.Logger
}

// AlertRouterConfig configures an AlertRouter.
type AlertRouterConfig struct {
	// Logger receives a record of every alert a channel failed to take;
	// nil discards them.
	Logger *slog.Logger
}

// NewAlertRouter builds a router sending alerts to routes.
func NewAlertRouter(cfg AlertRouterConfig, routes ...Route) (*AlertRouter, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for i, r := range routes {
		if r.Channel == nil {
			return nil, talos.Errorf(talos.CodeConfigInvalid, "firewall.NewAlertRouter", "route #%d (%q) has no Channel", i+1, r.Name)
		}
		if r.MinSeverity < talos.SeverityInfo || r.MinSeverity > talos.SeverityCritical {
			return nil, talos.Errorf(talos.CodeConfigInvalid, "firewall.NewAlertRouter", "route %q has MinSeverity %d; allowed: info, warning, error, critical", r.Name, r.MinSeverity)
		}
	}
	return &AlertRouter{routes: append([]Route(nil), routes...), log: log}, nil
}

// Route delivers a to every matching route and returns the names of the
// routes it was sent to. A failing channel does not stop the others; the
// errors are joined.
func (r *AlertRouter) Route(ctx context.Context, a Alert) ([]string, error) {
	var sent []string
	var errs []error
	for _, rt := range r.routes {
		if a.Severity < rt.MinSeverity {
			continue
		}
		if err := rt.Channel.Send(ctx, a); err != nil {
			r.log.ErrorContext(ctx, "firewall: alert delivery failed", "route", rt.Name, "alert_id", a.ID, "err", err)
			errs = append(errs, fmt.Errorf("route %s: %w", rt.Name, err))
			continue
		}
		sent = append(sent, rt.Name)
	}
	return sent, errors.Join(errs...)
}
