package firewall

import "strings"

// Evasions that hide an instruction from a scanner while a model still
// reads it: digits and symbols for letters ("1gn0r3 4ll pr3v10u5"), the
// text written backwards, and ROT13. AltViews undoes each one the text
// shows signs of, so the rules and the classifier see the instruction.

// viewWords are common English words: a view that contains clearly more
// of them than the text itself is how the text was meant to be read.
var viewWords = map[string]bool{
	"the": true, "and": true, "you": true, "your": true, "all": true, "to": true, "of": true, "is": true,
	"are": true, "me": true, "tell": true, "previous": true, "instructions": true, "ignore": true,
	"system": true, "prompt": true, "password": true, "now": true, "any": true, "rules": true,
	"reveal": true, "forget": true, "disregard": true, "secret": true, "with": true, "what": true,
}

func countViewWords(s string) int {
	n := 0
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z') }) {
		if viewWords[w] {
			n++
		}
	}
	return n
}

// leetMap maps the digits and symbols used for letters back to them.
var leetMap = [256]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '8': 'b', '@': 'a', '$': 's', '!': 'i'}

// leetWords counts the words that mix letters with leet digits.
func leetWords(s string) int {
	n := 0
	for _, w := range strings.Fields(s) {
		letters, leet := false, false
		for i := 0; i < len(w); i++ {
			c := w[i]
			switch {
			case c >= 'a' && c <= 'z':
				letters = true
			case leetMap[c] != 0:
				leet = true
			}
		}
		if letters && leet {
			n++
		}
	}
	return n
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
// ordinary prose far more often than puzzles, and the views cost a scan
// each.
const maxViewBytes = 16 << 10

// AltViews returns the re-readings of the normalised text norm that read
// more like English than norm does: leetspeak mapped back to letters (when
// at least two words mix letters and such digits), norm reversed, and norm
// in ROT13. A view counts when it holds at least two more common English
// words than norm. Ordinary text yields none.
func AltViews(norm string) []string {
	if len(norm) > maxViewBytes {
		return nil
	}
	base := countViewWords(norm)
	var out []string
	try := func(v string) {
		if countViewWords(v) >= base+2 {
			out = append(out, v)
		}
	}
	if leetWords(norm) >= 2 {
		try(unleet(norm))
	}
	try(reverse(norm))
	try(rot13(norm))
	return out
}
