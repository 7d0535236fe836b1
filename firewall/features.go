package firewall

import (
	"fmt"
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

// delimiterRE is the one regular-expression family: fake chat-template and
// system delimiters, which are punctuation rather than words.
var delimiterRE = `<\|[a-z_]+\|>|\[/?(system|inst|instructions?)\]|</?(system|instructions?|admin)>|## ?(system|instructions?)\b|\n(system|assistant|user) ?:`

// familyIDBase keeps family feature ids away from small numbers.
const familyIDBase = 0xfa000000

// delimiterFamily is the id of the regular-expression family.
const delimiterFamily = 7

// classMask is a set of up to 128 family steps.
type classMask [2]uint64

func (m classMask) has(b classMask) bool { return m[0]&b[0] != 0 || m[1]&b[1] != 0 }

type seqStep struct {
	bit classMask // the class bit of this step's words
	gap int       // words allowed before this step
}

type families struct {
	words    map[string]classMask // word -> class bits
	prefixes []struct {
		p   string
		bit classMask
	}
	seqs []struct {
		id    uint32
		steps []seqStep
		punct string
	}
	delim  *RuleSet  // the delimiter family, as a one-rule set
	firsts classMask // the bits of every sequence's first step
	// byFirst indexes prefixes by their first byte
	byFirst [256][]struct {
		p   string
		bit classMask
	}
	// wordFilter and prefix2 let classes reject a word without a map
	// look-up: featurize asks for every word of every text (about 700 per
	// 4 KB), almost none of which are family words, and the string-keyed
	// map look-up (hashing, probing, comparing) was a tenth of a scan.
	// wordFilter has the bit wordFilterBit(h) set for the FNV-1a hash h of
	// every entry of words (a one-hash Bloom filter: no false negatives,
	// about 1% false positives, which then take the map look-up);
	// prefix2 has a bit for the first two bytes of every prefix.
	wordFilter [wordFilterBits / 64]uint64
	prefix2    [1 << 16 / 64]uint64
}

// wordFilterBits is the size of families.wordFilter: 2^15 bits (4 KB, so it
// stays in the L1 cache) for a few hundred words.
const wordFilterBits = 1 << 15

// FNV-1a parameters of wordHash.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// wordHash is FNV-1a over the bytes of w, for families.wordFilter.
func wordHash(w string) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < len(w); i++ {
		h = (h ^ uint32(w[i])) * fnvPrime
	}
	return h
}

func wordFilterBit(h uint32) uint32 { return h >> (32 - 15) }

// compileFamilies builds the matcher; it panics on a malformed spec (a
// programming error caught by the tests).
func compileFamilies() *families {
	f := &families{words: map[string]classMask{}}
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
				var bit classMask
				bit[nbit/64] = 1 << (nbit % 64)
				nbit++
				for _, w := range strings.Split(tok, "|") {
					if p, ok := strings.CutSuffix(w, "*"); ok {
						f.prefixes = append(f.prefixes, struct {
							p   string
							bit classMask
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
	rs, err := NewRuleSet([]Rule{{ID: "FAM-7", Threat: ThreatLow, Action: ActionLog, Patterns: []string{delimiterRE}}})
	if err != nil {
		panic("firewall: delimiter family: " + err.Error())
	}
	f.delim = rs
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
	for w := range f.words {
		b := wordFilterBit(wordHash(w))
		f.wordFilter[b/64] |= 1 << (b % 64)
	}
	return f
}

// classes returns the class bits of word w, whose wordHash is h (featurize
// computes it while finding the word's end).
func (f *families) classes(w string, h uint32) classMask {
	var c classMask
	if b := wordFilterBit(h); f.wordFilter[b/64]&(1<<(b%64)) != 0 {
		c = f.words[w]
	}
	if len(w) < 2 {
		// every prefix has at least 2 bytes (compileFamilies checks)
		return c
	}
	if k := uint32(w[0])<<8 | uint32(w[1]); f.prefix2[k/64]&(1<<(k%64)) == 0 {
		return c
	}
	for _, p := range f.byFirst[w[0]] {
		if strings.HasPrefix(w, p.p) {
			c[0] |= p.bit[0]
			c[1] |= p.bit[1]
		}
	}
	return c
}

// maxFamilyHits bounds the features one family sequence adds to one text.
const maxFamilyHits = 8

// featurize extracts the classifier features of normalised text into f;
// cls is a reusable buffer for the words' class bits.
func featurize(f *textclf.Features, fams *families, norm string, cls *[]classMask) {
	textclf.Extract(f, norm)
	n := f.Words()
	if n == 0 {
		return
	}
	c := (*cls)[:0]
	for k := 0; k < n; k++ {
		a := int(f.Offsets[k])
		b := a
		h := uint32(fnvOffset) // wordHash of the word, computed while finding its end
		for b < len(norm) && isFeatureWordByte(norm[b]) {
			h = (h ^ uint32(norm[b])) * fnvPrime
			b++
		}
		c = append(c, fams.classes(norm[a:b], h))
	}
	*cls = c
	type hit struct {
		w  int
		id uint32
	}
	var hits [16]hit
	nh := 0
	var found [64]uint8 // hits per sequence
	for k := 0; k < n && nh < len(hits); k++ {
		if c[k] == (classMask{}) || !c[k].has(fams.firsts) {
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
				hits[nh] = hit{k, seq.id}
				nh++
			}
		}
	}
	for _, loc := range fams.delim.locate(norm, maxFamilyHits) {
		if nh < len(hits) {
			w := sort.Search(len(f.Offsets), func(i int) bool { return int(f.Offsets[i]) > loc[0] }) - 1
			hits[nh] = hit{w, familyIDBase + delimiterFamily}
			nh++
		}
	}
	for _, h := range hits[:nh] {
		textclf.AddSpecial(f, h.w, h.id)
	}
}

// matchSteps reports whether steps match from word k on.
func matchSteps(c []classMask, k int, steps []seqStep) bool {
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
