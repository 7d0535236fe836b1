package textclf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Model is a logistic regression over hashed features; it serves the
// source groups it has thresholds for. A window of the text
// with feature count n and weight sum s (over its features) scores
// Bias + Scale*s/sqrt(n) as a logit; the feature vector is the count vector
// divided by sqrt(n), which makes window scores computable from prefix sums.
type Model struct {
	Bits   uint8   // log2 of the number of buckets
	Window int     // sliding-window length in words
	Stride int     // sliding-window step in words
	Bias   float32 // intercept (logit)
	Scale  float32 // weight quantisation step: weight = Scale * W[i]
	W      []int16 // quantised weights, len 1<<Bits
	// Thresholds holds the calibrated logit threshold per source name
	// ("user", "tool", …): a text scores as an attack when its best window
	// logit is >= the threshold.
	Thresholds map[string]float32
}

const (
	magic   = "TFWM"
	version = 1
	// setVersion is the version of a file that holds several models.
	setVersion = 2
	// maxSetModels bounds the models of one set file.
	maxSetModels = 16
)

// MarshalSet encodes models as one file: "TFWM", u16 version 2, u16 n,
// then n × (u32 length, a model in the single-model format). Each model
// serves the source groups it has thresholds for, so it refuses what
// UnmarshalSet would: no models or more than 16, a nil model, a model with
// no thresholds, or a group in two models.
func MarshalSet(models []*Model) ([]byte, error) {
	if len(models) < 1 || len(models) > maxSetModels {
		return nil, fmt.Errorf("model set: %d models; allowed: 1 to %d", len(models), maxSetModels)
	}
	seen := map[string]bool{}
	for i, m := range models {
		if m == nil || len(m.Thresholds) == 0 {
			return nil, fmt.Errorf("model set: model %d has no thresholds, so it would serve no source group", i+1)
		}
		for g := range m.Thresholds {
			if seen[g] {
				return nil, fmt.Errorf("model set: source group %q has two models", g)
			}
			seen[g] = true
		}
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(magic)
	b.Write(le.AppendUint16(nil, setVersion))
	b.Write(le.AppendUint16(nil, uint16(len(models))))
	for _, m := range models {
		mb := m.Marshal()
		b.Write(le.AppendUint32(nil, uint32(len(mb))))
		b.Write(mb)
	}
	return b.Bytes(), nil
}

// UnmarshalSet decodes a file of MarshalSet, or a single model's file (a
// set of one). It returns the models by source group: every group (the
// names of the models' thresholds) must belong to exactly one model.
func UnmarshalSet(data []byte) (map[string]*Model, error) {
	le := binary.LittleEndian
	if len(data) < 8 || string(data[:4]) != magic {
		return nil, errors.New("model file: bad magic: not a firewall model (want \"TFWM\")")
	}
	var models []*Model
	switch v := le.Uint16(data[4:]); v {
	case version:
		m, err := Unmarshal(data)
		if err != nil {
			return nil, err
		}
		models = append(models, m)
	case setVersion:
		n := int(le.Uint16(data[6:]))
		if n < 1 || n > maxSetModels {
			return nil, fmt.Errorf("model file: %d models; allowed: 1 to %d", n, maxSetModels)
		}
		p := 8
		for i := range n {
			if len(data)-p < 4 {
				return nil, fmt.Errorf("model file: model %d of %d is missing", i+1, n)
			}
			l32 := le.Uint32(data[p:])
			p += 4
			if uint64(l32) > uint64(len(data)-p) {
				return nil, fmt.Errorf("model file: model %d of %d is truncated", i+1, n)
			}
			l := int(l32) // fits: at most len(data)
			m, err := Unmarshal(data[p : p+l])
			if err != nil {
				return nil, fmt.Errorf("model %d of %d: %w", i+1, n, err)
			}
			models = append(models, m)
			p += l
		}
		if p != len(data) {
			return nil, fmt.Errorf("model file: %d bytes after the last model", len(data)-p)
		}
	default:
		return nil, fmt.Errorf("model file: version %d, this build reads versions %d and %d", v, version, setVersion)
	}
	byGroup := map[string]*Model{}
	for i, m := range models {
		if len(m.Thresholds) == 0 {
			return nil, fmt.Errorf("model file: model %d has no thresholds, so it serves no source group", i+1)
		}
		for g := range m.Thresholds {
			if byGroup[g] != nil {
				return nil, fmt.Errorf("model file: source group %q has two models", g)
			}
			byGroup[g] = m
		}
	}
	return byGroup, nil
}

// Marshal encodes m in the model file format (little-endian):
// "TFWM", u16 version, u8 bits, u8 0, u16 window, u16 stride, f32 bias,
// f32 scale, u16 n, n × (u8 len, name, f32 threshold) in name order, then
// 1<<bits int16 weights.
func (m *Model) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	le := binary.LittleEndian
	var tmp [4]byte
	le.PutUint16(tmp[:2], version)
	b.Write(tmp[:2])
	b.WriteByte(m.Bits)
	b.WriteByte(0)
	le.PutUint16(tmp[:2], uint16(m.Window))
	b.Write(tmp[:2])
	le.PutUint16(tmp[:2], uint16(m.Stride))
	b.Write(tmp[:2])
	le.PutUint32(tmp[:], math.Float32bits(m.Bias))
	b.Write(tmp[:])
	le.PutUint32(tmp[:], math.Float32bits(m.Scale))
	b.Write(tmp[:])
	names := make([]string, 0, len(m.Thresholds))
	for n := range m.Thresholds {
		names = append(names, n)
	}
	slices.Sort(names)
	le.PutUint16(tmp[:2], uint16(len(names)))
	b.Write(tmp[:2])
	for _, n := range names {
		b.WriteByte(byte(len(n)))
		b.WriteString(n)
		le.PutUint32(tmp[:], math.Float32bits(m.Thresholds[n]))
		b.Write(tmp[:])
	}
	for _, w := range m.W {
		le.PutUint16(tmp[:2], uint16(w))
		b.Write(tmp[:2])
	}
	return b.Bytes()
}

