package features

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/talos-ironclad/talos/firewall/internal/textclf"
)

// Hand features. Each family is a set of word sequences ("ignore … previous
// … instructions"); every match adds the family's feature to the word where
// it starts, and the classifier learns how much a family counts. Families
// are broader than the rules: they say "this looks like" rather than "this
// is" an attack. They are matched on the words of the normalised text (not
// with regular expressions), which keeps a 4 KB scan well under a
// millisecond.
//
// Syntax of a sequence: steps separated by spaces; a step is a list of
// alternative words separated by "|"; "~N" before a step lets up to N other
// words come before it (default 0: the next word). A word ending in "*"
// matches any word with that prefix.
var familySpecs = []struct {
	id    uint32
	seqs  []string
	punct string // for the urgency family: the word must be followed by one of these bytes
}{
	{id: 1, seqs: []string{ // ignore / disregard / forget … instructions
		"ignor*|disregard*|forget|forgot|override|skip|bypass|neglect|abandon|drop ~6 instruction*|prompt*|rules|directive*|guideline*|command*|context|constraint*|programming|direction*|task*|guidance|everything|above|restriction*",
		"stop ~1 following ~4 instruction*|rules|guideline*",
		"do ~1 not ~1 follow ~4 instruction*|rules|guideline*",
	}},
	{id: 2, seqs: []string{ // the same in German
		"ignorier*|vergiss|vergessen|missacht*|vernachlässig* ~6 anweisung*|befehl*|alles|vorherig*|informationen|aufgabe*|regeln|instruktion*",
	}},
	{id: 3, seqs: []string{ // a new task takes over
		"new|updated|real|actual|true|different|next|neue|neuen|nächste ~1 instruction*|task*|rules|directive*|orders|objective|mission|aufgabe*|anweisung*",
		"now|instead ~3 you|your ~1 will|must|should|task|job",
		"from ~0 now ~0 on",
	}},
	{id: 4, seqs: []string{ // reaching for the prompt, the password, secrets
		"system|initial|original|hidden|secret|previous|full|entire|complete ~1 prompt*|instruction*|configuration",
		"reveal|print|show|tell|give|repeat|output|spell|leak|share|write|display|disclose|list|encode|translate|reverse|say ~6 password*|secret*|prompt*|instruction*|passphrase|credential*|passwort|kennwort",
		"passwort|kennwort|geheimnis|passphrase",
	}},
	{id: 5, seqs: []string{ // role play, persona switching
		"you ~0 are ~0 now",
		"pretend*|roleplay*",
		"role ~0 play*",
		"stay ~1 in ~0 character",
		"act|answer|respond|reply ~0 as ~0 if|though|a|an|my",
		"du ~0 bist ~0 jetzt|nun",
		"stell ~0 dir ~0 vor",
		"tu ~0 so",
		"imagine ~0 you ~0 are",
	}},
	{id: 6, seqs: []string{ // jailbreak vocabulary
		"dan|jailbreak*|jailbroken|unfiltered|uncensored|unrestricted|amoral",
		"developer ~0 mode",
		"no|without|any ~2 restriction*|limits|filter*|censorship|boundaries|guideline*|ethic*|moral*",
		"anything ~0 now",
		"not ~0 bound ~0 by",
	}},
	{id: 8, seqs: []string{"important|urgent|attention|warning|achtung|note|alert|notice"}, punct: ":!"},
	{id: 9, seqs: []string{ // end of the document, start of orders
		"end ~1 of ~1 document|text|context|input|file|data|email|page",
		"ignore ~1 the ~0 user*",
		"do ~0 not ~2 tell|inform|mention ~2 user*|human|anyone",
		"without ~2 telling|informing ~2 user*|human|anyone",
		"ai|assistant|model|llm|agent|chatbot ~1 must|should|shall|needs",
	}},
}

// DelimiterPattern is the RE2 pattern (matched case-insensitively) of the
// delimiter family: chat-template tokens and fake system/instruction tags.
const DelimiterPattern = `<\|[a-z_]+\|>|\[/?(system|inst|instructions?)\]|</?(system|instructions?|admin)>|## ?(system|instructions?)\b|\n(system|assistant|user) ?:`

