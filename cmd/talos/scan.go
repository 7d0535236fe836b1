package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/firewall/train"
)

// scanVerdict is one output line of `talos scan`.
type scanVerdict struct {
	ID         string               `json:"id"`
	Action     string               `json:"action"`
	Score      float64              `json:"score"`
	Detections []firewall.Detection `json:"detections"`
	// Error says why a line could not be scanned (action "error").
	Error string `json:"error,omitempty"`
}

func newScanCmd() *cobra.Command {
	var (
		evalFile  string
		split     string
		source    string
		rulesFile string
		modelFile string
		exitCode  bool
		noClf     bool
		plain     bool
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Scan text for prompt injection (stdin), or evaluate the firewall on a labelled file",
		Long: `scan reads stdin and writes one JSON verdict per input:
{"id","action","score","detections":[...]}.

Input is either plain text (the whole of stdin is one input, id "stdin") or
JSON lines {"id","text","source"} (when stdin starts with "{", unless
--plain); source is one of user, tool, web, rag, skill (default: --source).
A line that is not such an object, or names no valid source, gets a verdict
with action "error" saying why, and the scan goes on with the next line (the
exit status is then 2). A line longer than the line limit gets the same
SIZE-001 block verdict as oversized plain text.

With --eval FILE.jsonl (lines {"id","dataset","source","label","text"},
gzip-compressed when the name ends in .gz) it scans every line (a line without a source gets --source, as plain scanning
does) and prints precision, recall, F1, false-positive rate and
latency p50/p99 per dataset, per source and overall. A line counts as flagged
when its action is block or lockdown. --split keeps only the lines whose id
falls in that split of train.SplitOf (the model was trained on "train" and
calibrated on "calibration"; report "test").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := firewall.Config{DisableClassifier: noClf}
			if rulesFile != "" {
				b, err := os.ReadFile(rulesFile)
				if err != nil {
					return withExit(2, err)
				}
				rs, err := firewall.LoadRules(b)
				if err != nil {
					return withExit(2, err)
				}
				cfg.Rules = rs
			}
			if modelFile != "" {
				b, err := os.ReadFile(modelFile)
				if err != nil {
					return withExit(2, err)
				}
				cfg.Model = b
			}
			src := firewall.Source(source)
			if !src.Valid() {
				return withExit(2, fmt.Errorf("--source is %q; allowed: user, tool, web, rag, skill", source))
			}
			fw, err := firewall.New(cfg, nil, nil)
			if err != nil {
				return withExit(2, err)
			}
			if evalFile != "" {
				return runScanEval(cmd, fw, evalFile, split, src)
			}
			blocked, err := runScanStream(cmd, fw, src, plain)
			if err != nil {
				return err
			}
			if exitCode && blocked {
				return withExit(3, errors.New("at least one input was blocked"))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&evalFile, "eval", "", "labelled JSON lines (.gz: compressed) to evaluate on instead of scanning stdin")
	f.StringVar(&split, "split", "all", "with --eval: train, calibration, test or all")
	f.StringVar(&source, "source", "user", "source of plain-text input and of JSON lines without one")
	f.StringVar(&rulesFile, "rules", "", "rule file (YAML) replacing the default rules")
	f.StringVar(&modelFile, "model", "", "classifier model file replacing the embedded one")
	f.BoolVar(&exitCode, "exit-code", false, "exit with status 3 when any input is blocked")
	f.BoolVar(&noClf, "no-classifier", false, "rules only: turn the statistical classifier off")
	f.BoolVar(&plain, "plain", false, "treat stdin as one plain-text input even when it starts with \"{\"")
	return cmd
}

// runScanStream scans stdin and writes one verdict line per input.
func runScanStream(cmd *cobra.Command, fw *firewall.Firewall, src firewall.Source, plain bool) (bool, error) {
	in := bufio.NewReaderSize(cmd.InOrStdin(), 64<<10)
	out := json.NewEncoder(cmd.OutOrStdout())
	ctx := cmd.Context()
	blocked := false
	emit := func(id string, v firewall.Verdict) error {
		blocked = blocked || v.Action.Blocks()
		return out.Encode(scanVerdict{ID: id, Action: v.Action.String(), Score: math.Round(v.Score*1e4) / 1e4, Detections: v.Detections})
	}
	// Peek past leading white space to choose the mode.
	var first byte
	for {
		b, err := in.Peek(1)
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, err
		}
		if b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t' {
			in.ReadByte()
			continue
		}
		first = b[0]
		break
	}
	if first != '{' || plain {
		text, err := io.ReadAll(in)
		if err != nil {
			return false, err
		}
		v, err := fw.Scan(ctx, firewall.Input{Text: string(text), Source: src})
		if err != nil {
			return false, withExit(2, err)
		}
		return blocked, emit("stdin", v)
	}
	line, failed := 0, 0
	for {
		b, size, err := readScanLine(in, maxScanLineBytes)
		if err != nil && !(err == io.EOF && size > 0) {
			if err == io.EOF {
				break
			}
			return blocked, withExit(2, fmt.Errorf("reading stdin line %d: %w", line+1, err))
		}
		line++
		id := fmt.Sprint(line)
		if b == nil {
			// Too long to hold: blocked unread, like oversized plain text.
			blocked = true
			if err := out.Encode(scanVerdict{ID: id, Action: firewall.ActionBlock.String(), Detections: []firewall.Detection{{
				RuleID: firewall.OversizeRuleID, RuleName: "Oversized Input", Threat: firewall.ThreatMedium, Action: firewall.ActionBlock,
				Description: fmt.Sprintf("input line of %d bytes exceeds the %d-byte line limit", size, maxScanLineBytes),
			}}}); err != nil {
				return blocked, err
			}
			continue
		}
		if strings.TrimSpace(string(b)) == "" {
			continue
		}
		var rec struct {
			ID     string `json:"id"`
			Text   string `json:"text"`
			Source string `json:"source"`
		}
		fail := func(msg string) error {
			failed++
			return out.Encode(scanVerdict{ID: id, Action: scanErrorAction, Detections: []firewall.Detection{}, Error: msg})
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			if err := fail(fmt.Sprintf("stdin line %d is not a JSON object {\"id\",\"text\",\"source\"}: %v", line, err)); err != nil {
				return blocked, err
			}
			continue
		}
		if rec.ID != "" {
			id = rec.ID
		}
		s := firewall.Source(rec.Source)
		if s == "" {
			s = src
		}
		v, err := fw.Scan(ctx, firewall.Input{Text: rec.Text, Source: s})
		if err != nil {
			if err := fail(fmt.Sprintf("stdin line %d: %v", line, err)); err != nil {
				return blocked, err
			}
			continue
		}
		if err := emit(id, v); err != nil {
			return blocked, err
		}
	}
	if failed > 0 {
		return blocked, withExit(2, fmt.Errorf("%d of %d stdin lines could not be scanned (their verdicts have action %q and say why); every other line was scanned", failed, line, scanErrorAction))
	}
	return blocked, nil
}

// maxScanLineBytes bounds one JSON line of `talos scan`: four times the
// firewall's input limit, room for JSON escaping.
const maxScanLineBytes = 4 * firewall.DefaultMaxInputBytes

// scanErrorAction is the action of a verdict for a line that could not be
// scanned (not JSON, or a source that does not exist).
const scanErrorAction = "error"

// readScanLine reads one line (without its newline) from r. A line longer
// than max is read to its end and dropped: the line is nil and size is its
// length. At the end of the input err is io.EOF, with the last unterminated
// line (size > 0) if there is one.
func readScanLine(r *bufio.Reader, max int) ([]byte, int, error) {
	var buf []byte
	size, over := 0, false
	for {
		chunk, err := r.ReadSlice('\n')
		if err == nil {
			chunk = chunk[:len(chunk)-1] // the newline
		}
		size += len(chunk)
		if !over {
			if size > max {
				over, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if over {
			return nil, size, err
		}
		if buf == nil {
			buf = []byte{}
		}
		return buf, size, err
	}
}

// runScanEval evaluates fw on the labelled records in path; a record
// without a source gets src, the --source default of plain scanning.
func runScanEval(cmd *cobra.Command, fw *firewall.Firewall, path, split string, src firewall.Source) error {
	want := -1
	switch split {
	case "all":
	case "train":
		want = int(train.SplitTrain)
	case "calibration":
		want = int(train.SplitCalibration)
	case "test":
		want = int(train.SplitTest)
	default:
		return withExit(2, fmt.Errorf("--split is %q; allowed: train, calibration, test, all", split))
	}
	recs, err := train.ReadRecordsFile(path)
	if err != nil {
		return withExit(2, err)
	}
	for i := range recs {
		if recs[i].Source == "" {
			recs[i].Source = src
		}
	}
	if want >= 0 {
		kept := recs[:0]
		for _, r := range recs {
			if int(train.SplitOf(r.ID)) == want {
				kept = append(kept, r)
			}
		}
		recs = kept
	}
	rep, err := train.Evaluate(cmd.Context(), fw, recs)
	if err != nil {
		return withExit(2, err)
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "%s\tn\tattacks\tbenign\tprecision\trecall\tF1\tFPR\tp50\tp99\t\n", "dataset")
	row := func(name string, m *train.Metrics) {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", name, m.N, m.TP+m.FN, m.FP+m.TN,
			pct(m.Precision), pct(m.Recall), pct(m.F1), pct(m.FPR), m.LatencyP50, m.LatencyP99)
	}
	for _, ds := range rep.Datasets {
		row(ds, rep.By[ds])
	}
	for _, s := range firewall.Sources() {
		if m := rep.BySource[s]; m != nil {
			row("source="+string(s), m)
		}
	}
	row("overall", rep.Overall)
	return w.Flush()
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*x)
}
