//go:build !race

package train

import (
	"bytes"
	"os"
	"testing"
)

// TestCommittedModelIsReproducible retrains on the development data, as the
// README's command does, and compares with firewall/model.bin, the weights
// the firewall embeds. It reads only files of the repository (the
// development set under firewall/cmd/train/testdata) and takes a few
// seconds, but minutes under the race detector, so this file is built
// only without -race: `make test` runs it in a second, non-race step.
func TestCommittedModelIsReproducible(t *testing.T) {
	f, err := os.Open("../cmd/train/testdata/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ReadRecords(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.Open("../cmd/train/testdata/benign-docs.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ReadRecords(g)
	g.Close()
	if err != nil {
		t.Fatal(err)
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
		t.Fatal("retraining with seed 1 does not reproduce firewall/model.bin: run go run ./firewall/cmd/train -out firewall/model.bin -seed 1 and commit")
	}
}
