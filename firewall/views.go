package firewall

import "strings"

// Evasions that hide an instruction from a scanner while a model still
// reads it: digits and symbols for letters ("1gn0r3 4ll pr3v10u5"), the
// text written backwards, ROT13, and words spelled out one letter at a time
// ("i g n o r e", "i.g.n.o.r.e"). AltViews undoes each one the text shows
// signs of, so the rules and the classifier see the instruction.
//
// Deciding costs one pass over the text without allocating: the common
// words of each re-reading are counted word by word, and a re-reading is
// only built when it qualifies. Spelled-out letters are the exception: a
// text with four or more one-character words in a row is joined first and
// kept only if the joined words are common ones.

// viewWords are common English words: a view that contains clearly more
// of them than the text itself is how the text was meant to be read.
var viewWords = map[string]bool{
	"the": true, "and": true, "you": true, "your": true, "all": true, "to": true, "of": true, "is": true,
	"are": true, "me": true, "tell": true, "previous": true, "instructions": true, "ignore": true,
	"system": true, "prompt": true, "password": true, "now": true, "any": true, "rules": true,
	"reveal": true, "forget": true, "disregard": true, "secret": true, "with": true, "what": true,
}

// viewFilter holds (length, first letter, last letter) of every view word,
// so most words are ruled out without a map lookup.
var viewFilter = func() (f [((maxViewWord+1)*26*26 + 63) / 64]uint64) {
	for w := range viewWords {
		k := viewKey(len(w), w[0], w[len(w)-1])
		f[k/64] |= 1 << (k % 64)
	}
	return f
}()

func viewKey(n int, first, last byte) int { return (n*26+int(first-'a'))*26 + int(last-'a') }

// isViewWord reports whether the lower-case word b is a view word.
func isViewWord(b []byte) bool {
	n := len(b)
	if n < 2 || n > maxViewWord || b[0] < 'a' || b[0] > 'z' || b[n-1] < 'a' || b[n-1] > 'z' {
		return false
	}
	k := viewKey(n, b[0], b[n-1])
	return viewFilter[k/64]&(1<<(k%64)) != 0 && viewWords[string(b)]
}

// leetMap maps the digits and symbols used for letters back to them.
var leetMap = [256]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '@': 'a', '$': 's', '!': 'i'}

// maxViewWord is the longest word looked up; longer ones are no common word.
const maxViewWord = 16

// viewCounts counts, in one pass over norm, the common words of norm
// itself, of norm reversed, of norm in ROT13 and of norm with leet digits
// mapped back, and the words that mix letters with leet digits. The
// re-readings count only their changed words of three letters or more
// ("m3" is an assembler register far more often than "me").
//
// spelled is the longest run of one-character words with exactly one
// separator byte between them ("i g n o r e", "p.a.s.s").
func viewCounts(norm string) (plain, rev, rot, leet, leetMixed, spelled int) {
	var buf [maxViewWord]byte
	n := len(norm)
	run, lastEnd := 0, -2
	for i := 0; i < n; {
		c := norm[i]
		if !(c >= 'a' && c <= 'z') && leetMap[c] == 0 {
			i++
			continue
		}
		j := i
		letters, digits := false, false
		for j < n {
			c := norm[j]
			if c >= 'a' && c <= 'z' {
				letters = true
			} else if leetMap[c] != 0 {
				digits = true
			} else {
				break
			}
			j++
		}
		w := norm[i:j]
		if len(w) == 1 && i == lastEnd+1 && run > 0 {
			run++
		} else if len(w) == 1 {
			run = 1
		} else {
			run = 0
		}
		spelled = max(spelled, run)
		lastEnd = j
		i = j
		if len(w) > maxViewWord {
			continue
		}
		if letters && !digits {
			if isViewWord([]byte(w)) {
				plain++
			}
			if len(w) < 3 {
				continue // "ot", "fo": too many short words read as common ones backwards
			}
			for k := 0; k < len(w); k++ {
				buf[len(w)-1-k] = w[k]
			}
			if isViewWord(buf[:len(w)]) {
				rev++
			}
			for k := 0; k < len(w); k++ {
				buf[k] = 'a' + (w[k]-'a'+13)%26
			}
			if isViewWord(buf[:len(w)]) {
				rot++
			}
		}
		if digits && len(w) >= 3 {
			if letters {
				leetMixed++
			}
			for k := 0; k < len(w); k++ {
				if m := leetMap[w[k]]; m != 0 {
					buf[k] = m
				} else {
					buf[k] = w[k]
				}
			}
			if isViewWord(buf[:len(w)]) {
				leet++
			}
		}
	}
	return
}

