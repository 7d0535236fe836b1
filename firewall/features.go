package firewall

import (
	"regexp"
	"sort"

	"github.com/talos-ironclad/talos/firewall/internal/textclf"
)

// family is a hand-written pattern family whose matches become one extra
// classifier feature each (the classifier learns how much a family counts).
// Families are broader than the rules: they say "this looks like" rather
// than "this is" an attack.
type family struct {
	id   uint32
	re   *regexp.Regexp
	lits []string // pre-filter: one of these must occur
}

// familyPatterns are the hand features. Their ids are part of the model:
// changing one needs retraining.
var familyPatterns = []struct {
	id      uint32
	pattern string
}{
	// "ignore / disregard / forget … previous … instructions"
	{1, `\b(ignore|ignoring|disregard|forget|override|skip|bypass|neglect|abandon|drop|stop\s+following)\b[^.\n]{0,40}\b(previous|prior|above|earlier|preceding|former|initial|original|all|any|your|these|those|the)\b[^.\n]{0,30}\b(instructions?|prompts?|rules|directives?|guidelines|commands?|context|constraints|programming|directions|tasks?|guidance)\b`},
	// the same in German (deepset has many)
	{2, `\b(ignorier\w*|vergiss|vergessen\s+sie|missacht\w*|vernachlässig\w*)\b[^.\n]{0,50}\b(anweisung\w*|befehl\w*|alles|vorherig\w*|informationen|aufgabe\w*|regeln|instruktion\w*)\b`},
	// a new task or instruction set takes over
	{3, `\b(new|updated|real|actual|true|different|next)\s+(instructions?|tasks?|rules|directives?|orders|objective|mission)\b|\b(neue|nächste)\s+(aufgabe|anweisung)\w*|\b(now|instead|from\s+now\s+on)\b[^.\n]{0,20}\b(you\s+(will|must|are|should)|your\s+task|focus\s+on)\b`},
	// reaching for the prompt, the password or other secrets
	{4, `\b(system|initial|original|hidden|secret|previous|full|entire|complete)\s+(prompt|instructions?|message|configuration|rules)\b|\b(reveal|print|show|tell|give|repeat|output|spell|leak|share|write|display|disclose|list|encode|translate|reverse)\b[^.\n]{0,40}\b(password|passwords|secret|prompt|instructions|passphrase|secret\s+key|api\s+key|token|credentials)\b|\b(passwort|geheimnis|kennwort)\b`},
	// role play, persona switching
	{5, `\b(you\s+are\s+now|from\s+now\s+on|pretend|role-?play|stay\s+in\s+character|immerse\s+yourself|you\s+will\s+now|act\s+as\s+if|answer\s+as|respond\s+as|tu\s+so,?\s+als|du\s+bist\s+jetzt|stell\s+dir\s+vor)\b`},
	// jailbreak vocabulary
	{6, `\b(dan|jailbreak\w*|developer\s+mode|no\s+(restrictions|limits|filters|rules|boundaries|censorship)|unfiltered|uncensored|unrestricted|without\s+(any\s+)?(restrictions|limits|filters|censorship|rules)|anything\s+now|not\s+bound\s+by|free\s+from\s+(all\s+)?(rules|restrictions))\b`},
	// fake delimiters and chat-template tokens
	{7, `<\|[a-z_]+\|>|\[/?(system|inst|instructions?)\]|</?(system|instructions?|admin)>|#{2,}\s*(system|instructions?|new\s+instructions?)\b|\n\s*(system|assistant)\s*:|\b(end\s+of|ignore)\s+(the\s+)?(document|text|context|input)\b`},
	// urgency and authority framing used to smuggle orders
	{8, `\b(important|urgent|attention|warning|note\s+to\s+(the\s+)?(ai|assistant|model|llm)|achtung)\s*[:!]+|\b(stop|halt)\s*[,.!:-]`},
}

// familyIDBase keeps family feature ids away from small numbers.
const familyIDBase = 0xfa000000

func compileFamilies() []family {
	out := make([]family, len(familyPatterns))
	for i, p := range familyPatterns {
		out[i] = family{id: familyIDBase + p.id, re: regexp.MustCompile(p.pattern), lits: requiredLiterals(p.pattern)}
	}
	return out
}

// maxFamilyHits bounds the features one family adds to one text.
const maxFamilyHits = 8

// featurize extracts the classifier features of normalised text into f.
func featurize(f *textclf.Features, fams []family, norm string) {
	textclf.Extract(f, norm)
	if f.Words() == 0 {
		return
	}
	for _, fam := range fams {
		if fam.lits != nil && !containsAny(norm, fam.lits) {
			continue
		}
		for _, loc := range fam.re.FindAllStringIndex(norm, maxFamilyHits) {
			// the word holding the match's first byte
			w := sort.Search(len(f.Offsets), func(i int) bool { return int(f.Offsets[i]) > loc[0] }) - 1
			textclf.AddSpecial(f, w, fam.id)
		}
	}
}
