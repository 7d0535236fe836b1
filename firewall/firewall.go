package firewall

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall/internal/features"
	"github.com/talos-ironclad/talos/firewall/internal/textclf"
)

// Source says where a text comes from. Text from tools, the web, retrieved
// memories and skills did not come from the user and is scanned with the
// thresholds calibrated for untrusted content.
type Source string

// Sources.
const (
	SourceUser  Source = "user"  // the person talking to the agent
	SourceTool  Source = "tool"  // a tool result (MCP, function call)
	SourceWeb   Source = "web"   // fetched web content
	SourceRAG   Source = "rag"   // text retrieved from long-term memory
	SourceSkill Source = "skill" // output of a (quarantined) skill
)

// Sources lists every valid Source.
func Sources() []Source {
	return []Source{SourceUser, SourceTool, SourceWeb, SourceRAG, SourceSkill}
}

// Valid reports whether s is one of the known sources.
func (s Source) Valid() bool { return slices.Contains(Sources(), s) }

// calibrationGroup says which model and calibrated threshold a source
// uses: the user's, or the one for untrusted tool-like content.
func (s Source) calibrationGroup() string { return features.Group(string(s)) }

// scoring is how the classifier scores text of the source's calibration
// group.
func (s Source) scoring() textclf.Scoring { return features.ScoringOf(s.calibrationGroup()) }

// Input is one text to scan.
type Input struct {
	Text string
	// Source is where Text comes from; empty means unknown, which is treated
	// as untrusted (the "tool" thresholds).
	Source    Source
	SessionID string
	UserID    string
}

// Detection is one finding: a rule that matched, the classifier, or a
// leaked canary.
type Detection struct {
	RuleID      string   `json:"rule_id"`
	RuleName    string   `json:"rule_name"`
	Threat      Threat   `json:"threat_level"`
	Action      Action   `json:"action"`
	Description string   `json:"description"`
	Pattern     string   `json:"matched_pattern,omitempty"`
	Matches     []string `json:"matches,omitempty"`
	// Score is the classifier probability (classifier detections only).
	Score float64 `json:"score,omitempty"`
	// Decoded is true when the finding is inside a base64 or hex blob.
	Decoded bool `json:"decoded,omitempty"`
}

// Verdict is the result of a scan.
type Verdict struct {
	// Action is the strongest action of the detections (allow when none),
	// capped at block for a source that cannot trigger the Lockdown
	// (Config.LockdownSources), or lockdown while the firewall is locked.
	Action Action `json:"action"`
	// Score is the classifier's probability that the text holds an
	// injection, from its highest-scoring window (0 when disabled).
	Score float64 `json:"score"`
	// Threshold is the probability at or above which Score is a detection
	// for this source.
	Threshold  float64     `json:"threshold"`
	Detections []Detection `json:"detections"`
	// MaxThreat is the highest threat among the detections; ThreatNone for
	// a clean text (never "low", which would read as a finding).
	MaxThreat Threat `json:"max_threat_level"`
	// Safe is true when there is no detection.
	Safe bool `json:"safe"`
	// Locked is true when the firewall answered from lockdown without
	// scanning.
	Locked           bool      `json:"locked,omitempty"`
	Source           Source    `json:"source"`
	ScannedAt        time.Time `json:"scanned_at"`
	OriginalLength   int       `json:"original_length"`
	NormalizedLength int       `json:"normalized_length"`
}

// DefaultLockdownSources returns the sources that can trigger the Lockdown
// when Config.LockdownSources is empty: user and skill, the text the agent's
// operator side and its own code produce. Tool, web and RAG text is still
// blocked and alerted at the lockdown level, but does not lock the agent
// (see Config.LockdownSources for why).
func DefaultLockdownSources() []Source { return []Source{SourceUser, SourceSkill} }

