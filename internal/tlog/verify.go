package tlog

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/talos-ironclad/talos"
)

// Kind classifies a break in the tier-1 chain.
type Kind string

// Kinds of break.
const (
	// Broken: a line is not a chain line (not JSON, no seq/prev), or its
	// bytes no longer match the hash the next line recorded (edited).
	Broken Kind = "broken"
	// Missing: one or more lines were deleted (a gap in seq, or the chain
	// does not start at seq 1).
	Missing Kind = "missing"
	// Reordered: a line appears before a line that was written before it,
	// or a seq appears twice.
	Reordered Kind = "reordered"
)

// Break is the first problem Verify found.
type Break struct {
	Kind   Kind
	File   string // file name inside the directory
	Line   int    // 1-based line number in File
	Seq    uint64 // the seq expected at that place
	Detail string
}

// String formats as "audit.log:12: missing: …".
func (b *Break) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", b.File, b.Line, b.Kind, b.Detail)
}

// Report is the result of Verify.
type Report struct {
	Dir   string
	Files []string // in chain order
	Lines int      // lines read
	Last  uint64   // seq of the last line (when intact)
	Break *Break   // nil when the chain is intact
	// Warnings are weaknesses that are not breaks: tier-1 lines without
	// the anchor file audit.head, whose absence means lines cut off the
	// end together with the anchor would go unnoticed.
	Warnings []string
}

type entry struct {
	file   int
	line   int
	raw    []byte // without newline
	seq    uint64
	prev   string
	parsed bool
}

// Verify reads every tier-1 file in dir (rotated ones in order, gzip or
// not, then the current one) and checks the hash chain. It returns the
// report and, when the chain is not intact, an error carrying
// talos.CodeBadSignature that names the first broken, missing or reordered
// line with its file and line number.
//
// The end of the log is checked against the anchor file audit.head, which
// the handler rewrites after each line: lines cut off the end, or an edited
// last line, are reported too. (Someone who can rewrite both the log and
// the anchor consistently can still cut the tail; ship tier 1 off the
// machine when that matters.) When lines exist but audit.head does not, the
// chain can still be intact, but the last lines and the anchor may have
// been deleted together: Verify adds a warning to Report.Warnings and
// returns no error.
func Verify(dir string) (Report, error) {
	const op = "tlog.Verify"
	rep := Report{Dir: dir}
	files, err := listFiles(dir, Tier1.Prefix())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return rep, talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("log directory %s does not exist", dir), err)
		}
		return rep, talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot read %s", dir), err)
	}
	var ents []entry
	for fi, f := range files {
		rep.Files = append(rep.Files, f.name)
		data, err := readAll(filepath.Join(dir, f.name))
		if err != nil {
			return rep, talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot read %s", filepath.Join(dir, f.name)), err)
		}
		lines := bytes.Split(data, []byte("\n"))
		if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
			lines = lines[:n-1]
		}
		for li, l := range lines {
			e := entry{file: fi, line: li + 1, raw: l}
			if h, ok := parseHead(l); ok {
				e.seq, e.prev, e.parsed = h.Seq, h.Prev, true
			}
			ents = append(ents, e)
		}
	}
	rep.Lines = len(ents)
	b := check(ents, rep.Files)
	if b != nil {
		b.File = rep.Files[b.fileIdx]
		rep.Break = &b.Break
		return rep, talos.Errorf(talos.CodeBadSignature, op, "tier-1 audit chain in %s is not intact: %s", dir, rep.Break)
	}
	if n := len(ents); n > 0 {
		rep.Last = ents[n-1].seq
	}
	ab, warn := checkAnchor(dir, ents, rep.Files)
	if warn != "" {
		rep.Warnings = append(rep.Warnings, warn)
	}
	if ab != nil {
		rep.Break = ab
		return rep, talos.Errorf(talos.CodeBadSignature, op, "tier-1 audit chain in %s is not intact: %s", dir, rep.Break)
	}
	return rep, nil
}

// checkAnchor compares the end of an otherwise intact chain with
// audit.head. Without an anchor it returns a warning when there are lines.
func checkAnchor(dir string, ents []entry, files []string) (*Break, string) {
	a, ok, err := readAnchor(dir)
	if err != nil {
		return &Break{Kind: Broken, File: HeadFileName, Line: 1, Detail: err.Error()}, ""
	}
	if !ok {
		if len(ents) == 0 {
			return nil, ""
		}
		return nil, fmt.Sprintf("%s holds %d tier-1 line(s) but no anchor file %s: the chain is intact as far as it goes, "+
			"but lines cut off its end together with the anchor would not show; the daemon rewrites the anchor with its next audit line",
			dir, len(ents), HeadFileName)
	}
	last, lastHash, file, line := uint64(0), GenesisPrev, Tier1.Prefix()+".log", 1
	if n := len(ents); n > 0 {
		e := ents[n-1]
		last, lastHash, file, line = e.seq, hashLine(e.raw), files[e.file], e.line
	}
	switch {
	case a.Seq > last:
		return &Break{Kind: Missing, File: file, Line: line, Seq: last + 1,
			Detail: fmt.Sprintf("the log ends at seq %d but %s records seq %d: seq %d-%d were cut off the end", last, HeadFileName, a.Seq, last+1, a.Seq)}, ""
	case a.Seq == last && a.Hash != lastHash:
		return &Break{Kind: Broken, File: file, Line: line, Seq: last,
			Detail: fmt.Sprintf("the last line (seq %d) does not match the hash in %s: it was edited", last, HeadFileName)}, ""
	}
	return nil, ""
}

