//go:build !race

package train

import (
	"bytes"
	"os"
	"testing"
)

// TestCommittedModelIsReproducible retrains on the development data and the
// benign tool-output corpora, as the README's command does, and compares
// with firewall/model.bin, the weights the firewall embeds. It reads only
// files of the repository (under firewall/cmd/train/testdata) and takes
// about a minute and a half (two models), but many under the race detector, so this file is built
// only without -race: `make test` runs it in a second, non-race step.
func TestCommittedModelIsReproducible(t *testing.T) {
	dev, err := ReadRecordsFile("../cmd/train/testdata/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var docs []Record
	for _, path := range []string{"../cmd/train/testdata/benign-docs.jsonl", "../cmd/train/testdata/benign-tool.jsonl.gz"} {
		recs, err := ReadRecordsFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, recs...)
	}
	model, _, err := Train(TrainConfig{Seed: 1}, dev, docs)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("../model.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(model, committed) {
		t.Fatal("retraining with seed 1 does not reproduce firewall/model.bin: run go run ./firewall/cmd/train -data firewall/cmd/train/testdata/dev.jsonl -out firewall/model.bin -seed 1 and commit")
	}
}