// Unmarshal decodes a model file.
func Unmarshal(data []byte) (*Model, error) {
	le := binary.LittleEndian
	fail := func(what string) (*Model, error) {
		return nil, fmt.Errorf("model file: %s", what)
	}
	if len(data) < 22 || string(data[:4]) != magic {
		return fail("bad magic: not a firewall model (want \"TFWM\")")
	}
	if v := le.Uint16(data[4:]); v != version {
		return fail(fmt.Sprintf("version %d, this build reads version %d", v, version))
	}
	m := &Model{Bits: data[6], Thresholds: map[string]float32{}}
	if m.Bits < 8 || m.Bits > 24 {
		return fail(fmt.Sprintf("bits %d outside 8…24", m.Bits))
	}
	m.Window = int(le.Uint16(data[8:]))
	m.Stride = int(le.Uint16(data[10:]))
	m.Bias = math.Float32frombits(le.Uint32(data[12:]))
	m.Scale = math.Float32frombits(le.Uint32(data[16:]))
	n := int(le.Uint16(data[20:]))
	p := 22
	for range n {
		if p >= len(data) {
			return fail("truncated threshold table")
		}
		l := int(data[p])
		p++
		if p+l+4 > len(data) {
			return fail("truncated threshold table")
		}
		name := string(data[p : p+l])
		p += l
		m.Thresholds[name] = math.Float32frombits(le.Uint32(data[p:]))
		p += 4
	}
	size := 1 << m.Bits
	if len(data)-p != 2*size {
		return fail(fmt.Sprintf("weights are %d bytes, want %d", len(data)-p, 2*size))
	}
	m.W = make([]int16, size)
	for i := range m.W {
		m.W[i] = int16(le.Uint16(data[p+2*i:]))
	}
	if m.Window <= 0 || m.Stride <= 0 {
		return nil, errors.New("model file: window and stride must be positive")
	}
	return m, nil
}

// Quantize converts float weights to the model's int16 form.
func Quantize(w []float64) (q []int16, scale float32) {
	maxAbs := 0.0
	for _, x := range w {
		maxAbs = max(maxAbs, math.Abs(x))
	}
	if maxAbs == 0 {
		return make([]int16, len(w)), 1
	}
	s := maxAbs / 32767
	q = make([]int16, len(w))
	for i, x := range w {
		q[i] = int16(math.Round(x / s))
	}
	return q, float32(s)
}

// Span is a window of words [Start, End).
type Span struct{ Start, End int }

// MinWindowWords is the fewest words a sentence window has: shorter
// sentences are covered by the sliding windows and the whole text only.
const MinWindowWords = 3

// AppendSpans appends the windows of f that the scorer looks at: the whole
// text, each sentence of at least MinWindowWords words unless it is the
// whole text, and, when the text is
// longer than window words, sliding windows of window words every stride
// words, the last one ending at the text's end.
func AppendSpans(dst []Span, f *Features, window, stride int) []Span {
	words := f.Words()
	if words == 0 {
		return dst
	}
	dst = append(dst, Span{0, words})
	for i, st := range f.SentStart {
		start, end := int(st), words
		if i+1 < len(f.SentStart) {
			end = int(f.SentStart[i+1])
		}
		if end-start >= MinWindowWords && (start != 0 || end != words) {
			dst = append(dst, Span{start, end})
		}
	}
	if words > window {
		for a := 0; ; a += stride {
			if a+window >= words {
				dst = append(dst, Span{words - window, words})
				break
			}
			dst = append(dst, Span{a, a + window})
		}
	}
	return dst
}

// Scorer scores windows of one text; it reuses its buffers across texts.
type Scorer struct {
	prefix []int64
	spans  []Span
}

