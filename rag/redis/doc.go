// Package redis is the rag.History on Redis (go-redis v9): each session is a
// list of JSON messages under "talos:history:<session>", trimmed to the last
// N on every append and expiring TTL after the last message. Append is one
// MULTI/EXEC transaction (RPUSH, LTRIM, PEXPIRE), so concurrent appends never
// leave more than N messages.
package redis
