package firewall

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// Literal pre-filtering. Go's regexp has no literal acceleration for
// patterns such as `\bignore\s+…`, and running ~45 of them over every 4 KB
// input costs milliseconds. So each pattern is reduced to clauses of required
// literals (every clause must have one literal present: "ignor" AND
// "instruction"), one Aho–Corasick pass finds every literal of every pattern
// in the text, and a pattern's regexp runs only when all its clauses are
// satisfied, and then only on short regions around its most selective
// clause's occurrences (where its fast backtracker applies).

// litClauses derives the clauses of pattern: a list of sets of lower-case
// literals such that every match holds one literal of every set. It returns
// nil when nothing is required or the pattern has anchors.
func litClauses(pattern string) [][]string {
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil || hasAnchor(re) {
		return nil
	}
	return cnf(re.Simplify())
}

// maxExact bounds the size of an exact set (the strings a sub-pattern can
// spell) kept for literal clauses.
const maxExact = 16

// exact returns the finite set of lower-case strings re can match, when it
// is small. It relies on the text being normalised: white space never comes
// in runs, so \s+ is exactly one " " or "\n".
func exact(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{strings.ToLower(string(re.Rune))}, true
	case syntax.OpEmptyMatch, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []string{""}, true
	case syntax.OpCapture:
		return exact(re.Sub[0])
	case syntax.OpQuest:
		e, ok := exact(re.Sub[0])
		if !ok {
			return nil, false
		}
		return dedupe(append(e, "")), true
	case syntax.OpCharClass:
		if isSpaceClass(re) {
			return []string{" ", "\n"}, true
		}
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i+1]-re.Rune[i] > 4 {
				return nil, false
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = append(out, strings.ToLower(string(r)))
			}
		}
		if len(out) > 8 {
			return nil, false
		}
		return dedupe(out), true
	case syntax.OpPlus:
		if re.Sub[0].Op == syntax.OpCharClass && isSpaceClass(re.Sub[0]) {
			return []string{" ", "\n"}, true
		}
	case syntax.OpStar:
		if re.Sub[0].Op == syntax.OpCharClass && isSpaceClass(re.Sub[0]) {
			return []string{"", " ", "\n"}, true
		}
	case syntax.OpAlternate:
		var out []string
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				return nil, false
			}
			out = append(out, e...)
		}
		out = dedupe(out)
		return out, len(out) <= maxExact
	case syntax.OpConcat:
		out := []string{""}
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				return nil, false
			}
			if out = product(out, e); out == nil {
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

func product(a, b []string) []string {
	if len(a)*len(b) > maxExact {
		return nil
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return dedupe(out)
}

// isSpaceClass reports the class of \s (and its case-folded forms).
func isSpaceClass(re *syntax.Regexp) bool {
	want := []rune{'\t', '\n', '\f', '\r', ' ', ' '}
	return slices.Equal(re.Rune, want)
}

func cnf(re *syntax.Regexp) [][]string {
	if e, ok := exact(re); ok {
		if slices.Contains(e, "") {
			return nil
		}
		return [][]string{minimal(e)}
	}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return cnf(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return cnf(re.Sub[0])
		}
	case syntax.OpConcat:
		// runs of exact children become one clause of their product
		var out [][]string
		cur := []string{""}
		flush := func() {
			if !slices.Contains(cur, "") {
				out = append(out, cur)
			}
			cur = []string{""}
		}
		for _, sub := range re.Sub {
			e, ok := exact(sub)
			if !ok {
				flush()
				out = append(out, cnf(sub)...)
				continue
			}
			if p := product(cur, e); p != nil {
				cur = p
				continue
			}
			flush()
			cur = e
		}
		flush()
		for i := range out {
			out[i] = minimal(out[i])
		}
		return slices.DeleteFunc(out, func(c []string) bool { return minLen(c) < 2 })
	case syntax.OpAlternate:
		// OR of the children's most selective clause
		var all []string
		for _, sub := range re.Sub {
			c := bestClause(cnf(sub))
			if c == nil {
				return nil
			}
			all = append(all, c...)
		}
		return [][]string{minimal(all)}
	}
	return nil
}

// minimal drops the strings of a clause that contain another of its strings
// (when the shorter one is absent, so is the longer).
func minimal(c []string) []string {
	c = dedupe(c)
	slices.SortStableFunc(c, func(a, b string) int { return len(a) - len(b) })
	var out []string
	for _, s := range c {
		if !slices.ContainsFunc(out, func(t string) bool { return strings.Contains(s, t) }) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func minLen(c []string) int {
	m := 1 << 30
	for _, s := range c {
		m = min(m, len(s))
	}
	return m
}

func dedupe(c []string) []string {
	slices.Sort(c)
	return slices.Compact(c)
}

// clauseScore ranks clauses by selectivity: long literals, few alternatives.
func clauseScore(c []string) int { m := minLen(c); return 1 + 100*m*m/len(c) }

func bestClause(cs [][]string) []string {
	var best []string
	score := 0
	for _, c := range cs {
		if len(c) == 0 || minLen(c) < 2 {
			continue
		}
		if s := clauseScore(c); s > score {
			best, score = c, s
		}
	}
	return best
}

func hasAnchor(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return true
	}
	for _, sub := range re.Sub {
		if hasAnchor(sub) {
			return true
		}
	}
	return false
}

// acMatcher is an Aho–Corasick automaton over a set of literals, compiled to
// a dense DFA over a compact alphabet (the bytes the literals use, plus one
// symbol for every other byte).
//
// The scan loop is one dependent load per byte, so the table is laid out
// for it: states are renumbered so that every state where a literal ends
// comes after all the others, and a transition stores its target's row
// offset (state*nsym) rather than its number. The loop then needs neither a
// multiplication nor a look-up in out to know that nothing ended here, only
// a comparison with firstOut.
type acMatcher struct {
	lits     []string
	alpha    [256]uint8
	nsym     int
	next     []uint32  // row offset of a state + sym -> row offset of the next state
	firstOut uint32    // row offset of the first state with an output
	out      [][]int32 // (row offset - firstOut) / nsym -> literal ids ending there (with failure links)
	maxLen   int       // the longest literal
}

func newACMatcher(lits []string) *acMatcher {
	m := &acMatcher{lits: lits, nsym: 1}
	for _, l := range lits {
		m.maxLen = max(m.maxLen, len(l))
		for i := 0; i < len(l); i++ {
			if m.alpha[l[i]] == 0 {
				m.alpha[l[i]] = uint8(m.nsym)
				m.nsym++
			}
		}
	}
	// trie
	type node struct{ child map[uint8]int32 }
	trie := []node{{map[uint8]int32{}}}
	m.out = [][]int32{nil}
	for id, l := range lits {
		s := int32(0)
		for i := 0; i < len(l); i++ {
			c := m.alpha[l[i]]
			n, ok := trie[s].child[c]
			if !ok {
				n = int32(len(trie))
				trie = append(trie, node{map[uint8]int32{}})
				m.out = append(m.out, nil)
				trie[s].child[c] = n
			}
			s = n
		}
		m.out[s] = append(m.out[s], int32(id))
	}
	// BFS: failure links and the dense transition table
	if len(trie)*m.nsym > 1<<31 {
		panic("firewall: too many literal states")
	}
	next := make([]int32, len(trie)*m.nsym)
	fail := make([]int32, len(trie))
	queue := []int32{}
	for c := 1; c < m.nsym; c++ {
		if n, ok := trie[0].child[uint8(c)]; ok {
			next[c] = n
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		m.out[s] = append(m.out[s], m.out[fail[s]]...)
		for c := 1; c < m.nsym; c++ {
			if n, ok := trie[s].child[uint8(c)]; ok {
				fail[n] = next[int(fail[s])*m.nsym+c]
				next[int(s)*m.nsym+c] = n
				queue = append(queue, n)
			} else {
				next[int(s)*m.nsym+c] = next[int(fail[s])*m.nsym+c]
			}
		}
	}
	// Renumber: the start state stays 0, states without output keep their
	// order, states with output go last (see acMatcher).
	renum := make([]uint32, len(trie))
	k := uint32(0)
	for s := range trie {
		if s == 0 || len(m.out[s]) == 0 {
			renum[s] = k
			k++
		}
	}
	firstOut := k
	var outs [][]int32
	for s := range trie {
		if s != 0 && len(m.out[s]) > 0 {
			renum[s] = k
			k++
			outs = append(outs, m.out[s])
		}
	}
	nsym := uint32(m.nsym)
	m.next = make([]uint32, len(next))
	for s := range trie {
		for c := range m.nsym {
			m.next[renum[s]*nsym+uint32(c)] = renum[next[s*m.nsym+c]] * nsym
		}
	}
	m.firstOut, m.out = firstOut*nsym, outs
	return m
}

// occurrences records, per literal id, the start offsets where it occurs.
type occurrences struct {
	pos [][]int32
	// later holds the second half's outputs while scan runs the two
	// halves together
	later []acHit
}

// acHit is a state with output and the position of the byte that led to it.
type acHit struct {
	s uint32
	i int32
}

// acHits buffers the outputs of one run of the automaton (see run2).
type acHits struct {
	n int
	h [64]acHit
}

// acSplitMin is the shortest text scan splits in two halves.
const acSplitMin = 256

// scan fills occ with every occurrence of every literal in text, each
// literal's in increasing order.
//
// Every step of the automaton waits for the load of the step before it, so
// a pass runs at the latency of one load per byte. A text of acSplitMin
// bytes or more is scanned as two halves in the same loop (run2), whose two
// chains of loads overlap. The second half starts maxLen-1 bytes early,
// from the start state, so that it finds every literal that ends in it (a
// literal ending at i starts at or after i-maxLen+1), and reports only
// those; its outputs wait in occ.later until the first half's are recorded,
// which keeps every literal's positions in order. The loop only buffers the
// outputs, which are rare: recording them there (a call, appends) made the
// compiler keep the loop's state in memory.
func (m *acMatcher) scan(text string, occ *occurrences) {
	if cap(occ.pos) < len(m.lits) {
		occ.pos = make([][]int32, len(m.lits))
	}
	occ.pos = occ.pos[:len(m.lits)]
	for i := range occ.pos {
		occ.pos[i] = occ.pos[i][:0]
	}
	var h1, h2 acHits
	half := len(text) / 2
	if len(text) < acSplitMin || half < m.maxLen {
		s := uint32(0)
		for i := 0; i < len(text); {
			i, s = m.run1(text, i, s, &h1)
			m.record(occ, &h1, 0)
		}
		return
	}
	first, second := text[:half], text[half-(m.maxLen-1):]
	off := half - (m.maxLen - 1) // position in text of second[0]
	later := occ.later[:0]
	s1, s2 := uint32(0), uint32(0)
	for i := 0; i < len(first); {
		i, s1, s2 = m.run2(first, second, i, s1, s2, &h1, &h2)
		m.record(occ, &h1, 0)
		for _, h := range h2.h[:h2.n] {
			if int(h.i)+off >= half {
				later = append(later, acHit{h.s, h.i + int32(off)})
			}
		}
		h2.n = 0
	}
	for _, h := range later {
		for _, id := range m.out[(h.s-m.firstOut)/uint32(m.nsym)] {
			occ.pos[id] = append(occ.pos[id], h.i+1-int32(len(m.lits[id])))
		}
	}
	occ.later = later
	rest := second[len(first):]
	for i := 0; i < len(rest); {
		i, s2 = m.run1(rest, i, s2, &h2)
		m.record(occ, &h2, off+len(first))
	}
}

// run1 runs the automaton over a[i:] from state s until a ends or h is
// full, and returns where it stopped and the state there.
func (m *acMatcher) run1(a string, i int, s uint32, h *acHits) (int, uint32) {
	next, alpha, firstOut := m.next, &m.alpha, m.firstOut
	n := h.n
	for ; i < len(a) && n < len(h.h); i++ {
		s = next[s+uint32(alpha[a[i]])]
		if s >= firstOut {
			h.h[n] = acHit{s, int32(i)}
			n++
		}
	}
	h.n = n
	return i, s
}

// run2 runs the automaton over a[i:] from state s1 and, in the same loop,
// over b[i:] from s2 (b at least as long as a), until a ends or a buffer of
// outputs is full. It returns where it stopped and the two states.
func (m *acMatcher) run2(a, b string, i int, s1, s2 uint32, h1, h2 *acHits) (int, uint32, uint32) {
	next, alpha, firstOut := m.next, &m.alpha, m.firstOut
	b = b[:len(a)]
	n1, n2 := h1.n, h2.n
	for ; i < len(a) && n1 < len(h1.h) && n2 < len(h2.h); i++ {
		s1 = next[s1+uint32(alpha[a[i]])]
		s2 = next[s2+uint32(alpha[b[i]])]
		if s1 >= firstOut {
			h1.h[n1] = acHit{s1, int32(i)}
			n1++
		}
		if s2 >= firstOut {
			h2.h[n2] = acHit{s2, int32(i)}
			n2++
		}
	}
	h1.n, h2.n = n1, n2
	return i, s1, s2
}

// record adds the literals of the outputs in h, at positions moved by off,
// to occ, and empties h.
func (m *acMatcher) record(occ *occurrences, h *acHits, off int) {
	for _, x := range h.h[:h.n] {
		for _, id := range m.out[(x.s-m.firstOut)/uint32(m.nsym)] {
			occ.pos[id] = append(occ.pos[id], int32(int(x.i)+off+1-len(m.lits[id])))
		}
	}
	h.n = 0
}

// prefilter is one pattern's literal requirements, as literal ids.
type prefilter struct {
	clauses [][]int32
	regions []int32 // the literals whose occurrences define the regions
	span    int     // the longest literal of regions
}

// literalIndex assigns ids to literals across many patterns.
type literalIndex struct {
	ids  map[string]int32
	lits []string
}

func (x *literalIndex) id(l string) int32 {
	if id, ok := x.ids[l]; ok {
		return id
	}
	if x.ids == nil {
		x.ids = map[string]int32{}
	}
	id := int32(len(x.lits))
	x.ids[l] = id
	x.lits = append(x.lits, l)
	return id
}

// compilePrefilter returns the prefilter of pattern, or nil when the pattern
// must always run on the whole text.
func (x *literalIndex) compilePrefilter(pattern string) *prefilter {
	cs := litClauses(pattern)
	best := bestClause(cs)
	if best == nil {
		return nil
	}
	p := &prefilter{}
	for _, c := range cs {
		if minLen(c) < 2 {
			continue
		}
		ids := make([]int32, len(c))
		for i, l := range c {
			ids[i] = x.id(l)
		}
		p.clauses = append(p.clauses, ids)
	}
	for _, l := range best {
		p.regions = append(p.regions, x.id(l))
		p.span = max(p.span, len(l))
	}
	return p
}

// Region matching: a match holds an occurrence of its region literals, so
// the regexp runs only on regionMargin bytes around each occurrence (merged,
// widened to word boundaries). A match longer than regionMargin bytes may be
// missed; the default rules and families match far shorter spans.
const (
	regionMargin   = 200
	regionFullScan = 1024 // texts up to this size are scanned whole
)

// findAll returns up to n match locations of re in text, like
// re.FindAllStringIndex, skipping the parts of text where the prefilter
// says no match can be. occ holds the literal occurrences of text.
func findAll(re *regexp.Regexp, pf *prefilter, occ *occurrences, text string, n int) [][]int {
	if pf == nil {
		return re.FindAllStringIndex(text, n)
	}
	// candidate occurrences: a region literal with, for every clause, some
	// literal of the clause within regionMargin bytes
	var regions [][2]int
	for _, id := range pf.regions {
		for _, p := range occ.pos[id] {
			if !nearAll(pf.clauses, occ, int(p)) {
				continue
			}
			regions = append(regions, [2]int{max(0, int(p)-regionMargin), min(len(text), int(p)+pf.span+regionMargin)})
		}
	}
	if len(regions) == 0 {
		return nil
	}
	if len(text) <= regionFullScan {
		return re.FindAllStringIndex(text, n)
	}
	slices.SortFunc(regions, func(a, b [2]int) int { return a[0] - b[0] })
	var out [][]int
	flush := func(r [2]int) bool {
		a, b := r[0], r[1]
		for a > 0 && isWordByteASCII(text[a-1]) {
			a--
		}
		for b < len(text) && isWordByteASCII(text[b]) {
			b++
		}
		for _, m := range re.FindAllStringIndex(text[a:b], n-len(out)) {
			m[0] += a
			m[1] += a
			if len(out) > 0 && m[0] < out[len(out)-1][1] {
				continue // already found in the previous region
			}
			out = append(out, m)
		}
		return len(out) >= n
	}
	cur := regions[0]
	for _, r := range regions[1:] {
		if r[0] <= cur[1] {
			cur[1] = max(cur[1], r[1])
			continue
		}
		if flush(cur) {
			return out
		}
		cur = r
	}
	flush(cur)
	return out
}

// isWordByteASCII reports bytes that \b treats as word characters, plus
// UTF-8 bytes (so a region never starts inside a multi-byte rune).
func isWordByteASCII(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

// nearAll reports whether every clause has an occurrence within regionMargin
// bytes of p.
func nearAll(clauses [][]int32, occ *occurrences, p int) bool {
	for _, c := range clauses {
		ok := false
		for _, id := range c {
			ps := occ.pos[id]
			// first occurrence at or after p-regionMargin
			i, _ := slices.BinarySearch(ps, int32(p-regionMargin))
			if i < len(ps) && int(ps[i]) <= p+regionMargin {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