type brk struct {
	Break
	fileIdx int
}

func check(ents []entry, names []string) *brk { return checkFrom(ents, names, 1, GenesisPrev) }

// checkFrom checks ents as a chain whose first line must have seq expect
// and prev hash prev.
func checkFrom(ents []entry, names []string, expect uint64, prev string) *brk {
	start := expect
	at := func(e entry, k Kind, seq uint64, format string, args ...any) *brk {
		return &brk{Break: Break{Kind: k, Line: e.line, Seq: seq, Detail: fmt.Sprintf(format, args...)}, fileIdx: e.file}
	}
	// Where each seq occurs, to tell a gap (missing) from a move (reordered).
	pos := make(map[uint64]int, len(ents))
	for i, e := range ents {
		if e.parsed {
			if _, dup := pos[e.seq]; !dup {
				pos[e.seq] = i
			}
		}
	}
	for i, e := range ents {
		if !e.parsed {
			return at(e, Broken, expect, "line is not a tier-1 chain record (not JSON or no seq/prev); it was edited or damaged")
		}
		if e.seq != expect {
			if j, ok := pos[expect]; ok && j > i {
				return at(e, Reordered, expect, "found seq %d where seq %d was expected; seq %d comes later (%s)", e.seq, expect, expect, where(ents, names, j))
			}
			if e.seq < expect {
				return at(e, Reordered, expect, "seq %d appears again or out of order after seq %d", e.seq, expect-1)
			}
			if expect == start && start == 1 {
				return at(e, Missing, expect, "the chain starts at seq %d: lines 1-%d are missing (a deleted or truncated older file?)", e.seq, e.seq-1)
			}
			return at(e, Missing, expect, "seq %d-%d missing before this line (deleted)", expect, e.seq-1)
		}
		if e.prev != prev {
			if i == 0 {
				return at(e, Broken, expect, "first line does not start from the hash it should follow")
			}
			p := ents[i-1]
			return &brk{Break: Break{Kind: Broken, Line: p.line, Seq: p.seq,
				Detail: fmt.Sprintf("line (seq %d) does not match the hash recorded by the next line (%s): it was edited", p.seq, where(ents, names, i))}, fileIdx: p.file}
		}
		prev = hashLine(e.raw)
		expect++
	}
	return nil
}

func where(ents []entry, names []string, i int) string {
	return fmt.Sprintf("%s:%d", names[ents[i].file], ents[i].line)
}

// VerifyTail checks the newest part of the tier-1 chain in dir: the last two
// files (the current one and the newest rotated one, when they exist),
// line by line, and the end of the chain against audit.head. It is cheap
// enough for every boot, where Verify reads the whole history. The error,
// when the tail is not intact, carries talos.CodeBadSignature and names the
// first break; a chain with lines but no anchor is intact with a warning.
func VerifyTail(dir string) (Report, error) {
	const op = "tlog.VerifyTail"
	rep := Report{Dir: dir}
	files, err := listFiles(dir, Tier1.Prefix())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return rep, nil // nothing written yet
		}
		return rep, talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot read %s", dir), err)
	}
	files = files[max(0, len(files)-2):]
	var ents []entry
	for fi, f := range files {
		rep.Files = append(rep.Files, f.name)
		data, err := readAll(filepath.Join(dir, f.name))
		if err != nil {
			return rep, talos.E(talos.CodeDirPermissions, op, fmt.Sprintf("cannot read %s", filepath.Join(dir, f.name)), err)
		}
		lines := bytes.Split(data, []byte("\n"))
		if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
			lines = lines[:n-1]
		}
		for li, l := range lines {
			e := entry{file: fi, line: li + 1, raw: l}
			if h, ok := parseHead(l); ok {
				e.seq, e.prev, e.parsed = h.Seq, h.Prev, true
			}
			ents = append(ents, e)
		}
	}
	rep.Lines = len(ents)
	if len(ents) > 0 {
		// The window starts from whatever its first line claims; older
		// lines are Verify's business.
		first := ents[0]
		if b := checkFrom(ents, rep.Files, first.seq, first.prev); b != nil {
			b.File = rep.Files[b.fileIdx]
			rep.Break = &b.Break
			return rep, talos.Errorf(talos.CodeBadSignature, op, "the newest tier-1 audit lines in %s are not intact: %s; run `talos logs verify` for the whole chain", dir, rep.Break)
		}
		rep.Last = ents[len(ents)-1].seq
	}
	ab, warn := checkAnchor(dir, ents, rep.Files)
	if warn != "" {
		rep.Warnings = append(rep.Warnings, warn)
	}
	if ab != nil {
		rep.Break = ab
		return rep, talos.Errorf(talos.CodeBadSignature, op, "the newest tier-1 audit lines in %s are not intact: %s; run `talos logs verify` for the whole chain", dir, rep.Break)
	}
	return rep, nil
}
