package train

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/firewall/internal/features"
	"github.com/talos-ironclad/talos/firewall/internal/textclf"
)

// Record is one labelled text of an evaluation or training file (JSON lines
// with the fields id, dataset, source, label, text).
type Record struct {
	ID      string          `json:"id"`
	Dataset string          `json:"dataset,omitempty"`
	Source  firewall.Source `json:"source,omitempty"`
	Label   int             `json:"label"` // 1 attack, 0 benign
	Text    string          `json:"text"`
}

// maxRecordBytes bounds one JSON line of a record file.
const maxRecordBytes = 16 << 20

// ReadRecords reads JSON lines of Records. Blank lines are skipped; a line
// that is not a JSON object with a text field is an error naming the line.
func ReadRecords(r io.Reader) ([]Record, error) {
	const op = "train.ReadRecords"
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxRecordBytes)
	var out []Record
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("line %d is not a JSON object {\"id\",\"text\",\"source\",\"label\"}", line), err)
		}
		if rec.Label != 0 && rec.Label != 1 {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "line %d: label is %d; allowed: 0 (benign) or 1 (attack)", line, rec.Label)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("reading line %d failed (lines are limited to %d bytes)", line+1, maxRecordBytes), err)
	}
	return out, nil
}

// ReadRecordsFile reads the JSON lines of Records in the file at path,
// uncompressing it when its name ends in .gz. Errors name the file.
func ReadRecordsFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	recs, err := ReadRecords(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}

// Split is a deterministic part of a data set.
type Split int

// Splits: 60% train, 20% calibration, 20% held-out test, by a hash of the id.
const (
	SplitTrain Split = iota
	SplitCalibration
	SplitTest
)

// String names the split.
func (s Split) String() string {
	return [...]string{"train", "calibration", "test"}[s]
}

// SplitOf assigns an id to a split by its FNV-1a hash: buckets 0–5 of 10
// train, 6–7 calibration, 8–9 test. The assignment never changes, so the
// held-out numbers stay held out.
func SplitOf(id string) Split {
	h := fnv.New64a()
	h.Write([]byte(id))
	switch b := h.Sum64() % 10; {
	case b < 6:
		return SplitTrain
	case b < 8:
		return SplitCalibration
	default:
		return SplitTest
	}
}

// TrainConfig configures Train. Zero fields take the defaults.
type TrainConfig struct {
	Seed   uint64
	Bits   uint8   // log2 buckets; 0 = 19
	Epochs int     // 0 = 12
	Lambda float64 // L2; 0 = 1e-5
	// TargetFPR is the false-positive rate each threshold group ("user",
	// "tool") must stay within, as the 95% upper confidence bound measured on
	// the calibration split; zero = 0.01 for user and DefaultToolFPR for
	// tool.
	TargetFPR map[string]float64
	Window    int // sliding window in words; 0 = 40
	// SyntheticAttacks is how many composed indirect injections, and as
	// many composed benign tool outputs that use attack vocabulary and
	// composed user attacks of the forms the development set lacks; twice
	// as many composed secret-extraction requests, benign texts that drop
	// something earlier ("disregard my previous email") and ordinary user
	// requests that use the words of attacks; and half as many non-English
	// injections and non-English benign requests join the training data;
	// 0 = DefaultSyntheticAttacks, negative = none.
	SyntheticAttacks int
	Stride           int // 0 = 10
	// MiningRounds is how many rounds of hard-negative mining follow the
	// first fit; 0 = 2, negative = none.
	MiningRounds int
}

// DefaultSyntheticAttacks is how many synthetic indirect injections Train
// adds to the attacks by default.
const DefaultSyntheticAttacks = 300

// DefaultToolFPR is the tool group's default TargetFPR: 2% less a margin
// for the calibration split's sampling error (at 2% the held-out realistic
// tool outputs had 2.8% false positives).
const DefaultToolFPR = 0.018

// BenignPromptWeight multiplies the weight of the development set's benign
// prompts (and their windows). The user threshold is set by the few
// highest-scoring benign prompts, and the composed data and the many tool
// outputs would otherwise outweigh them.
const BenignPromptWeight = 5

// ContextWeight multiplies the weight of the composed benign texts that
// drop something earlier ("disregard my previous email"): a handful of
// phrasings has to outweigh every attack that uses the same words.
const ContextWeight = 3

