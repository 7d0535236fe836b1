// Package tlog writes the daemon's three log tiers as JSON lines
// (in logs/tier1, logs/tier2 and logs/tier3 under the home directory):
//
//   - tier 1, audit: security events (sockproxy denials, lockdowns,
//     promotions…). Never deleted by any cleanup. Each line is hash-chained:
//     it starts with "seq" (1, 2, 3, …) and "prev", the hex SHA-256 of the
//     previous line's bytes (64 zeros for the first line). The chain goes on
//     across rotations and restarts (Open reads the last line written), and
//     Verify reports the first edited, deleted or reordered line with its
//     file and line number (`talos logs verify`).
//   - tier 2, operations, at Info and above;
//   - tier 3, debug and trace, at Debug and above.
//
// Files rotate by size at 10 MB (DefaultMaxSize; size-based, never
// time-based): <prefix>.log is renamed to <prefix>.NNNNNN.log and a new
// one starts. Prefixes are audit, ops and debug. Rotated files may later be
// gzip-compressed (<prefix>.NNNNNN.log.gz); Verify reads those too.
//
// Every record logged with a context that carries a correlation ID
// (WithCorrelationID, NewCorrelationID: 16 hex characters) gets a
// "correlation_id" field, so one request can be followed through all tiers.
// WithCorrelation adds the same to any other handler (a console, say).
//
// Typical use in the daemon:
//
//	set, err := tlog.OpenSet(tlog.Dirs{Tier1: l.LogDir(1), Tier2: l.LogDir(2), Tier3: l.LogDir(3)}, tlog.Options{})
//	defer set.Close()
//	log := set.Logger()                 // inject into packages (tier 2 + tier 3)
//	tlog.Audit(ctx, set.Audit, "sockproxy_denied", slog.String("path", p))
//
// The chain alone cannot show that the newest lines were cut off, so tier 1
// also keeps an anchor file, audit.head, with the seq and hash of the newest
// line; Verify compares the end of the log with it, and a restart after a
// cut continues from the anchor so the gap stays visible. Lines without an
// anchor are not a break but a warning (Report.Warnings): the last lines
// deleted together with audit.head would look the same. One process writes
// a tier-1 directory at a time (enforced with a lock file).
package tlog
