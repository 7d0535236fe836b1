// Package firewall detects prompt injection in text before it reaches a
// model, and holds a lockdown when an attack is serious.
//
// # Scanning
//
// Build a Firewall once and call Scan for every text, saying where it came
// from:
//
//	fw, err := firewall.New(firewall.Config{Logger: logger}, nil, nil)
//	v, err := fw.Scan(ctx, firewall.Input{Text: toolResult, Source: firewall.SourceTool})
//	if v.Action.Blocks() { /* do not send it to the model */ }
//
// A scan normalises the text (Normalize: HTML entities, repeated URL
// escapes, NFKC, lower case, homoglyphs, zero-width and control characters),
// decodes embedded base64 and hex blobs, also under URL or HTML escapes
// (DecodeBlobs), re-reads text that is hidden by leetspeak, reversal, ROT13
// or letters spelled out one at a time (AltViews), and runs two detectors
// over the results:
//
//   - Rules (RuleSet): the spec's PI-001…PI-007 as an embedded YAML file with
//     its false positives fixed, replaceable with LoadRules. Each rule gives at
//     most one detection, with the rule's action.
//   - A classifier: two logistic regressions over hashed word unigrams,
//     bigrams, character 3–5-grams and hand-written pattern families, one
//     for the user's prompts and one for untrusted text, fitted on
//     naive-Bayes-scaled features (NBSVM), and scored over the
//     whole text, each sentence and sliding windows, so that an attack buried
//     in a long, benign tool output is still found. A user prompt's
//     sentences and windows must score clearly above the whole prompt to
//     decide (a pasted document has many of them); an untrusted text's best
//     window must stand out from the rest of the text, and a text with many
//     windows must show more (each is a chance for ordinary text to cross
//     the threshold). Their weights are embedded (model.bin, about 2 MB) and
//     are reproduced from the repository's data (development prompts, Go
//     documentation and a realistic benign tool-output corpus) by
//     `go run ./firewall/cmd/train -data firewall/cmd/train/testdata/dev.jsonl -out firewall/model.bin -seed 1`.
//
// The verdict's Action is the strongest action of its detections:
// lockdown > block > alert > log > allow. A rule marked contextual (PI-001,
// "ignore/disregard the previous instructions") matches phrases ordinary
// text uses too: in the user's own text, when it is the only finding and
// the classifier flags no part of the text (Config.LoneRuleMinScore), it
// is reported with action log, so "if the dough is too sticky, disregard
// the previous instructions and add more flour" passes; from a tool, the
// web, memory or a skill it keeps its action. Thresholds are per Source: user
// text has its own, and text from tools, the web, memory (RAG) and skills
// shares the stricter calibration for untrusted content. Both were calibrated
// on a split of the data the model was not trained on: benign prompts for
// the user threshold, realistic tool outputs (documentation, man pages,
// e-mails, logs, API payloads, search pages, licences) for the other.
//
// # Canaries
//
// NewCanary mints a token to put into a system prompt; ScanOutput flags any
// model output that carries it (also spaced out, re-cased or encoded), which
// means the prompt leaked.
//
// # Lockdown
//
// A Lockdown (NewLockdown) is entered when a verdict's action is lockdown
// and its text came from a source that may lock the agent
// (Config.LockdownAt and Config.LockdownSources change which verdicts count).
// By default those sources are user and skill only: lockdown is triggered
// by the configured actions together with where the text came from. Tool results, web pages and
// retrieved memories are written by whoever controls the page, document or
// API; if they could lock the agent, an article that merely quotes "ignore
// all previous instructions" would stop it until a person unlocks it, a
// denial of service open to anyone who can put text in front of it. Such
// text is still refused: a lockdown-level verdict from tool, web or rag is
// answered with block and alerted (same detections and severity), it just
// does not lock. Listing all five sources restores the spec's behaviour.
//
// The lockdown is persisted through a Store (NewFileStore: one JSON file,
// written atomically with mode 0600), so a restart keeps it; while it holds,
// Locked is true and Scan answers lockdown for everything. The unlock code is
// delivered to a person through a Notifier, never logged or put into an
// alert, stored only as an HMAC-SHA256 under a per-install key
// (LoadOrCreateKey), compared in constant time, valid for 24 hours, and
// burned after 5 wrong attempts; an operator can Reissue it.
//
// # Alerts
//
// Verdicts with detections become Alerts (NewAlert) that an
// AlertRouter sends to every Route whose minimum severity they reach.
// Severities are talos.Severity values, ordered numerically
// (info < warning < critical).
//
// # Evaluating
//
// Evaluate scans labelled Records and reports precision, recall, F1,
// false-positive rate and latency per dataset and source; `talos scan --eval`
// prints it. Package firewalltest has an in-memory Store, a recording
// Notifier and the Store conformance suite.
package firewall