// GoDocsWeight multiplies the weight of the benign documents without a
// dataset name (benign-docs.jsonl, the Go distribution's documentation)
// and their windows: a coding agent reads such text all day, and its prose
// about CPU instructions shares words with attacks.
const GoDocsWeight = 5

// NBSmoothing is the additive smoothing of the naive-Bayes feature
// scaling both models are fitted with (textclf.TrainConfig.NBSmoothing).
const NBSmoothing = 1

// UserNBPower is the naive-Bayes scaling power of the model for user
// prompts: plain NBSVM. Against the unscaled regression it lifted recall
// on held-out prompts at 1% false positives by about four points.
const UserNBPower = 1

// ToolNBPower is the naive-Bayes scaling power of the model for untrusted
// text (tool, web, memory, skill). Plain scaling (1) made the long benign
// outputs' best windows score higher and so cost recall at 2% false
// positives; half the power kept the user model's gain in the windows an
// attack hides in without that cost.
const ToolNBPower = 0.5

// HardNegativeBoost multiplies the weight of benign training texts that the
// first fit scores as attacks (see Train).
const HardNegativeBoost = 4

// TrainReport describes a trained model on its calibration split.
type TrainReport struct {
	Examples   int
	Thresholds map[string]float64 // logit per group
	// Calibration holds, per group, the benign and attack counts, the
	// false-positive rate and the recall at the chosen threshold.
	Calibration map[string]CalibrationStat
}

// CalibrationStat is one group's result on the calibration split.
type CalibrationStat struct {
	Benign, Attacks int
	FPR, Recall     float64
}