// Defaults.
const (
	// DefaultMaxInputBytes bounds one scan; longer inputs are blocked
	// (fail closed) rather than partly scanned.
	DefaultMaxInputBytes = 4 << 20
	// DefaultHistorySize caps the verdict history, so it cannot grow
	// without bound.
	DefaultHistorySize = 1000
	// ClassifierRuleID identifies classifier detections.
	ClassifierRuleID = "CLF-001"
	// CanaryRuleID identifies leaked-canary detections.
	CanaryRuleID = "CANARY-001"
	// OversizeRuleID identifies inputs longer than MaxInputBytes.
	OversizeRuleID = "SIZE-001"
)

// Config configures a Firewall. The zero value is the default: the embedded
// rules and model, calibrated thresholds, and classifier detections that block.
type Config struct {
	// Rules replaces the default rule set (see LoadRules); nil = DefaultRules.
	Rules *RuleSet
	// Model replaces the embedded classifier (a file written by
	// firewall/cmd/train); nil = the embedded model.
	Model []byte
	// DisableClassifier turns the statistical classifier off (rules only).
	DisableClassifier bool
	// Thresholds overrides the calibrated probability thresholds per source.
	Thresholds map[Source]float64
	// ClassifierAction is the action of a classifier detection; zero = block.
	ClassifierAction Action
	// CanaryAction is the action of a leaked canary; zero = block.
	CanaryAction Action
	// MaxInputBytes bounds one input; zero = DefaultMaxInputBytes.
	MaxInputBytes int
	// HistorySize is how many verdicts History keeps; zero =
	// DefaultHistorySize, negative = none.
	HistorySize int
	// LoneRuleMinScore is the classifier probability some part of a user's
	// text must reach for a Contextual rule's match to take the rule's
	// action when that match, in the text itself (not in a decoded blob or
	// a re-reading), is the only finding; under it the match is reported
	// with action log, since the phrase is then used in an ordinary sense
	// ("disregard the previous instructions" in a recipe). Parts are scored
	// without the user scoring's penalties. Zero = the user threshold (a
	// rule alone acts only when the classifier agrees); negative = a rule
	// always takes its action. Text from other sources always gets the
	// rule's action. Without the classifier it has no effect.
	LoneRuleMinScore float64
	// NoLockdownTrigger stops verdicts from triggering the Lockdown (they
	// are still reported with their action).
	NoLockdownTrigger bool
	// LockdownSources lists the sources whose verdicts can trigger the
	// Lockdown; empty = DefaultLockdownSources (user and skill).
	//
	// A verdict from any other source that reaches the lockdown level is
	// answered with block instead (the text is refused, and alerted with
	// the same detections and severity) but does not lock the agent. The
	// original specification locked on a lockdown verdict from any text;
	// lockdown is "triggered by the configured actions", which we read as the
	// action together with where the text came from. Text from
	// tools, the web and memory is written by whoever controls a page, a
	// document or an API response: if it could lock the agent, any article
	// that quotes "ignore all previous instructions" would stop the whole
	// agent until a person unlocks it, a denial of service open to anyone
	// who can put text in front of it. User text and skill output come from
	// the agent's operator side or its own code, so an attack there is
	// worth stopping everything for. List all five sources to lock on any
	// text, as the spec did.
	LockdownSources []Source
	// LockdownAt is the weakest verdict action that triggers the Lockdown;
	// zero = ActionLockdown (only rules whose action is lockdown, PI-001 and
	// PI-002 by default). ActionBlock locks on every blocked input.
	LockdownAt Action
	// Logger receives a record of each detection, each leaked canary and
	// each lockdown that could not be triggered; nil discards them.
	Logger *slog.Logger
}

//go:embed model.bin
var embeddedModel []byte

// Firewall scans text for prompt injection. It is safe for concurrent use.
type Firewall struct {
	cfg   Config
	rules *RuleSet
	// models holds the classifier's model per calibration group ("user",
	// "tool"); nil without the classifier.
	models     map[string]*textclf.Model
	fams       *features.Families
	thresholds map[Source]float64 // probability
	// loneRuleMin is Config.LoneRuleMinScore (0: the source's threshold).
	loneRuleMin float64
	lock        *Lockdown
	alerts      *AlertRouter
	log         *slog.Logger
	pool        sync.Pool

	canaryMu sync.RWMutex
	canaries map[string]Canary

	histMu  sync.Mutex
	history []Verdict
	histPos int

	scanned, flagged, blocked atomic.Int64
}

