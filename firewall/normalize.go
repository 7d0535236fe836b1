package firewall

import (
	"encoding/base64"
	"encoding/hex"
	"html"
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/unicode/norm"
)

// MaxURLDecodeRounds is how many times one normalisation pass URL-decodes its
// input: at most 3 times, so nested encodings are undone but a hostile
// input cannot make it loop.
const MaxURLDecodeRounds = 3

// maxNormalizePasses bounds how often the whole pipeline is re-applied to
// reach a fixed point (so that Normalize is idempotent even when decoding one
// layer reveals another, for example "&amp;lt;" or "%252569").
const maxNormalizePasses = 32

// Normalize returns the canonical form of s that the rules and the classifier
// scan, in this order:
//
//  1. HTML unescape;
//  2. lenient URL decoding, repeated up to MaxURLDecodeRounds times
//     (malformed escapes such as "%zz" are kept as they are);
//  3. removal of zero-width, bidirectional and other invisible format
//     characters, and of C0 control characters other than whitespace;
//     Unicode tag characters (U+E0020…U+E007E, "ASCII smuggling") become the
//     ASCII characters they shadow;
//  4. Unicode NFKC (full-width letters become ASCII);
//  5. lower case;
//  6. folding of common homoglyphs (Cyrillic and Greek letters that look like
//     Latin ones) to their Latin look-alike, in words that mix them with
//     Latin letters or consist of look-alikes only (real Cyrillic and Greek
//     words, which hold other letters too, stay as they are);
//  7. every run of Unicode white space becomes one space, or one "\n" when
//     the run contains a line break (a deliberate departure from the spec,
//     which collapses line breaks too: keeping them keeps sentence and line
//     structure for the window scoring and stops ".*" in a rule from running
//     across lines);
//  8. trim.
//
// The pipeline is repeated until its output stops changing, so Normalize is
// idempotent: Normalize(Normalize(s)) == Normalize(s). Embedded base64 and
// hex blobs are not decoded here (see DecodeBlobs) because their alphabet is
// case-sensitive.
func Normalize(s string) string {
	for range maxNormalizePasses {
		if isNormalFast(s) {
			return s
		}
		t := normalizeOnce(s)
		if t == s || settled(t) {
			return t
		}
		s = t
	}
	return s
}

// settled reports whether a pass's output t needs no further pass: the last
// step (fold and collapse) is idempotent on its own, so another pass could
// only change t through an entity, an escape, an invisible character or a
// non-NFKC sequence.
func settled(t string) bool {
	if isPlainASCII(t) {
		// ASCII without control characters is NFKC and has nothing to strip
		return !mayDecode(t)
	}
	return !mayDecode(t) && !needsStrip(t) && isNFKC(t)
}

// isPlainASCII reports whether s is ASCII with no control characters other
// than white space.
func isPlainASCII(s string) bool {
	// eight bytes at a time (a scan calls this twice over the whole text)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !plainWord(load64(s, i)) {
			return false
		}
	}
	return isPlainASCIIBytes(s[i:])
}

// load64 returns the eight bytes s[i:i+8] as a little-endian word (one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// plainWord reports whether the eight bytes of x are all printable ASCII
// (0x20…0x7e) or ASCII white space (0x09…0x0d), the bytes isPlainASCIIBytes
// accepts. It tests them as one word (where the printable8 it replaces
// sent every word with a line break, one in five or so, to the byte loop).
func plainWord(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	// With every byte below 0x80, adding at most 0x77 carries into no other
	// byte, and the top bit of a byte of x+k*lo says byte+k >= 0x80.
	printable := (x + 0x60*lo) &^ (x + 0x01*lo) // >= 0x20 and < 0x7f
	space := (x + 0x77*lo) &^ (x + 0x72*lo)     // >= 0x09 and < 0x0e
	return x&hi == 0 && (printable|space)&hi == hi
}

func isPlainASCIIBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x7f || c < 0x20 && !isASCIISpace(c) {
			return false
		}
	}
	return true
}

// mayDecode reports whether t holds something HTML unescaping or URL
// decoding could change: an "&" followed by a letter or "#", or a "%"
// followed by two hex digits.
func mayDecode(t string) bool {
	// Two strings.IndexByte searches (vectorised) rather than one loop over
	// every byte: both bytes are rare in ordinary text.
	if mayUnescape(t) {
		return true
	}
	for s := t; ; {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			break
		}
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		s = s[i+1:]
	}
	return false
}

