//go:build !race

package firewall

import (
	"bytes"
	"os"
	"testing"

	"github.com/talos-ironclad/talos/internal/testenv"
)

// TestCommittedModelIsReproducible retrains on the development data, as the
// README's command does, and compares with the embedded weights. It needs
// ../shared/eval/firewall/dev.jsonl beside the repository and takes a few
// seconds, but minutes under the race detector, so this file is built
// only without -race: `make test` runs it in a second, non-race step.
func TestCommittedModelIsReproducible(t *testing.T) {
	devFile := "../../shared/eval/firewall/dev.jsonl"
	f, err := os.Open(devFile)
	if err != nil {
		if testenv.Required() {
			t.Fatalf("development data not found at %s (CI keeps shared/ beside the repository): %v", devFile, err)
		}
		t.Skipf("development data not found at %s: %v", devFile, err)
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
		t.Fatal("retraining with seed 1 does not reproduce firewall/model.bin: run go run ./firewall/cmd/train -data ../shared/eval/firewall/dev.jsonl -out firewall/model.bin -seed 1 and commit")
	}
}