type scratch struct {
	f   textclf.Features
	s   textclf.Scorer
	cls []features.ClassMask
}

// New builds a Firewall. lock may be nil (no lockdown: verdicts still say
// lockdown but nothing is locked); alerts may be nil (no alerts).
func New(cfg Config, lock *Lockdown, alerts *AlertRouter) (*Firewall, error) {
	const op = "firewall.New"
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fw := &Firewall{cfg: cfg, rules: cfg.Rules, lock: lock, alerts: alerts, log: log, canaries: map[string]Canary{}}
	if fw.rules == nil {
		fw.rules = DefaultRules()
	}
	if fw.cfg.ClassifierAction == ActionAllow {
		fw.cfg.ClassifierAction = ActionBlock
	}
	if fw.cfg.CanaryAction == ActionAllow {
		fw.cfg.CanaryAction = ActionBlock
	}
	if fw.cfg.MaxInputBytes == 0 {
		fw.cfg.MaxInputBytes = DefaultMaxInputBytes
	}
	if fw.cfg.LockdownAt == ActionAllow {
		fw.cfg.LockdownAt = ActionLockdown
	}
	if fw.cfg.LockdownAt < ActionLog || fw.cfg.LockdownAt > ActionLockdown {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "LockdownAt is %d; allowed: log, alert, block, lockdown", cfg.LockdownAt)
	}
	if fw.cfg.MaxInputBytes < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MaxInputBytes is %d; it must be positive (or 0 for %d)", cfg.MaxInputBytes, DefaultMaxInputBytes)
	}
	if fw.cfg.HistorySize == 0 {
		fw.cfg.HistorySize = DefaultHistorySize
	}
	fw.loneRuleMin = cfg.LoneRuleMinScore
	if !(cfg.LoneRuleMinScore <= 1) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "LoneRuleMinScore is %v; allowed: a probability in (0, 1], 0 for the source's threshold, or negative for none", cfg.LoneRuleMinScore)
	}
	fw.thresholds = map[Source]float64{}
	if !cfg.DisableClassifier {
		data := cfg.Model
		if data == nil {
			data = embeddedModel
		}
		models, err := textclf.UnmarshalSet(data)
		if err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, "the classifier model cannot be read: retrain it with firewall/cmd/train", err)
		}
		fw.models = models
		delim, err := NewRuleSet([]Rule{{ID: "FAM-7", Threat: ThreatLow, Action: ActionLog, Patterns: []string{features.DelimiterPattern}}})
		if err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, "the delimiter family does not compile", err)
		}
		fw.fams = features.Compile(delim.locate)
		for _, s := range Sources() {
			m, ok := models[s.calibrationGroup()]
			if !ok {
				return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the classifier model has no threshold for source group %q", s.calibrationGroup())
			}
			fw.thresholds[s] = textclf.Sigmoid(float64(m.Thresholds[s.calibrationGroup()]))
		}
	}
	for _, s := range cfg.LockdownSources {
		if !s.Valid() {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "LockdownSources has %q; allowed: user, tool, web, rag, skill", s)
		}
	}
	if len(cfg.LockdownSources) == 0 {
		fw.cfg.LockdownSources = DefaultLockdownSources()
	} else {
		fw.cfg.LockdownSources = slices.Clone(cfg.LockdownSources)
	}
	for s, t := range cfg.Thresholds {
		if !s.Valid() {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Thresholds has source %q; allowed: user, tool, web, rag, skill", s)
		}
		if !(t > 0 && t <= 1) {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Thresholds[%s] is %v; a threshold is a probability in (0, 1]", s, t)
		}
		fw.thresholds[s] = t
	}
	fw.pool.New = func() any { return new(scratch) }
	return fw, nil
}

