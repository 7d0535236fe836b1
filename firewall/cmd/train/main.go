// Command train fits the firewall's injection classifier and writes the model
// file that package firewall embeds.
//
//	go run ./firewall/cmd/train -data firewall/cmd/train/testdata/dev.jsonl -out firewall/model.bin -seed 1
//
// It trains on the train split of the labelled data (-data) plus the benign
// documents (-docs, used as tool output), calibrates the per-source
// thresholds on the calibration split, and prints the calibration report. The
// held-out test split is never used; -tool-eval writes the synthetic
// tool-output cases of the test split (benign documents, and documents with an
// attack hidden inside) for `talos scan --eval`. The same flags give the same
// bytes.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

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
	docs := fs.String("docs", "firewall/cmd/train/testdata/benign-docs.jsonl", "benign documents (JSON lines {id,text}) used as tool output")
	out := fs.String("out", "firewall/model.bin", "model file to write")
	seed := fs.Uint64("seed", 1, "seed of the shuffles and the synthetic tool outputs")
	lambda := fs.Float64("lambda", 0, "L2 strength (0 = the default of train.TrainConfig)")
	epochs := fs.Int("epochs", 0, "SGD epochs (0 = default)")
	window := fs.Int("window", 0, "sliding window in words (0 = default)")
	synth := fs.Int("synthetic", 0, "synthetic indirect injections to add (0 = default, -1 = none)")
	toolEval := fs.String("tool-eval", "", "also write the held-out synthetic tool-output cases to this JSONL file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dev, err := readFile(*data)
	if err != nil {
		return err
	}
	benign, err := readFile(*docs)
	if err != nil {
		return err
	}
	model, rep, err := train.Train(train.TrainConfig{Seed: *seed, Lambda: *lambda, Epochs: *epochs, Window: *window, SyntheticAttacks: *synth}, dev, benign)
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
	return nil
}

func readFile(path string) ([]train.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return train.ReadRecords(f)
}