// mayUnescape reports whether html.UnescapeString could change t: every
// character reference starts with "&#" or "&" and a letter.
func mayUnescape(t string) bool {
	for s := t; ; {
		i := strings.IndexByte(s, '&')
		if i < 0 {
			return false
		}
		if i+1 < len(s) && (s[i+1] == '#' || s[i+1] >= 'a' && s[i+1] <= 'z' || s[i+1] >= 'A' && s[i+1] <= 'Z') {
			return true
		}
		s = s[i+1:]
	}
}

// isNormalFast reports whether s is ASCII text that no step of the pipeline
// would change; it lets the common case finish after one cheap scan.
func isNormalFast(s string) bool {
	if len(s) == 0 {
		return true
	}
	if s[0] == ' ' || s[0] == '\n' || s[len(s)-1] == ' ' || s[len(s)-1] == '\n' {
		return false
	}
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf, c == '%', c == '&', c >= 'A' && c <= 'Z', c == 0x7f:
			return false
		case c == ' ' || c == '\n':
			if prevSpace {
				return false
			}
			prevSpace = true
		case c < 0x20:
			return false
		default:
			prevSpace = false
		}
	}
	return true
}

// normalizeOnce applies the pipeline once.
func normalizeOnce(s string) string {
	return foldAndCollapse(unwrapOnce(s))
}

// unwrapOnce applies steps 1–4 of the pipeline once: the decoding and
// cleaning steps, which keep the case of the text.
func unwrapOnce(s string) string {
	s = unescapeOnce(s)
	if !isPlainASCII(s) {
		s = stripInvisible(s)
		if !isNFKC(s) {
			s = toNFKC(s)
		}
	}
	return s
}

// unescapeOnce applies steps 1 and 2 of the pipeline once: HTML unescape and
// up to MaxURLDecodeRounds rounds of URL decoding.
func unescapeOnce(s string) string {
	if mayUnescape(s) {
		// html.UnescapeString copies the text twice (to bytes and back)
		// as soon as it holds an "&", entity or not
		s = html.UnescapeString(s)
	}
	for range MaxURLDecodeRounds {
		if strings.IndexByte(s, '%') < 0 {
			break
		}
		t := urlDecodeLenient(s)
		if t == s {
			break
		}
		s = t
	}
	return s
}

// maxUnwrapPasses bounds how often Unwrap re-applies its steps.
const maxUnwrapPasses = 4

// Unwrap returns s with the first two steps of Normalize applied (HTML
// unescape, lenient URL decoding), repeated while they change it, at most
// maxUnwrapPasses times. It keeps the case of the text, so base64 and hex
// hidden under URL or HTML escapes ("%53%57%64…", "&#83;&#87;…") can still
// be decoded from its result (see DecodeBlobs). A text with no "&" entity or
// "%" escape is returned as it is after two byte searches.
func Unwrap(s string) string {
	for range maxUnwrapPasses {
		if !mayDecode(s) {
			return s
		}
		t := unescapeOnce(s)
		if t == s {
			return s
		}
		s = t
	}
	return s
}

// nextNonASCII returns the piece of s, from i on, that Unicode
// normalisation has to look at: [a, e) holds the first run of non-ASCII
// bytes at or after i and the ASCII byte before it (which may combine with
// what follows, as "e" with U+0301). It returns a = e = len(s) when s[i:] is
// ASCII.
//
// Every ASCII character is a starter that never combines with a character
// before it, so normalisation has a boundary before each (the norm package
// starts a segment there too): NFKC of s is s's ASCII outside these pieces
// with each piece's NFKC in its place, and s is NFKC when every piece is.
// isNFKC and toNFKC use that to step over ASCII eight bytes at a time,
// where norm goes byte by byte (three passes over every non-ASCII text).
// This holds for valid UTF-8; they hand a text with invalid UTF-8 to norm
// whole.
func nextNonASCII(s string, i int) (a, e int) {
	const hi = 0x8080808080808080
	for i+8 <= len(s) && load64(s, i)&hi == 0 {
		i += 8
	}
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return i, i
	}
	a, e = i, i+1
	if a > 0 {
		a--
	}
	for e < len(s) && s[e] >= utf8.RuneSelf {
		e++
	}
	return a, e
}

