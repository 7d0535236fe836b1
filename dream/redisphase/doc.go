// Package redisphase is the dream cycle's Redis clean-up (the redis_flush
// phase), on go-redis.
//
// The spec deletes every key but five protected patterns, with KEYS; that
// would block Redis and wipe the state other packages keep there (open
// circuit breakers, chat sessions, VRAM leases). Here nothing is deleted
// unless its owner registered the prefix as disposable, and a protected
// prefix always wins over a disposable one:
//
//	c, err := redisphase.New(redisphase.Config{Disposable: []string{"talos:cache:"}}, rdb)
//	err = scheduler.Register(c.Phase()) // the redis_flush phase, 30 s
//
// Keys are found with SCAN (MATCH on the escaped prefix, COUNT 1,000) and
// deleted with UNLINK in batches of 1,000. DefaultProtected lists the
// prefixes that are always kept; a disposable prefix inside one of them is
// refused. Inside a cycle the SCAN position is checkpointed
// (dream.SaveProgress), so a killed cycle resumes where it stopped. The
// phase reports keys_scanned, keys_deleted, keys_protected and used memory
// before and after.
package redisphase
