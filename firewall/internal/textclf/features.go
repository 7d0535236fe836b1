package textclf

import (
	"cmp"
	"slices"
	"unicode/utf8"
)

// Feature-hashing seeds: one per feature family so that a word and a
// character n-gram with the same bytes land in different buckets.
const (
	seedWord    uint32 = 0x9747b28c
	seedBigram  uint32 = 0x85ebca6b
	seedChar    uint32 = 0xc2b2ae35
	seedSpecial uint32 = 0x27d4eb2f
	fnvPrime    uint32 = 16777619
	mixMul      uint32 = 0x9E3779B1
)

// Features holds the hashed features of one text, grouped by word: the
// features of word k are Hashes[WordStart[k]:WordStart[k+1]] (after
// Extract; ExtractWeighted keeps only their weights' sums, in Sums).
// Character n-grams are attributed to the word in which they end (or the
// space after it). SentStart lists the word indexes at which a sentence or
// line starts (always including 0 when there is a word).
type Features struct {
	Hashes    []uint32
	WordStart []int32
	SentStart []int32
	// Offsets holds the byte offset in the text of each word's first byte.
	Offsets []int32
	// WordHashes holds each word's FNV-1a hash (offset basis 2166136261,
	// prime 16777619) over its bytes, before the word-feature seed is mixed
	// in, so that callers can look words up without hashing them again.
	WordHashes []uint32
	// Sums is filled instead of Hashes by ExtractWeighted: Sums[k] is the
	// sum of the weights, in the model given to ExtractWeighted, of the
	// features of words 0…k-1 (len(Sums) = Words()+1). It is empty after
	// Extract.
	Sums []int64
	// weighted is the model of Sums, nil after Extract.
	weighted *Model
}

// Reset empties f, keeping its buffers.
func (f *Features) Reset() {
	f.Hashes = f.Hashes[:0]
	f.WordStart = f.WordStart[:0]
	f.SentStart = f.SentStart[:0]
	f.Offsets = f.Offsets[:0]
	f.WordHashes = f.WordHashes[:0]
	f.Sums = f.Sums[:0]
	f.weighted = nil
}

// Words returns the number of words.
func (f *Features) Words() int {
	if len(f.WordStart) == 0 {
		return 0
	}
	return len(f.WordStart) - 1
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= utf8.RuneSelf || c >= 'A' && c <= 'Z'
}

// Extract hashes the features of text (already normalised by the firewall)
// into f, which is reset first. The result is closed by a final WordStart
// entry so that f.WordStart has Words()+1 entries.
func Extract(f *Features, text string) {
	f.Reset()
	var (
		inWord     bool
		wordHash   uint32
		prevWord   uint32
		havePrev   bool
		newSent    = true
		sentMarker bool // a sentence-ending mark was seen since the last word
	)
	// Local copies keep the hot loop's slices in registers. hs is sized
	// for the worst case up front (3 n-grams per byte, and a word and a
	// bigram feature per word, at most (len+1)/2 words), so the loop
	// stores by index instead of appending: that drops a capacity check
	// and a length update per feature.
	hs := f.Hashes
	need := 4*len(text) + 8
	if cap(hs) < need {
		hs = make([]uint32, 0, need+need/4)
	}
	hs = hs[:need]
	n := 0
	// p1…p4 are the bytes before text[i] (p1 = text[i-1]), kept in
	// registers for the character n-gram hashes instead of reloading them
	// from text with a bounds check each.
	var p1, p2, p3, p4 uint32
	// A pseudo word 0 collects n-grams before the first word.
	words := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if isWordByte(c) {
			if !inWord {
				// a new word starts: close the previous one
				if words > 0 {
					f.WordHashes = append(f.WordHashes, wordHash)
					hs[n] = wordHash ^ seedWord
					n++
					if havePrev {
						hs[n] = (prevWord * fnvPrime) ^ wordHash ^ seedBigram
						n++
					}
					prevWord, havePrev = wordHash, true
				}
				f.WordStart = append(f.WordStart, int32(n))
				f.Offsets = append(f.Offsets, int32(i))
				if newSent || sentMarker {
					f.SentStart = append(f.SentStart, int32(words))
					newSent, sentMarker = false, false
				}
				words++
				inWord = true
				wordHash = 2166136261
			}
			wordHash = (wordHash ^ uint32(c)) * fnvPrime
		} else {
			inWord = false
			if c == '\\' && i+1 < len(text) && (text[i+1] == 'n' || text[i+1] == 't' || text[i+1] == 'r') {
				// an escaped line break or tab inside JSON or a string
				// literal: a separator, not the start of a word
				if text[i+1] != 't' {
					sentMarker = true
				}
				// both bytes are skipped (no n-grams end at them), but
				// they are still the bytes before the next one
				p4, p3, p2, p1 = p2, p1, uint32(c), uint32(text[i+1])
				i++
				continue
			}
			switch c {
			case '\n':
				sentMarker = true
			case '.', '!', '?', ';', ':':
				if i+1 >= len(text) || text[i+1] == ' ' || text[i+1] == '\n' {
					sentMarker = true
				}
			}
		}
		// character n-grams ending at i, for n = 3, 4, 5: the hash runs
		// backwards from byte i
		cu := uint32(c)
		if i >= 4 {
			h := (seedChar ^ cu) * fnvPrime
			h = (h ^ p1) * fnvPrime
			h = (h ^ p2) * fnvPrime
			h3 := h + 2
			h = (h ^ p3) * fnvPrime
			h4 := h + 3
			h = (h ^ p4) * fnvPrime
			out := hs[n : n+3]
			out[0], out[1], out[2] = h3, h4, h+4
			n += 3
		} else if i >= 2 {
			h := seedChar
			for k := 0; k <= i; k++ {
				h = (h ^ uint32(text[i-k])) * fnvPrime
				if k >= 2 {
					hs[n] = h + uint32(k)
					n++
				}
			}
		}
		p4, p3, p2, p1 = p3, p2, p1, cu
	}
	if words > 0 {
		f.WordHashes = append(f.WordHashes, wordHash)
		hs[n] = wordHash ^ seedWord
		n++
		if havePrev {
			hs[n] = (prevWord * fnvPrime) ^ wordHash ^ seedBigram
			n++
		}
	}
	hs = hs[:n]
	f.Hashes = hs
	if words == 0 {
		// no word at all: one pseudo word holds every n-gram
		f.WordStart = append(f.WordStart[:0], 0)
		f.SentStart = append(f.SentStart[:0], 0)
		f.Offsets = append(f.Offsets[:0], 0)
		f.WordHashes = append(f.WordHashes[:0], 2166136261) // the empty word
	} else if f.WordStart[0] != 0 {
		// n-grams before the first word belong to the first word
		f.WordStart[0] = 0
	}
	f.WordStart = append(f.WordStart, int32(len(f.Hashes)))
}

