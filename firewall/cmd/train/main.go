// Command train fits the firewall's injection classifier and writes the model
// file that package firewall embeds.
//
//	go run ./firewall/cmd/train -data firewall/cmd/train/testdata/dev.jsonl -out firewall/model.bin -seed 1
//
// It trains on the train split of the labelled data (-data) plus the benign
// documents (-docs: the Go documentation of benign-docs.jsonl and the
// realistic tool-output corpus of benign-tool.jsonl.gz that
// firewall/cmd/mkcorpus builds, used as tool output) and the composed data
// of package train, calibrates the per-source thresholds on the calibration
// split, and prints the calibration report. The held-out test split is never
// used for training or calibration; -tool-eval writes the tool-output cases
// of the test split (benign documents, and documents with an attack hidden
// inside) for `talos scan --eval`, and -report prints the test split's
// results. The same flags give the same bytes.
//
// With -evaluate FILE it only prints the test split's results of that model.
// With -lodo it writes no model: for every dataset of -data it trains without
// that dataset, calibrates on what remains, and tests on every case of the
// left-out dataset, as user text and hidden in tool output.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/talos-ironclad/talos/firewall/train"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	data := fs.String("data", "firewall/cmd/train/testdata/dev.jsonl", "labelled JSON lines {id,dataset,source,label,text}")
	docs := fs.String("docs", "firewall/cmd/train/testdata/benign-docs.jsonl,firewall/cmd/train/testdata/benign-tool.jsonl.gz", "comma-separated files of benign documents (JSON lines {id,dataset,text}, gzip-compressed if named .gz) used as tool output")
	out := fs.String("out", "firewall/model.bin", "model file to write")
	seed := fs.Uint64("seed", 1, "seed of the shuffles and the synthetic tool outputs")
	lambda := fs.Float64("lambda", 0, "L2 strength (0 = the default of train.TrainConfig)")
	epochs := fs.Int("epochs", 0, "SGD epochs (0 = default)")
	window := fs.Int("window", 0, "sliding window in words (0 = default)")
	synth := fs.Int("synthetic", 0, "synthetic indirect injections to add (0 = default, -1 = none)")
	toolFPR := fs.Float64("tool-fpr", 0, "false-positive rate the tool threshold must keep on calibration (95% upper bound; 0 = the default of train.TrainConfig)")
	userFPR := fs.Float64("user-fpr", 0, "false-positive rate the user threshold must keep on calibration (95% upper bound; 0 = the default of train.TrainConfig)")
	bits := fs.Uint("bits", 0, "log2 of the number of weights (0 = the default of train.TrainConfig)")
	mining := fs.Int("mining", 0, "rounds of hard-negative mining (0 = default, -1 = none)")
	toolEval := fs.String("tool-eval", "", "also write the held-out synthetic tool-output cases to this JSONL file")
	report := fs.Bool("report", false, "also print the held-out test split's results (Markdown tables)")
	evalOnly := fs.String("evaluate", "", "instead of training, print the test split's results of this model file")
	lodo := fs.Bool("lodo", false, "instead of writing a model, train once without each dataset of -data and test on it (leave one dataset out)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var bad []string
	if *bits > 30 {
		bad = append(bad, fmt.Sprintf("-bits is %d; allowed: 0 (the default) or 1 to 30", *bits))
	}
	for name, v := range map[string]float64{"-tool-fpr": *toolFPR, "-user-fpr": *userFPR} {
		if !(v >= 0 && v < 1) {
			bad = append(bad, fmt.Sprintf("%s is %v; allowed: 0 (the default) or a rate in (0, 1)", name, v))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	dev, err := train.ReadRecordsFile(*data)
	if err != nil {
		return err
	}
	var benign []train.Record
	for p := range strings.SplitSeq(*docs, ",") {
		recs, err := train.ReadRecordsFile(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		benign = append(benign, recs...)
	}
	cfg := train.TrainConfig{Seed: *seed, Lambda: *lambda, Epochs: *epochs, Window: *window, SyntheticAttacks: *synth, MiningRounds: *mining, Bits: uint8(*bits)}
	for g, v := range map[string]float64{"tool": *toolFPR, "user": *userFPR} {
		if v != 0 {
			if cfg.TargetFPR == nil {
				cfg.TargetFPR = map[string]float64{}
			}
			cfg.TargetFPR[g] = v
		}
	}
	if *lodo {
		return leaveOneOut(os.Stdout, cfg, dev, benign)
	}
	if *evalOnly != "" {
		model, err := os.ReadFile(*evalOnly)
		if err != nil {
			return err
		}
		return heldOut(os.Stdout, model, dev, benign, *seed)
	}
	model, rep, err := train.Train(cfg, dev, benign)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, model, 0o644); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Printf("wrote %s (%d bytes)\n%s\n", *out, len(model), b)
	if *toolEval != "" {
		f, err := os.Create(*toolEval)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(f)
		for _, r := range train.ToolEvalSet(dev, benign, train.SplitTest, *seed) {
			if err := enc.Encode(r); err != nil {
				f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *report {
		return heldOut(os.Stdout, model, dev, benign, *seed)
	}
	return nil
}