// familyIDBase keeps family feature ids away from small numbers.
const familyIDBase = 0xfa000000

// Calibration groups: the user's own text, and everything untrusted
// (tools, the web, memory, skills), which shares one model and threshold.
const (
	GroupUser = "user"
	GroupTool = "tool"
)

// Group is the calibration group of a source, named as the firewall's
// Source values are: "user" is GroupUser, anything else GroupTool.
func Group(source string) string {
	if source == GroupUser {
		return GroupUser
	}
	return GroupTool
}

// ScoringOf is how text of a calibration group is scored: UserScoring for
// GroupUser, ToolScoring otherwise.
func ScoringOf(group string) textclf.Scoring {
	if group == GroupUser {
		return UserScoring
	}
	return ToolScoring
}

// ToolScoring is how text from tools, the web, memory and skills is
// scored (see textclf.Scoring). Contrast 0.35: in a long tool output an
// attack stands out from the text around it, while a document that is about
// instructions or passwords scores high everywhere (0.35 had the best
// recall at 2% false positives on the calibration split among 0, 0.25,
// 0.35, 0.5 and 1). LengthPenalty 0.5 for
// every doubling of the spans beyond 32 (about 250 words): each span of a
// long output is one more chance for ordinary text to cross the threshold,
// so a long output must show more to be flagged; capped at 1 (reached at
// 128 spans, about 8 KB), so that padding an attack with more text buys no
// more than that.
var ToolScoring = textclf.Scoring{Contrast: 0.35, LengthPenalty: 0.5, FreeSpans: 32, MaxLengthPenalty: 1}

// UserScoring is how user prompts are scored. User prompts are short and
// often attacks from start to end, so they get no contrast; a sentence or
// window scores PartPenalty lower than the whole prompt, since the user
// threshold is calibrated on prompts and a long text a user pastes has
// many parts, each a chance to cross it.
var UserScoring = textclf.Scoring{PartPenalty: 1.5}

// delimiterFamily is the id of the regular-expression family.
const delimiterFamily = 7

// ClassMask is a set of up to 128 family steps: the classes one word
// belongs to.
type ClassMask [2]uint64

func (m ClassMask) has(b ClassMask) bool { return m[0]&b[0] != 0 || m[1]&b[1] != 0 }

type seqStep struct {
	bit ClassMask // the class bit of this step's words
	gap int       // words allowed before this step
}

// Families is the compiled matcher of the hand-feature families. It is
// read-only after Compile, so one value serves concurrent scans.
type Families struct {
	words    map[string]ClassMask // word -> class bits
	prefixes []struct {
		p   string
		bit ClassMask
	}
	seqs []struct {
		id    uint32
		steps []seqStep
		punct string
	}
	delim  Locator   // the delimiter family's matches
	firsts ClassMask // the bits of every sequence's first step
	// byFirst indexes prefixes by their first byte
	byFirst [256][]struct {
		p   string
		bit ClassMask
	}
	// wordSlots, wordEntries and prefix2 replace the look-ups in words and
	// byFirst on the hot path. Featurize asks for the classes of every word
	// of every text (about 700 per 4 KB), and the string-keyed map look-up
	// (hashing the string again, probing, comparing) was a tenth of a scan,
	// more so because common words ("a", "the", "you", "not") are family
	// words. wordSlots is an open-addressing table indexed by the word's
	// FNV-1a hash, which textclf.Extract has computed anyway: an empty slot
	// ends a miss without touching the text, and the word is compared only
	// when the hashes are equal. prefix2 has a bit for the first two bytes
	// of every prefix, so that most words skip the prefix list.
	wordSlots   []uint16 // wordSlotOf(h)… (linear probing) -> index+1 in wordEntries, 0 = empty
	wordEntries []wordEntry
	prefix2     [1 << 16 / 64]uint64
}

// wordEntry is one entry of families.words with its hash.
type wordEntry struct {
	h    uint32
	word string
	bits ClassMask
}

// FNV-1a parameters of wordHash (the same as textclf's word hash).
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// wordHash is FNV-1a over the bytes of w; textclf.Extract computes the same
// for every word (Features.WordHashes).
func wordHash(w string) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint32(w[i])) * fnvPrime
	}
	return h
}

