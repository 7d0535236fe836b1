// Package features extracts the firewall classifier's features from
// normalised text: the hashed words and word pairs of textclf plus the hand
// features of attack families ("ignore … previous … instructions", a new
// task taking over, role-play, secrets, delimiters …). The firewall's scanner
// and its training pipeline both use it, so a model is always scored with
// the features it was trained on.
package features