// Threshold returns the classifier probability threshold used for src.
func (fw *Firewall) Threshold(src Source) float64 {
	if !src.Valid() {
		src = SourceTool
	}
	return fw.thresholds[src]
}

// Locked reports whether the firewall is in lockdown: while it is, Scan
// answers lockdown for every input without scanning, and callers must not
// send anything to a model, run skills or call tools.
func (fw *Firewall) Locked() bool { return fw.lock != nil && fw.lock.Locked() }

// Lockdown returns the lockdown the firewall triggers, or nil.
func (fw *Firewall) Lockdown() *Lockdown { return fw.lock }

// Scan normalises in.Text, runs the rules and the classifier over it and over
// any base64 or hex blob it embeds, and returns the verdict. A verdict whose
// action reaches Config.LockdownAt triggers the Lockdown when its source is
// one of Config.LockdownSources (user and skill by default; from other
// sources a lockdown-level verdict is answered with block) and
// Config.NoLockdownTrigger is not set; a verdict with detections is sent to
// the alert router. The error is
// non-nil only for a bad Source or a cancelled context; the verdict is then
// a fail-closed block.
func (fw *Firewall) Scan(ctx context.Context, in Input) (Verdict, error) {
	return fw.scan(ctx, in, false)
}

// scan is Scan; with output set it also looks for leaked canaries (see
// ScanOutput), before the verdict's action, lockdown, alert and history are
// decided, so all of them see the canary detections.
func (fw *Firewall) scan(ctx context.Context, in Input, output bool) (Verdict, error) {
	const op = "firewall.Scan"
	v := Verdict{Source: in.Source, ScannedAt: time.Now().UTC(), OriginalLength: len(in.Text), Detections: []Detection{}}
	if in.Source == "" {
		v.Source = SourceTool
	}
	if !v.Source.Valid() {
		v.Action = ActionBlock
		return v, talos.Errorf(talos.CodeConfigInvalid, op, "Input.Source is %q; allowed: user, tool, web, rag, skill (or empty for unknown)", in.Source)
	}
	if err := ctx.Err(); err != nil {
		v.Action = ActionBlock
		return v, talos.E(talos.CodePromptInjection, op, "scan cancelled before it finished; the text was not scanned", err)
	}
	if fw.Locked() {
		v.Action, v.Locked = ActionLockdown, true
		return v, nil
	}
	fw.scanned.Add(1)
	v.Threshold = fw.thresholds[v.Source]
	var norm string
	if len(in.Text) > fw.cfg.MaxInputBytes {
		v.Detections = append(v.Detections, Detection{
			RuleID: OversizeRuleID, RuleName: "Oversized Input", Threat: ThreatMedium, Action: ActionBlock,
			Description: fmt.Sprintf("input of %d bytes exceeds the %d-byte scan limit", len(in.Text), fw.cfg.MaxInputBytes),
		})
	} else {
		norm = Normalize(in.Text)
		v.NormalizedLength = len(norm)
		sc := fw.pool.Get().(*scratch)
		v.Detections = fw.scanText(sc, v.Detections, norm, v.Source, false, &v.Score)
		for _, blob := range DecodeBlobs(in.Text) {
			var s float64
			v.Detections = fw.scanText(sc, v.Detections, Normalize(blob), v.Source, true, &s)
			v.Score = max(v.Score, s)
		}
		for _, view := range AltViews(norm) {
			var s float64
			v.Detections = fw.scanText(sc, v.Detections, view, v.Source, true, &s)
			v.Score = max(v.Score, s)
		}
		v.Detections = mergeDetections(v.Detections)
		fw.contextualAlone(sc, &v, norm)
		fw.pool.Put(sc)
	}
	if output {
		if len(in.Text) > fw.cfg.MaxInputBytes {
			norm = Normalize(in.Text)
		}
		v.Detections = fw.canaryDetections(v.Detections, in, norm)
	}
	fw.finish(ctx, &v, in)
	return v, nil
}

