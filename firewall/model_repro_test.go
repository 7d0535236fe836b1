//go:build !race

package firewall

import (
	"bytes"
	"os"
	"testing"
)

// TestCommittedModelIsReproducible retrains on the development data, as the
// README's command does, and compares with the embedded weights. It needs
// the committed development set (cmd/train/testdata/dev.jsonl) and takes a few
// seconds, but minutes under the race detector, so this file is built
// only without -race: `make test` runs it in a second, non-race step.
func TestCommittedModelIsReproducible(t *testing.T) {
	f, err := os.Open("cmd/train/testdata/dev.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ReadRecords(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.Open("cmd/train/testdata/benign-docs.jsonl")
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
	if !bytes.Equal(model, embeddedModel) {
		t.Fatal("retraining with seed 1 does not reproduce firewall/model.bin: run go run ./firewall/cmd/train -out firewall/model.bin -seed 1 and commit")
	}
}
