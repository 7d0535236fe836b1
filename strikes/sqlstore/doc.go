// Package sqlstore keeps strikes, deprecations and the strike audit chain in
// SQLite or PostgreSQL through package sqldb. New applies its migrations
// (component "strikes" in talos_schema); updates are serialised across
// processes by SQLite's write lock or a PostgreSQL advisory lock, so two
// daemons on one database never give two strikes one number.
package sqlstore
