// Package redact removes secrets from text the daemon shows or writes: URLs
// (URL), free-text messages that embed URLs or key=value credentials (Text),
// and operator-supplied values quoted in error messages (Value).
//
// It is the one place that decides what is secret, used by the
// configuration loader, the service probes, the boot runner, the health
// checks, the ready marker and the tier logs, so a credential blocked in one
// of them is blocked in all.
//
// URL keeps what an operator needs to recognise the address (scheme, user
// name next to a password, host, port, path, query parameter names and a few
// well-known harmless values such as sslmode) and replaces the rest with
// "<redacted>": the password, a lone user name (often a token, as in
// https://TOKEN@host), the value of every query parameter not known to be
// harmless, and any fragment. An address that does not parse as a URL is
// not echoed at all.
package redact