// isNFKC is norm.NFKC.IsNormalString(s) (see nextNonASCII).
func isNFKC(s string) bool {
	for i := 0; i < len(s); {
		a, e := nextNonASCII(s, i)
		if a == e {
			return true
		}
		if !utf8.ValidString(s[a:e]) {
			// norm's verdict on invalid UTF-8 depends on what comes
			// after it (Normalize never gets here: stripInvisible has
			// replaced it)
			return norm.NFKC.IsNormalString(s)
		}
		if !norm.NFKC.IsNormalString(s[a:e]) {
			return false
		}
		i = e
	}
	return true
}

// toNFKC is norm.NFKC.String(s) (see nextNonASCII).
func toNFKC(s string) string {
	b := make([]byte, 0, len(s)+len(s)/8)
	for i := 0; i < len(s); {
		a, e := nextNonASCII(s, i)
		b = append(b, s[i:a]...)
		if a == e {
			break
		}
		p := s[a:e]
		if !utf8.ValidString(p) {
			return norm.NFKC.String(s) // see isNFKC
		}
		if norm.NFKC.QuickSpanString(p) == len(p) {
			// normal already: AppendString would allocate a buffer to
			// find that out
			b = append(b, p...)
		} else {
			b = norm.NFKC.AppendString(b, p)
		}
		i = e
	}
	// b is not touched after this (see foldAndCollapse)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// urlDecodeLenient decodes %XX escapes and leaves malformed ones untouched,
// like Python's urllib.parse.unquote (Go's url.PathUnescape rejects them).
// "+" is kept (unquote, not unquote_plus). Decoded bytes that do not form
// valid UTF-8 are kept as they are and cleaned up by the later steps.
func urlDecodeLenient(s string) string {
	// Jumps from '%' to '%' with strings.IndexByte and copies the text
	// between escapes in one piece, instead of a loop over every byte.
	var b []byte
	done := 0 // s[:done] is in b (once b exists)
	for i := 0; ; {
		j := strings.IndexByte(s[i:], '%')
		if j < 0 {
			break
		}
		i += j
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			if b == nil {
				b = make([]byte, 0, len(s))
			}
			b = append(b, s[done:i]...)
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 3
			done = i
			continue
		}
		i++
	}
	if b == nil {
		return s
	}
	b = append(b, s[done:]...)
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// isInvisible reports format characters that render as nothing and are used
// to split words so that patterns miss them.
func isInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, // ZWSP, ZWNJ, ZWJ, LRM, RLM
		r >= 0x202A && r <= 0x202E, // bidi embeddings and overrides
		r >= 0x2060 && r <= 0x2064, // word joiner, invisible operators
		r >= 0x2066 && r <= 0x206F, // bidi isolates, deprecated format chars
		r == 0xFEFF, r == 0x00AD, r == 0x034F, r == 0x061C, r == 0x115F, r == 0x1160,
		r == 0x17B4, r == 0x17B5, r == 0x180E, r == 0x3164, r == 0xFFA0,
		r >= 0xFE00 && r <= 0xFE0F, // variation selectors
		r >= 0xE0100 && r <= 0xE01EF,
		r == 0xE0001, r == 0xE007F: // tag begin/cancel
		return true
	}
	return false
}

