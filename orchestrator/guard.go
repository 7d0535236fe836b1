package orchestrator

import (
	"hash/maphash"
	"strings"
	"unicode/utf8"

	"github.com/talos-ironclad/talos/llm"
)

// LeakWindow is the number of letters and digits in a row, copied from a
// protected text (the system prompts), that make an answer a leak.
const LeakWindow = 40

// leakIndex finds protected text in answers: the canary token and any
// LeakWindow letters and digits in a row of the protected texts (compared
// lower-cased, ignoring spaces and punctuation, so re-spacing does not hide
// a copy).
type leakIndex struct {
	seed    maphash.Seed
	canary  string
	windows map[uint64]struct{}
}

func newLeakIndex(canaryToken string, protected []string) *leakIndex {
	ix := &leakIndex{seed: maphash.MakeSeed(), canary: skeleton(canaryToken), windows: map[uint64]struct{}{}}
	for _, p := range protected {
		sk := skeleton(p)
		for i := LeakWindow; i <= len(sk); i++ {
			ix.windows[maphash.String(ix.seed, sk[i-LeakWindow:i])] = struct{}{}
		}
	}
	return ix
}

// leaks reports whether skel (a skeleton) shows protected text in a window
// ending at or after from.
func (ix *leakIndex) leaks(skel []byte, from int) bool {
	if ix.canary != "" && strings.Contains(string(skel[max(0, from-len(ix.canary)):]), ix.canary) {
		return true
	}
	for i := max(from, LeakWindow); i <= len(skel); i++ {
		if _, ok := ix.windows[maphash.Bytes(ix.seed, skel[i-LeakWindow:i])]; ok {
			return true
		}
	}
	return false
}

// leaked reports whether text shows protected text.
func (ix *leakIndex) leaked(text string) bool { return ix.leaks(appendSkeleton(nil, text), 0) }

// guard sits between the models' streams and the user. It holds back the
// tail of the text that could still turn out to be the escalate marker or
// a leak (the canary or a copy of a system prompt), stops for good once a
// leak shows, and starts over when the router switches model or the loop
// calls the model again.
type guard struct {
	emit     func(string) error
	ix       *leakIndex
	window   int    // skeleton characters a leak needs: the longer of LeakWindow and the canary
	buf      []byte // the current call's text
	skel     []byte // its skeleton
	skelPos  []int  // the offset in buf of each skeleton character
	sent     int    // bytes of buf emitted
	target   llm.Target
	marker   bool // the current call's text holds the escalate marker
	leaked   bool // the canary showed: nothing more is emitted
	earlier  bool // text of an earlier model call was emitted
	streamed strings.Builder
	err      error
}

func newGuard(emit func(string) error, ix *leakIndex) *guard {
	return &guard{emit: emit, ix: ix, window: max(LeakWindow, len(ix.canary))}
}

// next starts a new model call.
func (g *guard) next() {
	if g.streamed.Len() > 0 {
		g.earlier = true
	}
	g.buf, g.skel, g.skelPos, g.sent, g.marker, g.target = g.buf[:0], g.skel[:0], g.skelPos[:0], 0, false, ""
	g.streamed.Reset()
}

// feed takes one delta of the model's text.
func (g *guard) feed(t llm.Target, delta string) error {
	if g.err != nil {
		return g.err
	}
	if t != g.target && g.target != "" {
		g.next()
	}
	g.target = t
	base := len(g.buf)
	g.buf = append(g.buf, delta...)
	from := len(g.skel)
	g.skel = appendSkeleton(g.skel, delta)
	for i := 0; i < len(delta); i++ {
		if isSkeleton(delta[i]) {
			g.skelPos = append(g.skelPos, base+i)
		}
	}
	if g.leaked || g.marker {
		return nil
	}
	if g.ix.leaks(g.skel, from+1) {
		g.leaked = true
		return nil
	}
	if strings.Contains(string(g.buf), llm.EscalateMarker) {
		g.marker = true
		return nil
	}
	// Hold back what could still become a leak (the last window-1
	// skeleton characters and what follows them) or the marker (its
	// length less one).
	safe := len(g.buf) - (len(llm.EscalateMarker) - 1)
	if n := len(g.skelPos); n > 0 {
		safe = min(safe, g.skelPos[max(0, n-(g.window-1))])
	}
	for safe > g.sent && safe < len(g.buf) && !utf8.RuneStart(g.buf[safe]) {
		safe--
	}
	if safe > g.sent {
		return g.send(string(g.buf[g.sent:safe]), safe)
	}
	return nil
}

func (g *guard) send(s string, upto int) error {
	g.sent = upto
	g.streamed.WriteString(s)
	if err := g.emit(s); err != nil {
		g.err = err
		return err
	}
	return nil
}

// finish emits the rest of the final answer when what was streamed is its
// beginning, and reports whether the stream now equals answer.
func (g *guard) finish(answer string) bool {
	if g.err != nil || g.leaked || g.earlier {
		return false
	}
	done := g.streamed.String()
	if !strings.HasPrefix(answer, done) {
		return false
	}
	if rest := answer[len(done):]; rest != "" {
		if err := g.send(rest, len(g.buf)); err != nil {
			return false
		}
	}
	return true
}

// skeleton keeps the ASCII letters and digits of s, lower-cased.
func skeleton(s string) string { return string(appendSkeleton(nil, s)) }

func isSkeleton(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

func appendSkeleton(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			dst = append(dst, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			dst = append(dst, c)
		}
	}
	return dst
}