// scanText runs rules and classifier over one normalised segment.
func (fw *Firewall) scanText(sc *scratch, dst []Detection, norm string, src Source, decoded bool, score *float64) []Detection {
	start := len(dst)
	dst = fw.rules.Match(dst, norm)
	if m := fw.models[src.calibrationGroup()]; m != nil {
		features.FeaturizeWeighted(&sc.f, fw.fams, norm, &sc.cls, m)
		logit, span := sc.s.Best(m, &sc.f, src.scoring())
		p := textclf.Sigmoid(logit)
		*score = p
		if p >= fw.thresholds[src] {
			dst = append(dst, Detection{
				RuleID: ClassifierRuleID, RuleName: "Injection Classifier", Threat: ThreatHigh,
				Action:      fw.cfg.ClassifierAction,
				Description: fmt.Sprintf("classifier probability %.3f is at or above the %s threshold %.3f", p, src, fw.thresholds[src]),
				Matches:     []string{snippet(norm, &sc.f, span)},
				Score:       p,
			})
		}
	}
	if decoded {
		for i := start; i < len(dst); i++ {
			dst[i].Decoded = true
		}
	}
	return dst
}

// maxSnippet bounds the window text quoted in a classifier detection.
const maxSnippet = 240

func snippet(text string, f *textclf.Features, span textclf.Span) string {
	if f.Words() == 0 || span.End <= span.Start {
		return truncate(text, maxSnippet)
	}
	a := int(f.Offsets[span.Start])
	b := len(text)
	if span.End < len(f.Offsets) {
		b = int(f.Offsets[span.End])
	}
	return truncate(text[a:b], maxSnippet)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// mergeDetections keeps one detection per rule id (a rule can match both the
// text and a decoded blob), the first one, with the classifier's highest score.
func mergeDetections(d []Detection) []Detection {
	if len(d) < 2 {
		return d
	}
	out := d[:0]
	for _, x := range d {
		i := slices.IndexFunc(out, func(y Detection) bool { return y.RuleID == x.RuleID })
		if i < 0 {
			out = append(out, x)
			continue
		}
		if x.Score > out[i].Score {
			out[i] = x
		}
	}
	return out
}

// finish computes the action, threat and safety of v, triggers lockdown and
// alerts, and records history.
func (fw *Firewall) finish(ctx context.Context, v *Verdict, in Input) {
	for _, d := range v.Detections {
		v.Action = max(v.Action, d.Action)
		v.MaxThreat = max(v.MaxThreat, d.Threat)
	}
	if v.Action == ActionLockdown && !lockdownEvidence(v.Detections) {
		// One rule's phrase alone ("disregard the previous instructions" in
		// a recipe) blocks the text but does not lock the agent: lockdown
		// needs a second rule or the classifier agreeing.
		v.Action = ActionBlock
	}
	canLock := slices.Contains(fw.cfg.LockdownSources, v.Source)
	if v.Action == ActionLockdown && !canLock {
		// refused and alerted, but this source cannot lock the agent
		// (Config.LockdownSources)
		v.Action = ActionBlock
	}
	v.Safe = len(v.Detections) == 0
	if !v.Safe {
		fw.flagged.Add(1)
	}
	if v.Action.Blocks() {
		fw.blocked.Add(1)
	}
	if v.Action >= fw.cfg.LockdownAt && canLock && fw.lock != nil && !fw.cfg.NoLockdownTrigger {
		reason := "prompt injection: " + detectionIDs(v.Detections)
		if _, _, err := fw.lock.Trigger(ctx, "firewall", reason); err != nil {
			fw.log.ErrorContext(ctx, "firewall: lockdown trigger failed; the firewall stays locked in memory", "err", err)
		}
	}
	if !v.Safe {
		fw.log.WarnContext(ctx, "firewall: injection detected", "source", string(v.Source), "action", v.Action.String(),
			"rules", detectionIDs(v.Detections), "score", math.Round(v.Score*1000)/1000, "session", in.SessionID)
		if fw.alerts != nil {
			fw.alerts.Route(ctx, NewAlert(*v, in))
		}
	}
	fw.record(*v)
}

// contextualAlone logs, instead of acting on, a Contextual rule's match in
// the user's own text when it is the only finding and the classifier scores
// every part of the text under Config.LoneRuleMinScore ("if the dough is
// too sticky, disregard the previous instructions and add more flour").
// Each part is scored as it is, without the penalties of the source's
// scoring, so padding a text does not lower the bar. Untrusted text (tool,
// web, memory, skill) is never let off: a third party's text that tells its
// reader to drop its instructions is refused whatever the rest says.
func (fw *Firewall) contextualAlone(sc *scratch, v *Verdict, norm string) {
	m := fw.models[features.GroupUser]
	if m == nil || v.Source.calibrationGroup() != features.GroupUser || !loneRule(v.Detections) || !fw.rules.contextual(v.Detections[0].RuleID) {
		return
	}
	minScore := fw.loneRuleMin
	if minScore == 0 {
		minScore = fw.thresholds[SourceUser]
	}
	if minScore < 0 {
		return
	}
	features.FeaturizeWeighted(&sc.f, fw.fams, norm, &sc.cls, m)
	logit, _ := sc.s.Best(m, &sc.f, textclf.Scoring{})
	if p := textclf.Sigmoid(logit); p < minScore {
		d := &v.Detections[0]
		d.Action = ActionLog
		d.Description += fmt.Sprintf(" (alone, in a text whose parts the classifier scores at most %.3f, under %.3f: logged only)", p, minScore)
	}
}

// loneRule reports whether the detections are one rule's match in the text
// itself: no classifier, canary or size finding, and nothing found only in a
// decoded blob or a re-reading (hiding a phrase is a sign of its own).
func loneRule(d []Detection) bool {
	if len(d) != 1 {
		return false
	}
	switch d[0].RuleID {
	case ClassifierRuleID, CanaryRuleID, OversizeRuleID:
		return false
	}
	return !d[0].Decoded
}

// lockdownEvidence reports whether the detections are enough to lock the
// agent: a leaked canary, the classifier flagging the text, or at least two
// different rules matching.
func lockdownEvidence(d []Detection) bool {
	rules := 0
	for _, x := range d {
		if x.RuleID == ClassifierRuleID || x.RuleID == CanaryRuleID {
			return true
		}
		if x.Action >= ActionBlock {
			rules++
		}
	}
	return rules >= 2
}

func detectionIDs(d []Detection) string {
	s := ""
	for i, x := range d {
		if i > 0 {
			s += ","
		}
		s += x.RuleID
	}
	return s
}

func (fw *Firewall) record(v Verdict) {
	if fw.cfg.HistorySize < 0 {
		return
	}
	fw.histMu.Lock()
	defer fw.histMu.Unlock()
	if len(fw.history) < fw.cfg.HistorySize {
		fw.history = append(fw.history, v)
		return
	}
	fw.history[fw.histPos] = v
	fw.histPos = (fw.histPos + 1) % fw.cfg.HistorySize
}

// History returns the most recent verdicts, oldest first (at most
// Config.HistorySize of them).
func (fw *Firewall) History() []Verdict {
	fw.histMu.Lock()
	defer fw.histMu.Unlock()
	out := make([]Verdict, 0, len(fw.history))
	out = append(out, fw.history[fw.histPos:]...)
	return append(out, fw.history[:fw.histPos]...)
}

// Stats are the firewall's counters since New.
type Stats struct {
	Scanned int64 // inputs scanned (not counting answers from lockdown)
	Flagged int64 // verdicts with at least one detection
	Blocked int64 // verdicts whose action was block or lockdown
}

// Stats returns the counters.
func (fw *Firewall) Stats() Stats {
	return Stats{Scanned: fw.scanned.Load(), Flagged: fw.flagged.Load(), Blocked: fw.blocked.Load()}
}
