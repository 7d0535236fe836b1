// Package redisstore is a breaker.Store over Redis (go-redis v9), so an open
// breaker survives a restart of the daemon and several processes share one
// breaker: failures of every process count in one sliding window (a sorted
// set scored by time) and trips are kept in a hash that breaker.Sync reads.
//
// Keys, for a breaker named N under the default prefix:
//
//	talos:breaker:N:failures   ZSET, score = failure time (unix µs)
//	talos:breaker:N:state      HASH state, until_us, step, updated_us
//
// Both keys expire on their own (the failures after one window, the state
// after its open period plus a day), so nothing piles up. A nightly Redis
// flush must keep the prefix (dream's keep-list).
package redisstore
