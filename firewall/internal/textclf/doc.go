// Package textclf is the firewall's statistical text classifier: feature
// hashing of word unigrams, word bigrams and character 3–5-grams, a logistic
// regression model stored in a compact binary file, window scoring through
// prefix sums, and the reproducible trainer used by firewall/cmd/train.
//
// It is internal: the firewall package is its only user; the feature layout
// and the file format may change with the model version.
package textclf
