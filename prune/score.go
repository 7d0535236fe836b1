package prune

import (
	"math"
	"time"

	"github.com/talos-ironclad/talos/rag"
)

// Retention score weights: priority
// weighs most.
const (
	WeightFrequency = 0.30
	WeightAge       = 0.25
	WeightPriority  = 0.35
	WeightRecency   = 0.10
)

// Score constants.
const (
	// MaxFrequency caps access_count: frequency = min(count, 1000)/1000.
	MaxFrequency = 1000
	// AgeHalfLife: age score = exp(−ln2 · age / 30 days).
	AgeHalfLife = 30 * 24 * time.Hour
)

// PriorityScore maps a priority to its score: permanent 1.0,
// high 0.9, session 0.5, temporary 0.1, auto 0.5; anything else (normal,
// unknown, missing) 0.5.
func PriorityScore(p rag.Priority) float64 {
	switch p {
	case rag.PriorityPermanent:
		return 1.0
	case rag.PriorityHigh:
		return 0.9
	case rag.PrioritySession:
		return 0.5
	case rag.PriorityTemporary:
		return 0.1
	case rag.PriorityAuto:
		return 0.5
	}
	return 0.5
}

// FrequencyScore is min(count, 1000) / 1000 (lifetime count; the spec's
// unused 168 h window is not applied). Negative counts give 0.
func FrequencyScore(count int64) float64 {
	if count <= 0 {
		return 0
	}
	return float64(min(count, MaxFrequency)) / MaxFrequency
}

// AgeScore is exp(−λ·age) with a 30-day half-life, clamped to [0,1]; a
// future creation time (clock skew) gives 1. A zero created time (unknown
// age) gives 0: a memory of unknown age is treated as old.
func AgeScore(created, now time.Time) float64 {
	if created.IsZero() {
		return 0
	}
	age := now.Sub(created)
	if age <= 0 {
		return 1
	}
	return clamp01(math.Exp(-math.Ln2 * age.Seconds() / AgeHalfLife.Seconds()))
}

// RecencyScore is 1 / (1 + ln(1 + hours since last access)), clamped to
// [0,1]; a future time gives 1, a zero time (never known) 0.
func RecencyScore(last, now time.Time) float64 {
	if last.IsZero() {
		return 0
	}
	h := now.Sub(last).Hours()
	if h <= 0 {
		return 1
	}
	return clamp01(1 / (1 + math.Log1p(h)))
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// Score is the retention score of a memory at now:
// 0.30·frequency + 0.25·age + 0.35·priority + 0.10·recency.
// Recency uses last_accessed_at, or created_at for a memory never accessed.
func Score(md rag.Metadata, now time.Time) float64 { return scoreMemory(md.Memory(), now) }

func scoreMemory(m rag.Memory, now time.Time) float64 {
	last := m.LastAccessedAt
	if last.IsZero() {
		last = m.CreatedAt
	}
	return WeightFrequency*FrequencyScore(m.AccessCount) +
		WeightAge*AgeScore(m.CreatedAt, now) +
		WeightPriority*PriorityScore(m.Priority) +
		WeightRecency*RecencyScore(last, now)
}

// Retention guarantees: the minimum age before a
// memory of each priority may be pruned. Permanent is never pruned.
const (
	GuaranteeHigh      = 365 * 24 * time.Hour
	GuaranteeSession   = 30 * 24 * time.Hour
	GuaranteeNormal    = 30 * 24 * time.Hour // normal: 30 days
	GuaranteeTemporary = 1 * 24 * time.Hour
	GuaranteeAuto      = 7 * 24 * time.Hour
	GuaranteeUnknown   = 7 * 24 * time.Hour
)

// Guarantee returns the minimum retention of a priority; never is true for
// permanent.
func Guarantee(p rag.Priority) (min time.Duration, never bool) {
	switch p {
	case rag.PriorityPermanent:
		return 0, true
	case rag.PriorityHigh:
		return GuaranteeHigh, false
	case rag.PrioritySession:
		return GuaranteeSession, false
	case rag.PriorityNormal:
		return GuaranteeNormal, false
	case rag.PriorityTemporary:
		return GuaranteeTemporary, false
	case rag.PriorityAuto:
		return GuaranteeAuto, false
	}
	return GuaranteeUnknown, false
}

// Protected reports whether a memory may not be pruned at now: permanent,
// or younger than its priority's guarantee. A memory
// without created_at is not protected by age.
func Protected(md rag.Metadata, now time.Time) bool { return protectedMemory(md.Memory(), now) }

func protectedMemory(m rag.Memory, now time.Time) bool {
	g, never := Guarantee(m.Priority)
	if never {
		return true
	}
	if m.CreatedAt.IsZero() {
		return false
	}
	return now.Sub(m.CreatedAt) < g
}
