// Package train builds the firewall's statistical classifier: it reads
// labelled records (JSON lines), assigns each to a train, calibration or
// test split by a hash of its id, fits the model on the train split,
// calibrates a threshold per source group on the calibration split and
// returns the model file that firewall.Config.Model accepts (the firewall
// embeds one trained by `go run ./firewall/cmd/train -seed 1`). Evaluate
// measures a firewall over labelled records. The same inputs and seed give
// the same model bytes.
package train