// wordSlotBits sizes families.wordSlots: 2^10 slots (2 KB) for a few
// hundred words keeps it at most about a quarter full.
const wordSlotBits = 10

func wordSlotOf(h uint32) uint32 { return (h * 0x9E3779B1) >> (32 - wordSlotBits) }

// Locator returns the byte ranges of up to n matches of DelimiterPattern in
// norm, as regexp.Regexp.FindAllStringIndex does.
type Locator func(norm string, n int) [][]int

// Compile builds the matcher; it panics on a malformed spec (a
// programming error caught by the tests). delim finds the delimiter family;
// nil means Go's regexp over DelimiterPattern. The firewall passes its
// literal-prefiltered rule engine, which finds the same matches faster.
func Compile(delim Locator) *Families {
	f := &Families{words: map[string]ClassMask{}}
	nbit := 0
	for _, spec := range familySpecs {
		for _, seq := range spec.seqs {
			var steps []seqStep
			gap := 0
			for _, tok := range strings.Fields(seq) {
				if strings.HasPrefix(tok, "~") {
					n, err := strconv.Atoi(tok[1:])
					if err != nil {
						panic(fmt.Sprintf("firewall: family %d: bad gap %q", spec.id, tok))
					}
					gap = n
					continue
				}
				if nbit == 128 {
					panic("firewall: more than 128 family steps")
				}
				var bit ClassMask
				bit[nbit/64] = 1 << (nbit % 64)
				nbit++
				for _, w := range strings.Split(tok, "|") {
					if p, ok := strings.CutSuffix(w, "*"); ok {
						f.prefixes = append(f.prefixes, struct {
							p   string
							bit ClassMask
						}{p, bit})
						continue
					}
					m := f.words[w]
					m[0] |= bit[0]
					m[1] |= bit[1]
					f.words[w] = m
				}
				steps = append(steps, seqStep{bit: bit, gap: gap})
				gap = 0
			}
			f.seqs = append(f.seqs, struct {
				id    uint32
				steps []seqStep
				punct string
			}{familyIDBase + spec.id, steps, spec.punct})
		}
	}
	if delim == nil {
		delim = regexp.MustCompile("(?i)" + DelimiterPattern).FindAllStringIndex
	}
	f.delim = delim
	for _, q := range f.seqs {
		f.firsts[0] |= q.steps[0].bit[0]
		f.firsts[1] |= q.steps[0].bit[1]
	}
	for _, p := range f.prefixes {
		if len(p.p) < 2 {
			panic(fmt.Sprintf("firewall: family prefix %q is shorter than 2 bytes", p.p))
		}
		f.byFirst[p.p[0]] = append(f.byFirst[p.p[0]], p)
		k := uint32(p.p[0])<<8 | uint32(p.p[1])
		f.prefix2[k/64] |= 1 << (k % 64)
	}
	if 4*len(f.words) > 1<<wordSlotBits {
		panic("firewall: too many family words for wordSlots")
	}
	f.wordSlots = make([]uint16, 1<<wordSlotBits)
	ws := make([]string, 0, len(f.words))
	for w := range f.words {
		ws = append(ws, w)
	}
	sort.Strings(ws) // the table's layout does not depend on map order
	for _, w := range ws {
		h := wordHash(w)
		f.wordEntries = append(f.wordEntries, wordEntry{h, w, f.words[w]})
		i := wordSlotOf(h)
		for f.wordSlots[i] != 0 {
			i = (i + 1) & (1<<wordSlotBits - 1)
		}
		f.wordSlots[i] = uint16(len(f.wordEntries))
	}
	return f
}