// Scoring says how Best weighs the spans of a text against each other.
// The zero value takes the best span's logit as it is.
type Scoring struct {
	// Contrast, when positive, lowers the best logit by Contrast times the
	// mean logit of the other spans (with the bias), so that a span must
	// stand out from its text.
	Contrast float64
	// PartPenalty is subtracted from the logit of every span but the whole
	// text: a sentence or window must score that much higher than the whole
	// text to decide.
	PartPenalty float64
	// LengthPenalty is subtracted from the best logit once for every
	// doubling of the number of spans beyond FreeSpans: each span is a
	// chance for a benign text to cross a threshold, so a long text must
	// show more to be flagged than one of the length thresholds were
	// calibrated on.
	LengthPenalty float64
	// FreeSpans is how many spans a text may have before LengthPenalty
	// applies.
	FreeSpans int
	// MaxLengthPenalty caps the length penalty (0: no cap), so that
	// padding a text with more ordinary text buys an attacker at most
	// that much.
	MaxLengthPenalty float64
}

// Best returns the highest span logit of f under sc and its span (see
// AppendSpans and Scoring).
//
// f comes from Extract or from ExtractWeighted with the same m (Best panics
// for another model).
func (s *Scorer) Best(m *Model, f *Features, sc Scoring) (float64, Span) {
	words := f.Words()
	if words == 0 || f.WordStart[words] == 0 {
		return float64(m.Bias), Span{}
	}
	prefix := f.Sums
	if f.weighted == nil {
		s.prefix = slices.Grow(s.prefix[:0], words+1)[:words+1]
		weightPrefixSums(s.prefix, m.W[:1<<m.Bits], m.Bits, f.Hashes, f.WordStart[:words+1])
		prefix = s.prefix
	} else if f.weighted != m {
		panic("textclf: Best with a model other than ExtractWeighted's")
	}
	s.spans = AppendSpans(s.spans[:0], f, m.Window, m.Stride)
	bestLogit, bestRaw := math.Inf(-1), 0.0
	var best Span
	var lsum float64
	cnt := 0
	for i, sp := range s.spans {
		n := f.WordStart[sp.End] - f.WordStart[sp.Start]
		if n <= 0 {
			continue
		}
		raw := float64(m.Scale) * float64(prefix[sp.End]-prefix[sp.Start]) / math.Sqrt(float64(n))
		lsum += raw
		cnt++
		l := raw
		if i > 0 {
			l -= sc.PartPenalty
		}
		if l > bestLogit {
			bestLogit, bestRaw, best = l, raw, sp
		}
	}
	if cnt > 2 && sc.Contrast != 0 {
		// contrast with the rest of the text: a window stands out less in a
		// text whose other windows score high too
		mean := (lsum - bestRaw) / float64(cnt-1)
		bestLogit -= sc.Contrast * (float64(m.Bias) + mean)
	}
	if cnt > sc.FreeSpans && sc.LengthPenalty != 0 {
		p := sc.LengthPenalty * math.Log2(float64(cnt)/float64(max(1, sc.FreeSpans)))
		if sc.MaxLengthPenalty > 0 {
			p = min(p, sc.MaxLengthPenalty)
		}
		bestLogit -= p
	}
	return float64(m.Bias) + bestLogit, best
}

// weightPrefixSums sets prefix[k] to the sum of the weights of the features
// of words 0…k-1 (len(prefix) = len(starts) = words+1).
//
// It does one weight look-up per feature, about three per byte of text, and
// was a fifth of a scan. The look-ups are in sumWeights, a single loop of
// its own, so that the compiler keeps its running sum and index in
// registers: as a nested loop inside Best they were spilled to the stack,
// which put a store and a reload into every iteration's dependency chain.
func weightPrefixSums(prefix []int64, w []int16, bits uint8, hashes []uint32, starts []int32) {
	shift := uint32(32-bits) & 31
	var sum int64
	for k := 0; k+1 < len(starts); k++ {
		prefix[k] = sum
		sum += sumWeights(w, hashes[starts[k]:starts[k+1]], shift)
	}
	prefix[len(starts)-1] = sum
}

// sumWeights returns the sum of w[Bucket(h, bits)] over hashes, where
// len(w) = 1<<bits and shift = 32-bits. shift is masked with 31 (a no-op,
// it is 8…24) so that the shift compiles to one instruction without Go's
// shift-by-32 guard; the bucket is masked with len(w)-1 (also a no-op).
// It is not inlined because inlining brings the spills back.
//
//go:noinline
func sumWeights(w []int16, hashes []uint32, shift uint32) int64 {
	mask := uint32(len(w) - 1)
	shift &= 31
	var sum int64
	for _, h := range hashes {
		sum += int64(w[(h*mixMul)>>shift&mask])
	}
	return sum
}

// WholeLogit returns the logit of the whole text only.
func (m *Model) WholeLogit(f *Features) float64 {
	if len(f.Hashes) == 0 {
		return float64(m.Bias)
	}
	var sum int64
	for _, h := range f.Hashes {
		sum += int64(m.W[Bucket(h, m.Bits)])
	}
	return float64(m.Bias) + float64(m.Scale)*float64(sum)/math.Sqrt(float64(len(f.Hashes)))
}

// Sigmoid maps a logit to a probability.
func Sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