// stripInvisible removes invisible characters and C0 controls (other than
// white space), maps tag characters to ASCII and replaces invalid UTF-8.
func stripInvisible(s string) string {
	if !needsStrip(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteRune(r)
		case r < 0x20 && !isASCIISpace(byte(r)), r == 0x7f:
			// control character: removed (spec step 7)
		case r >= 0xE0020 && r <= 0xE007E:
			b.WriteByte(byte(r - 0xE0000))
		case isInvisible(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// needsStrip reports whether stripInvisible would change s.
func needsStrip(s string) bool {
	for i := 0; i < len(s); {
		// plain ASCII needs no stripping: skip it eight bytes at a time
		// (this runs twice over every non-ASCII text)
		if i+8 <= len(s) && plainWord(load64(s, i)) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && !isASCIISpace(c) || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r >= 0xE0020 && r <= 0xE007E || isInvisible(r) {
			return true
		}
		i += n
	}
	return false
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isLineBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0x2028 || r == 0x2029
}

// foldAndCollapse lower-cases, folds homoglyphs, collapses white space and
// trims, in one pass.
func foldAndCollapse(s string) string {
	b := make([]byte, 0, len(s))
	pendingSpace := byte(0) // ' ' or '\n' waiting to be written
	wordStart := -1         // start in b of the current word, -1 outside words
	var latin, lookalike, other bool
	endWord := func() {
		if wordStart >= 0 && lookalike && (latin || !other) {
			b = append(b[:wordStart], foldWord(b[wordStart:])...)
		}
		wordStart, latin, lookalike, other = -1, false, false, false
	}
	noFast := 0 // where foldASCII stopped at a non-ASCII byte: not tried again before it
	for i := 0; i < len(s); {
		c := s[i]
		if wordStart < 0 && i >= noFast && c < utf8.RuneSelf {
			// Outside a word (latin, lookalike and other are false) the
			// ASCII text up to the last white space before the next
			// non-ASCII byte has no homoglyph to fold: foldASCII does it
			// eight bytes at a time.
			j, nb, p, stop := foldASCII(b, s, i, pendingSpace)
			noFast = stop // the bytes before stop were looked at
			if j > i {
				i, b, pendingSpace = j, nb, p
				continue
			}
		}
		if c >= 'a' && c <= 'z' {
			// fast path: a run of lower-case ASCII letters
			j := i + 1
			for j < len(s) && s[j] >= 'a' && s[j] <= 'z' {
				j++
			}
			if pendingSpace != 0 {
				if len(b) > 0 {
					b = append(b, pendingSpace)
				}
				pendingSpace = 0
			}
			if wordStart < 0 {
				wordStart = len(b)
			}
			latin = true
			b = append(b, s[i:j]...)
			i = j
			continue
		}
		var r rune
		if c < utf8.RuneSelf {
			r = rune(c)
			i++
		} else {
			var n int
			r, n = utf8.DecodeRuneInString(s[i:])
			i += n
		}
		if r < utf8.RuneSelf && !isASCIISpace(byte(r)) || r >= utf8.RuneSelf && !unicode.IsSpace(r) {
			if pendingSpace != 0 {
				if len(b) > 0 {
					b = append(b, pendingSpace)
				}
				pendingSpace = 0
			}
			if r < utf8.RuneSelf {
				if r >= 'A' && r <= 'Z' {
					r += 'a' - 'A'
				}
				if r >= 'a' && r <= 'z' {
					if wordStart < 0 {
						wordStart = len(b)
					}
					latin = true
				} else if r < '0' || r > '9' {
					endWord()
				}
				b = append(b, byte(r))
				continue
			}
			r = unicode.ToLower(r)
			if unicode.IsLetter(r) || unicode.IsMark(r) {
				if wordStart < 0 {
					wordStart = len(b)
				}
				if _, ok := homoglyphs[r]; ok {
					lookalike = true
				} else if !unicode.IsMark(r) {
					other = true
				}
			} else {
				endWord()
			}
			b = utf8.AppendRune(b, r)
			continue
		}
		endWord()
		if isLineBreak(r) {
			pendingSpace = '\n'
		} else if pendingSpace == 0 {
			pendingSpace = ' '
		}
	}
	endWord()
	// b is not touched after this, so the string can share its bytes
	// instead of copying them (as strings.Builder does); the copy was a
	// tenth of this function's time.
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// foldASCII does foldAndCollapse's work on s[i:], starting outside a word
// with pending white space pending, up to the first non-ASCII byte. It
// returns the position after the last white space before that byte (or
// len(s) when there is none), b with the output up to there appended, the
// white space pending there, and the position of the non-ASCII byte
// (len(s) if none). When it returns i, nothing was done.
//
// Plain ASCII needs no homoglyph folding, and a word that goes on into
// non-ASCII text is left to the caller, which is why the work after the
// last white space is dropped. Eight bytes from ' ' to DEL with no space
// first and no two spaces in a row (most of ordinary prose) are lower-cased
// as one word: each of their spaces is already the collapsed form of
// itself.
func foldASCII(b []byte, s string, i int, pending byte) (int, []byte, byte, int) {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	ri, rn, rp := i, len(b), pending // the state after the last white space
	for i < len(s) {
		if i+8 <= len(s) {
			x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
				uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
			// no byte at or above 0x80, none below 0x20
			if x&hi == 0 && (x-0x20*lo)&^x&hi == 0 {
				// sp has the top bit of each space byte (exact: the
				// bytes are below 0x80, so adding 0x7f carries into no
				// other byte)
				y := x ^ 0x20*lo
				sp := ^((y&^hi + ^uint64(hi)) | y) & hi
				// a space at the start would join the pending white
				// space, two spaces would collapse: those take the byte
				// by byte way below
				if sp&0x80 == 0 && sp&(sp<<8) == 0 {
					if pending != 0 {
						if len(b) > 0 {
							b = append(b, pending)
						}
						pending = 0
					}
					// set 0x20 in the bytes from 'A' (0x41) to 'Z'
					// (0x5a): adding 0x3f sets the top bit from 0x41 on,
					// adding 0x25 from 0x5b on
					x |= ((x + 0x3f*lo) &^ (x + 0x25*lo) & hi) >> 2
					n0 := len(b)
					b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24), byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56))
					i += 8
					if sp != 0 {
						// each single space between two other bytes is
						// itself the collapsed white space; the last one
						// is where the caller may resume
						k := bits.Len64(sp)/8 - 1
						ri, rn, rp = i-8+k+1, n0+k, ' '
						if k == 7 {
							// a space at the end is pending
							b = b[:len(b)-1]
							pending = ' '
						}
					}
					continue
				}
			}
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			return ri, b[:rn], rp, i
		}
		i++
		if isASCIISpace(c) {
			if isLineBreak(rune(c)) {
				pending = '\n'
			} else if pending == 0 {
				pending = ' '
			}
			ri, rn, rp = i, len(b), pending
			continue
		}
		if pending != 0 {
			if len(b) > 0 {
				b = append(b, pending)
			}
			pending = 0
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return len(s), b, pending, len(s)
}

// foldWord replaces the homoglyphs of one word by their Latin look-alike. It
// is applied to words that mix Latin letters with look-alikes ("іgnоrе"), or
// consist of look-alikes only, and leaves real Cyrillic or Greek words alone.
func foldWord(w []byte) []byte {
	out := make([]byte, 0, len(w))
	for i := 0; i < len(w); {
		r, n := utf8.DecodeRune(w[i:])
		i += n
		if f, ok := homoglyphs[r]; ok {
			out = append(out, f)
			continue
		}
		out = utf8.AppendRune(out, r)
	}
	return out
}

// homoglyphs maps lower-case Cyrillic, Greek and other letters that look like
// Latin letters to those letters. Only look-alikes are listed: the goal is to
// undo "іgnоrе" (Cyrillic і, о, е), not to transliterate.
var homoglyphs = map[rune]byte{
	// Cyrillic
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'һ': 'h', 'і': 'i', 'ї': 'i', 'ј': 'j', 'к': 'k', 'ӏ': 'l',
	'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'ѕ': 's', 'т': 't', 'у': 'y', 'х': 'x', 'ԁ': 'd',
	'ԛ': 'q', 'ԝ': 'w', 'ѵ': 'v', 'ү': 'y', 'ɡ': 'g',
	// Greek
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't',
	'υ': 'u', 'χ': 'x', 'ϲ': 'c', 'ϳ': 'j', 'ς': 's',
	// Latin look-alikes
	'ı': 'i', 'ȷ': 'j', 'ɑ': 'a', 'ɩ': 'i', 'ʀ': 'r', 'ᴀ': 'a', 'ᴄ': 'c', 'ᴅ': 'd', 'ᴇ': 'e', 'ɢ': 'g',
	'ʜ': 'h', 'ɪ': 'i', 'ᴊ': 'j', 'ᴋ': 'k', 'ʟ': 'l', 'ᴍ': 'm', 'ɴ': 'n', 'ᴏ': 'o', 'ᴘ': 'p', 'ꜱ': 's',
	'ᴛ': 't', 'ᴜ': 'u', 'ᴠ': 'v', 'ᴡ': 'w', 'ʏ': 'y', 'ᴢ': 'z',
}

// Blob decoding limits.
const (
	minBase64Blob = 16 // shortest base64 run worth decoding (12 bytes)
	minHexBlob    = 16 // shortest hex run worth decoding (8 bytes)
	maxBlobs      = 16 // blobs decoded per input, to bound the work
	maxBlobDepth  = 5  // layers of encoding undone (base64 of base64 of …); maxBlobs bounds the work
)

// DecodeBlobs finds embedded base64 and hex blobs in s (the raw text, before
// Normalize, because base64 is case-sensitive) and returns the ones that
// decode to readable text, so that an instruction hidden as
// "aWdub3JlIGFsbCBwcmV2aW91cyBpbnN0cnVjdGlvbnM=" is scanned too. Hex may be
// one run ("69676e6f7265…") or byte pairs separated by single spaces or
// colons ("69 67 6e 6f…", "69:67:6e:6f…"). A decoded blob that itself holds
// a blob is decoded again, up to maxBlobDepth layers. Binary payloads (keys, hashes, images) are
// skipped: at least 90% of the decoded runes must be printable and the
// result valid UTF-8.
//
// When HTML unescaping or URL decoding changes s (see Unwrap), the blobs of
// the unwrapped text are added too (those not already found), so a blob
// written as "%53%57%64…" or "&#83;&#87;…" is decoded as well.
func DecodeBlobs(s string) []string {
	var out []string
	decodeBlobsInto(s, &out, maxBlobDepth)
	if u := Unwrap(s); u != s && len(out) < maxBlobs {
		found := len(out)
		var more []string
		decodeBlobsInto(u, &more, maxBlobDepth)
		for _, b := range more {
			if len(out) == maxBlobs {
				break
			}
			if !slices.Contains(out[:found], b) {
				out = append(out, b)
			}
		}
	}
	return out
}

func decodeBlobsInto(s string, out *[]string, depth int) {
	for i := 0; i < len(s) && len(*out) < maxBlobs; {
		var sepHex bool
		if i, sepHex = nextLongRun(s, i); i < 0 {
			return
		}
		if sepHex {
			e := i
			for e < len(s) && blobRunMask[s[e]]>>32 != 0 {
				e++
			}
			// A word of minBlobRun hex digits or more in the run is
			// base64's (or plain hex's): decode separated hex up to it
			// and go on there. Otherwise go on at the start of the word
			// the run ends in, which may be a base64 blob whose first
			// letters are hex digits ("… be aGVsbG8…"). Either word holds
			// no space or colon, so nextLongRun reports it as base64,
			// not as this run again.
			stop := longWordIn(s, i, e)
			decodeSeparatedHexInto(s, i, stop, out, depth)
			if stop == e {
				for stop > i && isBase64Char(s[stop-1]) {
					stop--
				}
				if stop == i {
					stop = e // (cannot happen: such a run is base64's)
				}
			}
			i = stop
			continue
		}
		j := i
		for j < len(s) && isBase64Char(s[j]) {
			j++
		}
		run := s[i:j]
		for j < len(s) && s[j] == '=' && j-i < len(run)+2 {
			j++
		}
		withPad := s[i:j]
		i = j
		if len(run) < minBase64Blob {
			continue
		}
		var dec string
		if allHex(run) && len(run) >= minHexBlob && len(run)%2 == 0 {
			if d, err := hex.DecodeString(run); err == nil && readable(d) {
				dec = string(d)
			}
		}
		if dec == "" && hasMixedBase64(run) {
			dec = decodeBase64(withPad)
		}
		if dec == "" {
			continue
		}
		*out = append(*out, dec)
		if depth > 1 {
			decodeBlobsInto(dec, out, depth-1)
		}
	}
}

// longWordIn returns the start of the first word (run of bytes other than
// space and colon) in s[from:to] at least minBlobRun long, or to.
func longWordIn(s string, from, to int) int {
	w := from
	for k := from; k < to; k++ {
		if s[k] == ' ' || s[k] == ':' {
			w = k + 1
		} else if k+1-w >= minBlobRun {
			return w
		}
	}
	return to
}

// minSepHexPairs is the fewest byte pairs of separated hex worth decoding
// (as many bytes as minHexBlob).
const minSepHexPairs = minHexBlob / 2

// decodeSeparatedHexInto decodes, in the run s[from:to] of hex digits,
// spaces and colons, the runs of at least minSepHexPairs hex byte pairs
// separated by one space or one colon each ("69 67 6e", "69:67:6e"), every
// pair a token of its own (not part of a longer word or number).
func decodeSeparatedHexInto(s string, from, to int, out *[]string, depth int) {
	for k := max(from+2, 2); k < to && k+2 < len(s) && len(*out) < maxBlobs; k++ {
		sep := s[k]
		if sep != ' ' && sep != ':' {
			continue
		}
		// a run starts with a pair ending at k that no word character
		// precedes, and another pair after the separator
		if !isHex(s[k-1]) || !isHex(s[k-2]) || k >= 3 && isAlnum(s[k-3]) || !hexPairAt(s, k+1) {
			continue
		}
		var b []byte
		j := k - 2
		for {
			b = append(b, unhex(s[j])<<4|unhex(s[j+1]))
			j += 2
			if j < len(s) && s[j] == sep && hexPairAt(s, j+1) {
				j++
				continue
			}
			break
		}
		k = j
		if len(b) < minSepHexPairs || !readable(b) {
			continue
		}
		dec := string(b)
		*out = append(*out, dec)
		if depth > 1 {
			decodeBlobsInto(dec, out, depth-1)
		}
	}
}

// hexPairAt reports whether s[p:p+2] are two hex digits that no word
// character follows.
func hexPairAt(s string, p int) bool {
	return p+1 < len(s) && isHex(s[p]) && isHex(s[p+1]) && (p+2 == len(s) || !isAlnum(s[p+2]))
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// nextLongRun returns the start of the first run in s[from:] (s[from] counts
// as the start of a run) that is either a run of base64 bytes at least
// minBlobRun long (sepHex false) or a run of hex digits, spaces and colons at
// least minSepHexRun long (sepHex true, where separated hex may be), or -1.
// Shorter runs (ordinary words) are never decoded, so decodeBlobsInto skips
// them here: both run lengths are counted in one word without a branch per
// byte (blobRunMask), where a loop that branched at every word's start and
// end was most of DecodeBlobs's time. A run that is both (plain hex) is
// reported as base64.
func nextLongRun(s string, from int) (start int, sepHex bool) {
	// the base64 count is in the low half of run, the separated-hex count
	// in the high half; both limits are 16, so a count reaches its limit
	// when its bit 4 is set
	const inc, reached = 1 | 1<<32, minBlobRun | minSepHexRun<<32
	run := uint64(0)
	for k := from; k < len(s); k++ {
		run = (run + inc) & blobRunMask[s[k]]
		if run&reached != 0 {
			if run&minBlobRun != 0 {
				return k + 1 - minBlobRun, false
			}
			return k + 1 - minSepHexRun, true
		}
	}
	return -1, false
}

// minBlobRun is the shortest base64 run decodeBlobsInto decodes (hex runs
// are base64 runs too); minSepHexRun is the shortest run of hex digits,
// spaces and colons it looks for separated hex in (minSepHexPairs pairs take
// 3*minSepHexPairs-1 = 23 bytes). nextLongRun needs both to be 16.
const (
	minBlobRun   = min(minBase64Blob, minHexBlob)
	minSepHexRun = 16
)

// nextLongRun tests bit 4 of each count: a compile error here means a limit
// is no longer 16.
var _ = [1]struct{}{}[minBlobRun-16+minSepHexRun-16]

// blobRunMask has, for each byte, all ones in its low half for the bytes of
// isBase64Char, and all ones in its high half for hex digits, space and
// colon; zeros elsewhere.
var blobRunMask = func() (t [256]uint64) {
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '-' || c == '_' {
			t[c] |= 0xffffffff
		}
		if isHex(byte(c)) || c == ' ' || c == ':' {
			t[c] |= 0xffffffff << 32
		}
	}
	return t
}()

func isBase64Char(c byte) bool { return uint32(blobRunMask[c]) != 0 }

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// hasMixedBase64 filters out runs that are plain words or numbers: real base64
// of text mixes cases or digits.
func hasMixedBase64(s string) bool {
	var lower, upper, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	return lower && upper || (lower || upper) && digit
}

func decodeBase64(s string) string {
	trimmed := strings.TrimRight(s, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		d, err := enc.DecodeString(trimmed)
		if err != nil {
			continue
		}
		if readable(d) {
			return string(d)
		}
	}
	return ""
}

// readable reports whether b is valid UTF-8 text with at most 10% of
// non-printable runes and at least a quarter of letters.
func readable(b []byte) bool {
	if len(b) < 6 || !utf8.Valid(b) {
		return false
	}
	var bad, total, letters int
	for _, r := range string(b) {
		total++
		if unicode.IsLetter(r) {
			letters++
		}
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			bad++
		}
	}
	return letters*4 >= total && bad*10 <= total
}