// Train fits the classifier on the train split of dev (user-provided
// labelled prompts) and docs (benign documents, used as tool output): one
// model for user prompts and one for untrusted text, on the same examples
// with naive-Bayes scaling of different strength (UserNBPower,
// ToolNBPower). It calibrates each model's threshold on the calibration
// split of its source group and returns the model file holding both. The
// same inputs and config give the same bytes.
func Train(cfg TrainConfig, dev, docs []Record) ([]byte, TrainReport, error) {
	if cfg.Bits == 0 {
		cfg.Bits = 19
	}
	if cfg.Epochs == 0 {
		cfg.Epochs = 12
	}
	if cfg.Lambda == 0 {
		cfg.Lambda = 1e-5
	}
	if cfg.Window == 0 {
		cfg.Window = 40
	}
	if cfg.Stride == 0 {
		cfg.Stride = 10
	}
	if cfg.MiningRounds == 0 {
		cfg.MiningRounds = 2
	}
	target := map[string]float64{features.GroupUser: 0.01, features.GroupTool: DefaultToolFPR}
	for k, v := range cfg.TargetFPR {
		target[k] = v
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xda7a))
	var examples []textclf.Example
	groupOf := []string{}
	addEx := func(h []uint32, label int, g string) {
		examples = append(examples, textclf.Example{Hashes: h, Label: float64(label)})
		groupOf = append(groupOf, g)
	}
	var f textclf.Features
	fams := features.Compile(nil)
	var cls []features.ClassMask
	var spans []textclf.Span
	windows := func(g string) {
		// every window but the whole text of a benign text: extra negatives
		spans = textclf.AppendSpans(spans[:0], &f, cfg.Window, cfg.Stride)
		for _, sp := range spans[1:] {
			addEx(slices.Clone(f.Hashes[f.WordStart[sp.Start]:f.WordStart[sp.End]]), 0, g)
		}
	}
	for _, r := range dev {
		if SplitOf(r.ID) != SplitTrain {
			continue
		}
		features.Featurize(&f, fams, firewall.Normalize(r.Text), &cls)
		g := fmt.Sprintf("dev/%s/%d", r.Dataset, r.Label)
		addEx(slices.Clone(f.Hashes), r.Label, g)
		if r.Label == 0 {
			windows(g + "/win")
		}
	}
	for _, d := range docs {
		if SplitOf(d.ID) != SplitTrain {
			continue
		}
		g := "docs/" + d.Dataset
		features.Featurize(&f, fams, firewall.Normalize(wrapToolOutput(rng, d.Text)), &cls)
		addEx(slices.Clone(f.Hashes), 0, g)
		windows(g + "/win")
	}
	if cfg.SyntheticAttacks >= 0 {
		n := cfg.SyntheticAttacks
		if n == 0 {
			n = DefaultSyntheticAttacks
		}
		for _, a := range syntheticToolAttacks(rng, n) {
			features.Featurize(&f, fams, firewall.Normalize(a), &cls)
			addEx(slices.Clone(f.Hashes), 1, "synthetic-tool")
		}
		for _, b := range syntheticBenign(rng, n) {
			features.Featurize(&f, fams, firewall.Normalize(wrapToolOutput(rng, b)), &cls)
			addEx(slices.Clone(f.Hashes), 0, "synthetic-benign")
			windows("synthetic-benign/win")
		}
		one := func(text string, label int, g string) {
			features.Featurize(&f, fams, firewall.Normalize(text), &cls)
			addEx(slices.Clone(f.Hashes), label, g)
		}
		for _, a := range syntheticExtraction(rng, 2*n) {
			one(a, 1, "synthetic-extraction")
		}
		fa, fb := syntheticForeign(rng, n/2)
		for i := range fa {
			one(fa[i], 1, "synthetic-foreign")
			one(fb[i], 0, "synthetic-foreign-benign")
		}
		for _, b := range syntheticContextBenign(rng, 2*n) {
			one(b, 0, "synthetic-context")
		}
		for _, b := range syntheticUserBenign(rng, 2*n) {
			one(b, 0, "synthetic-user-benign")
		}
		for _, a := range syntheticUserAttacks(rng, n) {
			one(a, 1, "synthetic-user-attack")
		}
	}
	// Weights: each group's examples share the group's weight, which grows
	// with the square root of its size (so no data set dominates); then
	// attacks and benign texts get equal total weight.
	count := map[string]int{}
	for _, g := range groupOf {
		count[g]++
	}
	var pos, neg float64
	for i := range examples {
		w := 1 / math.Sqrt(float64(count[groupOf[i]]))
		switch g := groupOf[i]; {
		case strings.HasPrefix(g, "dev/") && (strings.HasSuffix(g, "/0") || strings.HasSuffix(g, "/0/win")):
			w *= BenignPromptWeight
		case g == "synthetic-context":
			w *= ContextWeight
		case g == "docs/" || g == "docs//win":
			w *= GoDocsWeight
		}
		examples[i].Weight = w
		if examples[i].Label == 1 {
			pos += w
		} else {
			neg += w
		}
	}
	total := float64(len(examples))
	for i := range examples {
		if examples[i].Label == 1 {
			examples[i].Weight *= total / 2 / pos
		} else {
			examples[i].Weight *= total / 2 / neg
		}
	}
	base := make([]float64, len(examples))
	for i := range examples {
		base[i] = examples[i].Weight
	}
	// One model per threshold group, fitted on the same examples: user
	// prompts with plain naive-Bayes scaling, untrusted text with a milder
	// one (see UserNBPower and ToolNBPower).
	models := map[string]*textclf.Model{}
	for _, g := range []string{features.GroupUser, features.GroupTool} {
		power := float64(UserNBPower)
		if g == features.GroupTool {
			power = ToolNBPower
		}
		for i := range examples {
			examples[i].Weight = base[i]
		}
		tc := textclf.TrainConfig{Bits: cfg.Bits, Epochs: cfg.Epochs, LR: 0.5, Lambda: cfg.Lambda, Seed: cfg.Seed, NBSmoothing: NBSmoothing, NBPower: power}
		bias, w := textclf.Train(examples, tc)
		// Hard-negative mining: benign texts and windows the model scores
		// as attacks get HardNegativeBoost times their weight, and the
		// model is fitted again, MiningRounds times. Long benign tool
		// outputs have many windows, so the tail of the benign window
		// scores is what sets the tool threshold.
		for range cfg.MiningRounds {
			for i := range examples {
				if examples[i].Label == 0 && textclf.Logit(bias, w, examples[i].Hashes, cfg.Bits) > 0 {
					examples[i].Weight *= HardNegativeBoost
				}
			}
			bias, w = textclf.Train(examples, tc)
		}
		q, scale := textclf.Quantize(w)
		models[g] = &textclf.Model{Bits: cfg.Bits, Window: cfg.Window, Stride: cfg.Stride, Bias: float32(bias), Scale: scale, W: q, Thresholds: map[string]float32{}}
	}

	// Calibration.
	rep := TrainReport{Examples: len(examples), Thresholds: map[string]float64{}, Calibration: map[string]CalibrationStat{}}
	var sc textclf.Scorer
	score := func(text string, src firewall.Source) float64 {
		features.Featurize(&f, fams, firewall.Normalize(text), &cls)
		l, _ := sc.Best(models[features.Group(string(src))], &f, features.ScoringOf(features.Group(string(src))))
		return l
	}
	scores := map[string][2][]float64{}
	add := func(g string, label int, s float64) {
		x := scores[g]
		x[label] = append(x[label], s)
		scores[g] = x
	}
	for _, r := range dev {
		if SplitOf(r.ID) == SplitCalibration {
			add(features.GroupUser, r.Label, score(r.Text, firewall.SourceUser))
		}
	}
	for _, r := range ToolEvalSet(dev, docs, SplitCalibration, cfg.Seed) {
		add(features.GroupTool, r.Label, score(r.Text, firewall.SourceTool))
	}
	for _, g := range []string{features.GroupUser, features.GroupTool} {
		s := scores[g]
		if len(s[0]) == 0 {
			return nil, rep, talos.Errorf(talos.CodeConfigInvalid, "train.Train", "no benign %s texts in the calibration split", g)
		}
		ben := slices.Clone(s[0])
		slices.Sort(ben)
		// The threshold lets k benign texts reach it, for the largest k whose
		// 95% Wilson upper bound on the false-positive rate stays within the
		// target: a point estimate from a few hundred texts is too optimistic.
		k := 0
		for k+1 < len(ben) && wilsonUpper(k+1, len(ben)) <= target[g] {
			k++
		}
		thr := ben[len(ben)-1-k]
		thr = math.Nextafter(thr, math.Inf(1))
		if k > 0 {
			thr = (ben[len(ben)-1-k] + ben[len(ben)-k]) / 2
		}
		models[g].Thresholds[g] = float32(thr)
		thr = float64(models[g].Thresholds[g])
		st := CalibrationStat{Benign: len(s[0]), Attacks: len(s[1])}
		for _, x := range s[0] {
			if x >= thr {
				st.FPR++
			}
		}
		for _, x := range s[1] {
			if x >= thr {
				st.Recall++
			}
		}
		st.FPR /= float64(max(1, st.Benign))
		st.Recall /= float64(max(1, st.Attacks))
		rep.Thresholds[g] = thr
		rep.Calibration[g] = st
	}
	file, err := textclf.MarshalSet([]*textclf.Model{models[features.GroupUser], models[features.GroupTool]})
	if err != nil {
		return nil, rep, talos.E(talos.CodeConfigInvalid, "train.Train", "the trained models cannot be written", err)
	}
	return file, rep, nil
}