// ExtractWeighted is Extract for scoring with m: instead of storing every
// feature hash in f.Hashes (which it leaves empty), it looks each one up in
// m's weights as it goes and stores the per-word prefix sums in f.Sums; the
// other fields are those Extract sets. Best and AddSpecials accept the
// result; the trainer, which needs the hashes, uses Extract.
//
// Extract writes about three hashes per byte of text (768 KB for a 64 KB
// text, more than the core's L2 cache) and Best then read them back for
// the look-ups; this does the look-ups in the same pass. The loop is
// Extract's with the stores replaced by look-ups: TestExtractWeighted
// checks that the two agree.
func ExtractWeighted(f *Features, text string, m *Model) {
	f.Reset()
	f.weighted = m
	w := m.W[:1<<m.Bits]
	mask := uint32(len(w) - 1)
	shift := uint32(32-m.Bits) & 31
	var (
		inWord     bool
		wordHash   uint32
		prevWord   uint32
		havePrev   bool
		newSent    = true
		sentMarker bool
	)
	var sum int64 // weights of the features so far
	n := 0        // features so far
	var p1, p2, p3, p4 uint32
	words := 0
	for i := 0; i < len(text); i++ {
		c := text[i]
		if isWordByte(c) {
			if !inWord {
				if words > 0 {
					f.WordHashes = append(f.WordHashes, wordHash)
					sum += int64(w[((wordHash^seedWord)*mixMul)>>shift&mask])
					n++
					if havePrev {
						sum += int64(w[(((prevWord*fnvPrime)^wordHash^seedBigram)*mixMul)>>shift&mask])
						n++
					}
					prevWord, havePrev = wordHash, true
				}
				f.WordStart = append(f.WordStart, int32(n))
				f.Sums = append(f.Sums, sum)
				f.Offsets = append(f.Offsets, int32(i))
				if newSent || sentMarker {
					f.SentStart = append(f.SentStart, int32(words))
					newSent, sentMarker = false, false
				}
				words++
				inWord = true
				wordHash = 2166136261
			}
			wordHash = (wordHash ^ uint32(c)) * fnvPrime
		} else {
			inWord = false
			if c == '\\' && i+1 < len(text) && (text[i+1] == 'n' || text[i+1] == 't' || text[i+1] == 'r') {
				if text[i+1] != 't' {
					sentMarker = true
				}
				p4, p3, p2, p1 = p2, p1, uint32(c), uint32(text[i+1])
				i++
				continue
			}
			switch c {
			case '\n':
				sentMarker = true
			case '.', '!', '?', ';', ':':
				if i+1 >= len(text) || text[i+1] == ' ' || text[i+1] == '\n' {
					sentMarker = true
				}
			}
		}
		cu := uint32(c)
		if i >= 4 {
			h := (seedChar ^ cu) * fnvPrime
			h = (h ^ p1) * fnvPrime
			h = (h ^ p2) * fnvPrime
			h3 := h + 2
			h = (h ^ p3) * fnvPrime
			h4 := h + 3
			h = (h ^ p4) * fnvPrime
			sum += int64(w[(h3*mixMul)>>shift&mask]) + int64(w[(h4*mixMul)>>shift&mask]) + int64(w[((h+4)*mixMul)>>shift&mask])
			n += 3
		} else if i >= 2 {
			h := seedChar
			for k := 0; k <= i; k++ {
				h = (h ^ uint32(text[i-k])) * fnvPrime
				if k >= 2 {
					sum += int64(w[((h+uint32(k))*mixMul)>>shift&mask])
					n++
				}
			}
		}
		p4, p3, p2, p1 = p3, p2, p1, cu
	}
	if words > 0 {
		f.WordHashes = append(f.WordHashes, wordHash)
		sum += int64(w[((wordHash^seedWord)*mixMul)>>shift&mask])
		n++
		if havePrev {
			sum += int64(w[(((prevWord*fnvPrime)^wordHash^seedBigram)*mixMul)>>shift&mask])
			n++
		}
	}
	if words == 0 {
		f.WordStart = append(f.WordStart[:0], 0)
		f.Sums = append(f.Sums[:0], 0)
		f.SentStart = append(f.SentStart[:0], 0)
		f.Offsets = append(f.Offsets[:0], 0)
		f.WordHashes = append(f.WordHashes[:0], 2166136261)
	} else {
		// n-grams before the first word belong to the first word
		f.WordStart[0] = 0
		f.Sums[0] = 0
	}
	f.WordStart = append(f.WordStart, int32(n))
	f.Sums = append(f.Sums, sum)
}

