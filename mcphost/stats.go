package mcphost

import (
	"maps"
	"sync"
)

// Stats are the host's counters since New, for metrics.
type Stats struct {
	// Calls counts every Call; Allowed those that returned a result.
	Calls, Allowed uint64
	// Denied counts stopped calls by the step that stopped them.
	Denied map[Step]uint64
	// Redactions counts secrets replaced, in arguments and results.
	Redactions uint64
	// Truncated counts results cut to MaxResultBytes; Flagged those the
	// ResultScanner flagged.
	Truncated, Flagged uint64
	// ServerFailures counts starts that failed, crashes and timeouts.
	ServerFailures uint64
}

// stats holds the live counters behind Stats.
type stats struct {
	mu sync.Mutex
	s  Stats
}

func (st *stats) call(rec AuditRecord, flagged bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.s.Calls++
	if rec.Allowed {
		st.s.Allowed++
	} else {
		if st.s.Denied == nil {
			st.s.Denied = map[Step]uint64{}
		}
		st.s.Denied[rec.Step]++
	}
	for _, r := range rec.ArgRedactions {
		st.s.Redactions += uint64(r.Count)
	}
	for _, r := range rec.ResultRedactions {
		st.s.Redactions += uint64(r.Count)
	}
	if rec.Truncated {
		st.s.Truncated++
	}
	if flagged {
		st.s.Flagged++
	}
}

func (st *stats) failure() {
	st.mu.Lock()
	st.s.ServerFailures++
	st.mu.Unlock()
}

// Stats returns a copy of the host's counters.
func (h *Host) Stats() Stats {
	h.stats.mu.Lock()
	defer h.stats.mu.Unlock()
	s := h.stats.s
	s.Denied = maps.Clone(s.Denied)
	return s
}