// classes returns the class bits of the word of text that starts at byte a
// and whose wordHash is h (textclf.Extract computes it for every word).
func (f *Families) classes(text string, a int, h uint32) ClassMask {
	var c ClassMask
	w := "" // the word, found when needed
	for i := wordSlotOf(h); ; i = (i + 1) & (1<<wordSlotBits - 1) {
		e := f.wordSlots[i]
		if e == 0 {
			break
		}
		if x := &f.wordEntries[e-1]; x.h == h {
			w = wordAt(text, a)
			if x.word == w {
				c = x.bits
				break
			}
		}
	}
	// every prefix has at least 2 bytes (Compile checks)
	if a+1 >= len(text) || !isFeatureWordByte(text[a+1]) {
		return c
	}
	if k := uint32(text[a])<<8 | uint32(text[a+1]); f.prefix2[k/64]&(1<<(k%64)) == 0 {
		return c
	}
	if w == "" {
		w = wordAt(text, a)
	}
	for _, p := range f.byFirst[w[0]] {
		if strings.HasPrefix(w, p.p) {
			c[0] |= p.bit[0]
			c[1] |= p.bit[1]
		}
	}
	return c
}

// wordAt returns the word of text that starts at byte a.
func wordAt(text string, a int) string {
	end := a
	for end < len(text) && isFeatureWordByte(text[end]) {
		end++
	}
	return text[a:end]
}

// maxFamilyHits bounds the features one family sequence adds to one text.
const maxFamilyHits = 8

// Featurize extracts the classifier features of normalised text into f;
// cls is a reusable buffer for the words' class bits.
func Featurize(f *textclf.Features, fams *Families, norm string, cls *[]ClassMask) {
	textclf.Extract(f, norm)
	addFamilies(f, fams, norm, cls)
}

// FeaturizeWeighted is Featurize for scoring with m (see
// textclf.ExtractWeighted): f holds m's weight sums instead of the hashes.
func FeaturizeWeighted(f *textclf.Features, fams *Families, norm string, cls *[]ClassMask, m *textclf.Model) {
	textclf.ExtractWeighted(f, norm, m)
	addFamilies(f, fams, norm, cls)
}

// addFamilies adds the family features of norm to f, which holds norm's
// features from Extract or ExtractWeighted.
func addFamilies(f *textclf.Features, fams *Families, norm string, cls *[]ClassMask) {
	n := f.Words()
	if n == 0 {
		return
	}
	c := (*cls)[:0]
	for k := 0; k < n; k++ {
		// Extract hashed every word with wordHash already; the word's end
		// is looked for only when the filters let it through.
		c = append(c, fams.classes(norm, int(f.Offsets[k]), f.WordHashes[k]))
	}
	*cls = c
	type hit = textclf.Special
	var hits [16]hit
	nh := 0
	var found [64]uint8 // hits per sequence
	for k := 0; k < n && nh < len(hits); k++ {
		if c[k] == (ClassMask{}) || !c[k].has(fams.firsts) {
			continue
		}
		for si, seq := range fams.seqs {
			if !c[k].has(seq.steps[0].bit) || found[si%64] >= maxFamilyHits {
				continue
			}
			if seq.punct != "" {
				e := int(f.Offsets[k])
				for e < len(norm) && isFeatureWordByte(norm[e]) {
					e++
				}
				if e >= len(norm) || strings.IndexByte(seq.punct, norm[e]) < 0 {
					continue
				}
			}
			if matchSteps(c, k+1, seq.steps[1:]) && nh < len(hits) {
				found[si%64]++
				hits[nh] = hit{W: k, ID: seq.id}
				nh++
			}
		}
	}
	for _, loc := range fams.delim(norm, maxFamilyHits) {
		if nh < len(hits) {
			w := sort.Search(len(f.Offsets), func(i int) bool { return int(f.Offsets[i]) > loc[0] }) - 1
			hits[nh] = hit{W: w, ID: familyIDBase + delimiterFamily}
			nh++
		}
	}
	textclf.AddSpecials(f, hits[:nh])
}

// matchSteps reports whether steps match from word k on.
func matchSteps(c []ClassMask, k int, steps []seqStep) bool {
	if len(steps) == 0 {
		return true
	}
	s := steps[0]
	for j := k; j <= k+s.gap && j < len(c); j++ {
		if c[j].has(s.bit) && matchSteps(c, j+1, steps[1:]) {
			return true
		}
	}
	return false
}

// isFeatureWordByte matches textclf's word bytes.
func isFeatureWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 0x80 || c >= 'A' && c <= 'Z'
}