// ToolEvalSet builds labelled tool outputs from one split: for every benign
// document of docs in that split, a tool output (the document alone, or every
// other time followed by one to four random documents of the split), wrapped
// as a tool would return it (plain text, JSON, an MCP tool result, HTML,
// search results, a log, a file read with line numbers or a shell session),
// labelled 0 (dataset "tool-benign/<document's dataset>", or "tool-benign"
// for documents without one); and for every attack of dev in that split, a
// tool output of one to four documents with the attack hidden at a random
// sentence or line boundary, labelled 1 (dataset "tool-hidden/<dev
// dataset>").
func ToolEvalSet(dev, docs []Record, split Split, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, uint64(split)+0x7001))
	var pool []Record
	for _, d := range docs {
		if SplitOf(d.ID) == split {
			pool = append(pool, d)
		}
	}
	if len(pool) == 0 {
		return nil
	}
	// A tool output is one to four documents of the split.
	page := func() string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = pool[rng.IntN(len(pool))].Text
		}
		return strings.Join(parts, "\n\n")
	}
	var out []Record
	for i, d := range pool {
		text := d.Text
		if i%2 == 1 {
			text = text + "\n\n" + page()
		}
		ds := "tool-benign"
		if d.Dataset != "" {
			ds += "/" + d.Dataset
		}
		out = append(out, Record{ID: "tool-benign:" + d.ID, Dataset: ds, Source: firewall.SourceTool, Label: 0, Text: wrapToolOutput(rng, text)})
	}
	for _, r := range dev {
		if SplitOf(r.ID) != split || r.Label != 1 {
			continue
		}
		host := Record{Text: page()}
		out = append(out, Record{
			ID: "tool-hidden:" + r.ID, Dataset: "tool-hidden/" + r.Dataset, Source: firewall.SourceTool, Label: 1,
			Text: wrapToolOutput(rng, hide(rng, host.Text, r.Text)),
		})
	}
	return out
}

