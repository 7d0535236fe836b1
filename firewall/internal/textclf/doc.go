// Package textclf is the firewall's statistical text classifier: feature
// hashing of word unigrams, word bigrams and character 3–5-grams, logistic
// regression models (optionally fitted on naive-Bayes-scaled features)
// stored in a compact binary file, one model or a set of models by source
// group, window scoring through prefix sums, and the reproducible trainer
// used by firewall/cmd/train.
//
// It is internal: the firewall package is its only user; the feature layout
// and the file format may change with the model version.
package textclf
