package firewall

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/talos-ironclad/talos"
	yaml "go.yaml.in/yaml/v3"
)

// Threat is a detection's threat level. Levels are ordered
// numerically: ThreatLow < ThreatMedium < ThreatHigh < ThreatCritical.
type Threat int

// Threat levels, ordered: low=1 … critical=4.
const (
	ThreatNone Threat = iota
	ThreatLow
	ThreatMedium
	ThreatHigh
	ThreatCritical
)

var threatNames = [...]string{"none", "low", "medium", "high", "critical"}

// String returns the lower-case name of t.
func (t Threat) String() string {
	if t >= 0 && int(t) < len(threatNames) {
		return threatNames[t]
	}
	return fmt.Sprintf("threat(%d)", int(t))
}

// MarshalText encodes t by name.
func (t Threat) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes a threat name.
func (t *Threat) UnmarshalText(b []byte) error {
	for i, n := range threatNames {
		if strings.EqualFold(string(b), n) {
			*t = Threat(i)
			return nil
		}
	}
	return fmt.Errorf("threat %q is not one of low, medium, high, critical", b)
}

// Action is what a verdict asks the caller to do. Actions are ordered by
// strength: ActionAllow < ActionLog < ActionAlert < ActionBlock < ActionLockdown,
// and a verdict's action is the strongest of its detections'.
type Action int

// Actions, weakest first.
const (
	ActionAllow Action = iota
	ActionLog
	ActionAlert
	ActionBlock
	ActionLockdown
)

var actionNames = [...]string{"allow", "log", "alert", "block", "lockdown"}

// String returns the lower-case name of a.
func (a Action) String() string {
	if a >= 0 && int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// MarshalText encodes a by name.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes an action name.
func (a *Action) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if strings.EqualFold(string(b), n) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("action %q is not one of allow, log, alert, block, lockdown", b)
}

// Blocks reports whether a stops the text from reaching the model
// (block or lockdown).
func (a Action) Blocks() bool { return a >= ActionBlock }

// Rule is one detection rule: the first of its patterns that matches the
// normalised text produces the rule's single detection.
type Rule struct {
	ID          string   `yaml:"id" json:"id"`
	Name        string   `yaml:"name" json:"name"`
	Threat      Threat   `yaml:"threat" json:"threat"`
	Action      Action   `yaml:"action" json:"action"`
	Description string   `yaml:"description" json:"description"`
	Patterns    []string `yaml:"patterns" json:"patterns"`
	// Disabled rules are loaded but never matched.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
	// Contextual rules match phrases that ordinary text also uses
	// ("disregard the previous instructions" in a recipe): with the
	// classifier on, such a rule's match in the user's text, with nothing
	// else found and not inside a decoded blob or re-reading, takes the
	// rule's action only when the classifier reaches
	// Config.LoneRuleMinScore, and is otherwise reported with action log.
	Contextual bool `yaml:"contextual,omitempty" json:"contextual,omitempty"`
}

// contextual reports whether the rule with this id is Contextual.
func (rs *RuleSet) contextual(id string) bool {
	for _, r := range rs.rules {
		if r.ID == id {
			return r.Contextual
		}
	}
	return false
}

// RuleSet is a compiled, immutable list of rules, safe for concurrent use.
type RuleSet struct {
	rules    []Rule
	compiled [][]*regexp.Regexp
	// pf holds, per rule and pattern, the literal pre-filter (nil: always
	// run), and ac finds all their literals in one pass (see literals.go).
	pf      [][]*prefilter
	ac      *acMatcher
	occPool sync.Pool
}

//go:embed rules.yaml
var defaultRulesYAML []byte

// DefaultRulesYAML returns the embedded default rule file (PI-001…PI-007 with
// the spec's false positives fixed), as a starting point for your own.
func DefaultRulesYAML() []byte {
	out := make([]byte, len(defaultRulesYAML))
	copy(out, defaultRulesYAML)
	return out
}

// DefaultRules returns the compiled default rule set.
func DefaultRules() *RuleSet {
	rs, err := LoadRules(defaultRulesYAML)
	if err != nil {
		panic("firewall: embedded rules.yaml is invalid: " + err.Error())
	}
	return rs
}

type ruleFile struct {
	Rules []Rule `yaml:"rules" json:"rules"`
}

