// Package breakertest is the conformance suite every breaker.Store must pass
// (the in-memory store of package breaker and breaker/redisstore run it), so a
// user's own Store can be checked the same way:
//
//	func TestMyStore(t *testing.T) {
//		breakertest.Run(t, func(t *testing.T) breaker.Store { return newMyStore(t) })
//	}
package breakertest
