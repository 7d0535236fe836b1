// Package redisstore is a breaker.Store over Redis (go-redis v9), so an open
// breaker survives a restart of the daemon and several processes share one
// breaker: failures of every process count in one sliding window (a sorted
// set scored by time) and trips are kept in a hash that breaker.Sync reads.
//
// Keys, for a breaker named N under the default prefix:
//
//	talos:breaker:N:failures   ZSET, score = failure time (unix µs)
//	talos:breaker:N:state      HASH state, until_us, step, updated_us
//	talos:breaker:N:probes:P   ZSET of the half-open period P (the open
//	                           period's end, unix µs): member = probe id,
//	                           score = lease end (unix µs), 2^53 = succeeded
//
// Probe slots are taken and counted by Lua scripts, so the half-open quota
// and the successes that close the breaker are shared by every process.
// All keys expire on their own (the failures after one window, the state
// after its open period plus a day, a period's probes after a day), so
// nothing piles up. A nightly Redis
// flush must keep the prefix (dream's keep-list).
package redisstore