// hide inserts attack into doc at a random paragraph or sentence boundary.
func hide(rng *rand.Rand, doc, attack string) string {
	var cuts []int
	for i := 0; i+1 < len(doc); i++ {
		if (doc[i] == '.' || doc[i] == '\n') && (doc[i+1] == ' ' || doc[i+1] == '\n') {
			cuts = append(cuts, i+1)
		}
	}
	cuts = append(cuts, 0, len(doc))
	at := cuts[rng.IntN(len(cuts))]
	return doc[:at] + "\n" + attack + "\n" + doc[at:]
}

var (
	toolTitles = []string{"Search results", "Documentation", "README", "Release notes", "Page content", "Issue #4821", "Knowledge base"}
	toolHosts  = []string{"docs.example.org", "pkg.example.dev", "wiki.example.net", "blog.example.com", "forum.example.io"}
)

// wrapToolOutput formats text the way tools return content, chosen at random:
// plain, a JSON API response, an HTML page, search results, log lines, an MCP
// tool result, a file read with line numbers, or a shell session.
func wrapToolOutput(rng *rand.Rand, text string) string {
	title := toolTitles[rng.IntN(len(toolTitles))]
	host := toolHosts[rng.IntN(len(toolHosts))]
	switch rng.IntN(8) {
	case 0:
		return text
	case 5:
		b, _ := json.Marshal(map[string]any{"content": []map[string]any{{"type": "text", "text": text}}, "isError": false})
		return string(b)
	case 6:
		var b strings.Builder
		fmt.Fprintf(&b, "File: /home/user/%s/%s.txt\n", host, strings.ToLower(strings.ReplaceAll(title, " ", "-")))
		for i, l := range strings.Split(text, "\n") {
			fmt.Fprintf(&b, "%6d\t%s\n", i+1, l)
		}
		return b.String()
	case 7:
		cmds := []string{"cat NOTES.txt", "curl -s https://" + host + "/api/v1/page", "less README", "journalctl -n 200 --no-pager", "git show HEAD:docs/index.md"}
		return "$ " + cmds[rng.IntN(len(cmds))] + "\n" + text + "\n$ "
	case 1:
		b, _ := json.Marshal(map[string]any{
			"status": "ok", "id": rng.IntN(100000), "source": "https://" + host + "/a/" + fmt.Sprint(rng.IntN(9999)),
			"result": map[string]any{"title": title, "content": text, "tokens": len(text) / 4},
		})
		return string(b)
	case 2:
		var b strings.Builder
		fmt.Fprintf(&b, "<!DOCTYPE html><html><head><title>%s</title></head><body><nav><a href=\"/\">Home</a> | <a href=\"/docs\">Docs</a></nav><main><h1>%s</h1>\n", title, title)
		for p := range strings.SplitSeq(text, "\n\n") {
			fmt.Fprintf(&b, "<p>%s</p>\n", p)
		}
		b.WriteString("</main><footer>© 2026 " + host + "</footer></body></html>")
		return b.String()
	case 3:
		var b strings.Builder
		paras := strings.Split(text, "\n\n")
		for i, p := range paras {
			fmt.Fprintf(&b, "%d. %s — https://%s/r/%d\n%s\n\n", i+1, title, host, rng.IntN(99999), p)
		}
		return b.String()
	default:
		var b strings.Builder
		for i, l := range strings.Split(text, "\n") {
			fmt.Fprintf(&b, "2026-11-%02dT%02d:%02d:%02dZ INFO worker[%d] %s\n", 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), i%4, l)
		}
		return b.String()
	}
}

// wilsonUpper is the 95% Wilson score upper bound of a rate of k in n.
func wilsonUpper(k, n int) float64 {
	const z = 1.96
	p := float64(k) / float64(n)
	nf := float64(n)
	d := 1 + z*z/nf
	c := p + z*z/(2*nf)
	r := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))
	return (c + r) / d
}