// LoadRules parses a rule file (YAML, or JSON which is YAML too) of the form
// `rules: [{id, name, threat, action, description, patterns: [...]}]` and
// compiles it. Every rule needs a unique id, a threat, an action and at least
// one pattern; patterns are RE2 and matched case-insensitively.
func LoadRules(data []byte) (*RuleSet, error) {
	const op = "firewall.LoadRules"
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "the rule file is not valid YAML: fix the syntax", err)
	}
	if len(f.Rules) == 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the rule file has no rules: expected a top-level \"rules:\" list")
	}
	return NewRuleSet(f.Rules)
}

// NewRuleSet validates and compiles rules.
func NewRuleSet(rules []Rule) (*RuleSet, error) {
	const op = "firewall.NewRuleSet"
	rs := &RuleSet{rules: make([]Rule, len(rules))}
	var lits literalIndex
	seen := map[string]bool{}
	for i, r := range rules {
		switch {
		case strings.TrimSpace(r.ID) == "":
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "rule #%d: field id is empty; give every rule a unique id", i+1)
		case seen[r.ID]:
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "rule #%d: id %q is used twice; ids must be unique", i+1, r.ID)
		case r.Threat < ThreatLow || r.Threat > ThreatCritical:
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "rule %s: field threat is %q; allowed: low, medium, high, critical", r.ID, r.Threat)
		case r.Action < ActionLog || r.Action > ActionLockdown:
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "rule %s: field action is %q; allowed: log, alert, block, lockdown", r.ID, r.Action)
		case len(r.Patterns) == 0:
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "rule %s: field patterns is empty; give at least one pattern", r.ID)
		}
		seen[r.ID] = true
		r.Patterns = append([]string(nil), r.Patterns...)
		rs.rules[i] = r
		res := make([]*regexp.Regexp, len(r.Patterns))
		pfs := make([]*prefilter, len(r.Patterns))
		for j, p := range r.Patterns {
			pfs[j] = lits.compilePrefilter(p)
			re, err := regexp.Compile("(?i)" + p)
			if err != nil {
				return nil, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("rule %s: pattern #%d %q is not a valid RE2 expression", r.ID, j+1, p), err)
			}
			res[j] = re
		}
		rs.compiled = append(rs.compiled, res)
		rs.pf = append(rs.pf, pfs)
	}
	rs.ac = newACMatcher(lits.lits)
	rs.occPool.New = func() any { return new(occurrences) }
	return rs, nil
}

// Rules returns a copy of the rules.
func (rs *RuleSet) Rules() []Rule {
	out := make([]Rule, len(rs.rules))
	for i, r := range rs.rules {
		r.Patterns = append([]string(nil), r.Patterns...)
		out[i] = r
	}
	return out
}

// MarshalJSON encodes the rule set as its rule file.
func (rs *RuleSet) MarshalJSON() ([]byte, error) { return json.Marshal(ruleFile{Rules: rs.Rules()}) }

// maxMatches caps how many match strings one detection lists.
const maxMatches = 8

// Match runs every enabled rule over normalised text and appends one
// detection per matching rule to dst.
func (rs *RuleSet) Match(dst []Detection, text string) []Detection {
	occ := rs.occPool.Get().(*occurrences)
	defer rs.occPool.Put(occ)
	rs.ac.scan(text, occ)
	for i := range rs.rules {
		r := &rs.rules[i]
		if r.Disabled {
			continue
		}
		for j, re := range rs.compiled[i] {
			locs := findAll(re, rs.pf[i][j], occ, text, maxMatches)
			if len(locs) == 0 {
				continue
			}
			m := make([]string, len(locs))
			for k, l := range locs {
				m[k] = text[l[0]:l[1]]
			}
			dst = append(dst, Detection{
				RuleID:      r.ID,
				RuleName:    r.Name,
				Threat:      r.Threat,
				Action:      r.Action,
				Description: r.Description,
				Pattern:     r.Patterns[j],
				Matches:     m,
			})
			break
		}
	}
	return dst
}

// locate returns up to n match locations of the first rule's first pattern.
func (rs *RuleSet) locate(text string, n int) [][]int {
	occ := rs.occPool.Get().(*occurrences)
	defer rs.occPool.Put(occ)
	rs.ac.scan(text, occ)
	return findAll(rs.compiled[0][0], rs.pf[0][0], occ, text, n)
}
