// Package firewalltest has fakes for testing code that uses package
// firewall: an in-memory lockdown Store, a Notifier that records the unlock
// codes it is given, and RunStore, the conformance suite every
// firewall.Store implementation must pass.
package firewalltest
