// Package firewall detects prompt injection in text before it reaches a model.
package firewall