// AddSpecial appends a hand-made feature (for example a pattern family that
// matched) to word w of f. It must be called after Extract; it moves
// features, so it is meant for a handful of calls per text; AddSpecials adds
// several in one pass.
func AddSpecial(f *Features, w int, id uint32) {
	if f.weighted != nil {
		AddSpecials(f, []Special{{W: w, ID: id}})
		return
	}
	w = max(0, min(w, f.Words()-1))
	at := f.WordStart[w+1]
	f.Hashes = append(f.Hashes, 0)
	copy(f.Hashes[at+1:], f.Hashes[at:])
	f.Hashes[at] = (id * fnvPrime) ^ seedSpecial
	for k := w + 1; k < len(f.WordStart); k++ {
		f.WordStart[k]++
	}
}

// Special is a hand-made feature id for word W (see AddSpecial).
type Special struct {
	W  int
	ID uint32
}

// AddSpecials has the effect of calling AddSpecial(f, s.W, s.ID) for each s
// of sp in order, in one pass: AddSpecial moves every feature after the
// word, so a long text with several specials had its tail moved once per
// special (a few percent of a 64 KB scan). sp is sorted in place.
func AddSpecials(f *Features, sp []Special) {
	if len(sp) == 0 {
		return
	}
	words := f.Words()
	for i := range sp {
		sp[i].W = max(0, min(sp[i].W, words-1))
	}
	// stable: the specials of one word keep their order
	slices.SortStableFunc(sp, func(a, b Special) int { return cmp.Compare(a.W, b.W) })
	if wm := f.weighted; wm != nil {
		// ExtractWeighted: no hashes to insert; WordStart[k] and Sums[k]
		// move by the count and the weights of the specials of words
		// before k
		j := 0
		var add int64
		for k := 1; k < len(f.WordStart); k++ {
			for j < len(sp) && sp[j].W < k {
				add += int64(wm.W[Bucket((sp[j].ID*fnvPrime)^seedSpecial, wm.Bits)])
				j++
			}
			f.WordStart[k] += int32(j)
			f.Sums[k] += add
		}
		return
	}
	m := len(sp)
	old := len(f.Hashes)
	f.Hashes = slices.Grow(f.Hashes, m)[:old+m]
	// From the end backwards: the features after word w's group move by
	// the number of specials at or before w; w's specials go at the end of
	// its group.
	hi, dst := old, old+m
	for j := m - 1; j >= 0; {
		w := sp[j].W
		end := int(f.WordStart[w+1])
		dst -= hi - end
		copy(f.Hashes[dst:], f.Hashes[end:hi])
		for ; j >= 0 && sp[j].W == w; j-- {
			dst--
			f.Hashes[dst] = (sp[j].ID * fnvPrime) ^ seedSpecial
		}
		hi = end
	}
	// WordStart[k] moves by the number of specials of words before k
	j := 0
	for k := 1; k < len(f.WordStart); k++ {
		for j < m && sp[j].W < k {
			j++
		}
		f.WordStart[k] += int32(j)
	}
}

// Bucket maps a feature hash to one of 1<<bits buckets.
func Bucket(h uint32, bits uint8) uint32 {
	return (h * mixMul) >> (32 - bits)
}