func unleet(s string) string {
	b := []byte(s)
	for i, c := range b {
		if m := leetMap[c]; m != 0 {
			b[i] = m
		}
	}
	return string(b)
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

func rot13(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

// maxViewBytes bounds the text AltViews re-reads: long documents are
// ordinary prose far more often than puzzles.
const maxViewBytes = 16 << 10

// AltViews returns the re-readings of the normalised text norm that read
// more like English than norm does: words spelled out one letter at a time
// joined again (see unspell), leetspeak mapped back to letters (when
// at least two words of three characters or more mix letters and such
// digits and two of them become common English words), norm reversed, and
// norm in ROT13 (when they hold at least two more common English words of
// three letters or more than norm holds of any length). Ordinary text yields
// none, and deciding allocates nothing unless the text has four or more
// one-character words in a row.
func AltViews(norm string) []string {
	if len(norm) > maxViewBytes {
		return nil
	}
	plain, rev, rot, leet, mixed, spelled := viewCounts(norm)
	var out []string
	if spelled >= minSpelled {
		if v, ok := unspell(norm); ok {
			out = append(out, v)
		}
	}
	if mixed >= 2 && leet >= 2 {
		out = append(out, unleet(norm))
	}
	if rev >= plain+2 {
		out = append(out, reverse(norm))
	}
	if rot >= plain+2 {
		out = append(out, rot13(norm))
	}
	return out
}

// minSpelled is the fewest one-letter words in a row that unspell joins:
// ordinary text has "a" and "i", and initials ("j. r. r. tolkien"), but
// rarely four in a row.
const minSpelled = 4

// isSpellSep reports whether c may separate the letters of a spelled-out
// word.
func isSpellSep(c byte) bool {
	switch c {
	case ' ', '.', '-', '_', '*', '+', '|', '/', ',', '\n':
		return true
	}
	return false
}

// unspell joins every run of at least minSpelled one-character words (a
// letter or a leet digit, each separated from the next by exactly one
// separator byte) into letters, splits the letters again at the common
// words of three letters or more it finds in them (white space between
// spelled-out words is collapsed by Normalize, so "i g n o r e   a l l"
// arrives as one run), and reports whether the runs gave at least two
// common words or one of five letters or more.
func unspell(norm string) (string, bool) {
	var b strings.Builder
	b.Grow(len(norm))
	found, long := 0, false
	n := len(norm)
	isChar := func(c byte) bool { return c >= 'a' && c <= 'z' || leetMap[c] != 0 }
	single := func(i int) bool {
		return i < n && isChar(norm[i]) && (i == 0 || !isChar(norm[i-1])) && (i+1 == n || !isChar(norm[i+1]))
	}
	for i := 0; i < n; {
		// a run: single characters at i, i+2, i+4, … with one separator
		// between each
		j := i
		var letters []byte
		for single(j) {
			c := norm[j]
			if m := leetMap[c]; m != 0 {
				c = m
			}
			letters = append(letters, c)
			if j+2 < n && isSpellSep(norm[j+1]) && single(j+2) {
				j += 2
				continue
			}
			j++
			break
		}
		if len(letters) < minSpelled {
			if j == i {
				j = i + 1
			}
			b.WriteString(norm[i:j])
			i = j
			continue
		}
		words := segment(letters)
		for k, w := range words {
			if k > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			if isViewWord([]byte(w)) {
				found++
				long = long || len(w) >= 5
			}
		}
		i = j
	}
	return b.String(), found >= 2 || long
}

// segment splits letters at the longest common words of three letters or
// more, scanning left to right; letters between such words stay together.
func segment(letters []byte) []string {
	var out []string
	start := 0 // of the pending unknown letters
	for i := 0; i < len(letters); {
		w := 0
		for l := min(maxViewWord, len(letters)-i); l >= 3; l-- {
			if isViewWord(letters[i : i+l]) {
				w = l
				break
			}
		}
		if w == 0 {
			i++
			continue
		}
		if start < i {
			out = append(out, string(letters[start:i]))
		}
		out = append(out, string(letters[i:i+w]))
		i += w
		start = i
	}
	if start < len(letters) {
		out = append(out, string(letters[start:]))
	}
	return out
}
